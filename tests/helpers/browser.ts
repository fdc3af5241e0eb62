/**
 * Headless Debian chromium driven by playwright-core, for end-to-end tests of the dashboard.
 * Needs /usr/bin/chromium (`apt-get install chromium`); playwright's own browser downloads
 * are not used.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM_PATH = process.env.MYRIAD_CHROMIUM ?? "/usr/bin/chromium";

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Closes the browser and deletes its profile directory. */
  close(): Promise<void>;
}

/**
 * Launches chromium with a fresh profile in a temporary directory and opens one page of
 * `width` x `height` CSS pixels. Throws, naming the apt-get command, when chromium is missing.
 */
export async function launchBrowser(opts: { width?: number; height?: number } = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`chromium not found at ${CHROMIUM_PATH}: install it with \`apt-get install -y chromium\` (Debian), or set MYRIAD_CHROMIUM to its path`);
  }
  const profile = mkdtempSync(join(tmpdir(), "myriad-chromium-"));
  let context: BrowserContext;
  try {
    // launchPersistentContext is playwright's way to give chromium a user-data dir of our own.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: ARGS,
      viewport: { width: opts.width ?? 1400, height: opts.height ?? 1000 },
      timeout: 30_000,
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
