import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MyriadError } from "../errors.ts";

/** A static file the admin server serves: its bytes, content type and strong ETag. */
export interface Asset {
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  etag: string;
}

/** The dashboard page and the files it loads, keyed by URL path. */
interface DashboardAssets {
  "/": Asset;
  "/assets/uplot.js": Asset;
  "/assets/uplot.css": Asset;
  "/assets/dashboard.js": Asset;
}

function asset(body: Uint8Array<ArrayBuffer>, contentType: string): Asset {
  const etag = `"${new Bun.CryptoHasher("sha1").update(body).digest("hex").slice(0, 20)}"`;
  return { body, contentType, etag };
}

function readPackageFile(specifier: string): Uint8Array<ArrayBuffer> {
  let path: string;
  try {
    path = fileURLToPath(import.meta.resolve(specifier));
    return readFileSync(path);
  } catch (cause) {
    throw new MyriadError(
      "ERR_ADMIN_ASSET_MISSING",
      `The admin dashboard needs ${specifier} from the uplot package: run \`bun install\` in the project.`,
      { cause },
    );
  }
}

let cached: DashboardAssets | null = null;

/**
 * Returns the dashboard's files, read from disk once per process: the page, uPlot's script
 * and stylesheet from node_modules (no CDN), and the page's script with its TypeScript types
 * stripped. Throws MyriadError ERR_ADMIN_ASSET_MISSING when uplot is not installed.
 */
export function dashboardAssets(): DashboardAssets {
  if (cached) return cached;
  const html = readFileSync(fileURLToPath(new URL("./dashboard.html", import.meta.url)));
  const clientTs = readFileSync(fileURLToPath(new URL("./dashboard-client.ts", import.meta.url)), "utf8");
  const clientJs = new Bun.Transpiler({ loader: "ts", target: "browser" }).transformSync(clientTs);
  cached = {
    "/": asset(html, "text/html; charset=utf-8"),
    "/assets/uplot.js": asset(readPackageFile("uplot/dist/uPlot.iife.min.js"), "text/javascript; charset=utf-8"),
    "/assets/uplot.css": asset(readPackageFile("uplot/dist/uPlot.min.css"), "text/css; charset=utf-8"),
    "/assets/dashboard.js": asset(new TextEncoder().encode(clientJs), "text/javascript; charset=utf-8"),
  };
  return cached;
}
