import { Hono, type Context, type MiddlewareHandler } from "hono";
import { bearerChecker, hostOfHostHeader, isLoopbackHost } from "./auth.ts";
import { dashboardAssets, type Asset } from "./dashboard.ts";
import { PROMETHEUS_CONTENT_TYPE, renderMetrics } from "./metrics.ts";
import { statsBody } from "./stats.ts";
import type { AdminStatsSource } from "./types.ts";

/** Options of createAdminApp. */
export interface AdminAppOptions {
  /** Where /stats, /metrics and /readyz read from and what POST /admin/stop stops. */
  source: AdminStatsSource;
  /** When set (non-empty), /stats, /metrics and POST /admin/stop need
   *  `Authorization: Bearer <token>`; otherwise they answer 401. */
  token?: string;
}

/**
 * What the app reads from its Hono `env`: startAdminServer passes `{ remoteAddress }`; under a
 * plain `Bun.serve({ fetch: app.fetch })` the env is the Bun Server, which has requestIP().
 */
type AdminEnv = { remoteAddress?: string; requestIP?: (req: Request) => { address: string } | null };

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function remoteAddress(c: Context<{ Bindings: AdminEnv }>): string | null {
  const env = c.env as AdminEnv | undefined;
  if (!env) return null;
  if (typeof env.remoteAddress === "string") return env.remoteAddress;
  if (typeof env.requestIP === "function") return env.requestIP(c.req.raw)?.address ?? null;
  return null;
}

/** Returns the host:port of an Origin header value, or null for "null" or a malformed one. */
function originHost(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}

function serveAsset(c: Context, a: Asset, extra: Record<string, string> = {}): Response {
  const headers: Record<string, string> = {
    "content-type": a.contentType,
    etag: a.etag,
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    ...extra,
  };
  if (c.req.header("if-none-match") === a.etag) return new Response(null, { status: 304, headers });
  return new Response(a.body, { status: 200, headers });
}

/**
 * Returns the admin Hono app. Routes:
 *
 * - `GET /healthz` — 200 "ok" while the process answers (liveness). Always open.
 * - `GET /readyz` — 200 "ready" while `source.isAccepting()`, else 503 "stopping". Always
 *   open, so that load balancers and orchestrators can probe without the token; it reveals
 *   one bit.
 * - `GET /stats` — JSON AdminStatsBody: per-worker stats, their totals, pool stats.
 * - `GET /metrics` — Prometheus text format 0.0.4 (see renderMetrics).
 * - `POST /admin/stop` — starts a graceful stop through `source.stop()` (once, however many
 *   requests) and answers 202 at once; with `?wait=1` it answers 200 when the stop is done.
 *   With a token configured it needs the token; without one it is refused (403) unless the
 *   request comes from a loopback address with a loopback Host header and is not a
 *   cross-site browser request, so a web page cannot stop a server bound to 127.0.0.1.
 * - `GET /` and `GET /assets/{uplot.js,uplot.css,dashboard.js}` — the dashboard. These hold
 *   no data and are always open; with a token, open the page as `/?token=<token>` and its
 *   script sends the token as a bearer header on each /stats poll.
 *
 * With a token configured, /stats, /metrics and /admin/stop answer 401 (with
 * `WWW-Authenticate: Bearer`) unless the request carries `Authorization: Bearer <token>`;
 * the comparison is constant-time.
 */
export function createAdminApp(opts: AdminAppOptions): Hono<{ Bindings: AdminEnv }> {
  const { source } = opts;
  const token = opts.token !== undefined && opts.token !== "" ? opts.token : null;
  const check = token !== null ? bearerChecker(token) : null;
  const assets = dashboardAssets();
  const app = new Hono<{ Bindings: AdminEnv }>();

  const requireToken: MiddlewareHandler<{ Bindings: AdminEnv }> = async (c, next) => {
    if (check !== null && !check(c.req.header("authorization"))) {
      return c.json({ error: "unauthorized: send Authorization: Bearer <admin token>" }, 401, {
        "www-authenticate": 'Bearer realm="myriad-admin"',
      });
    }
    await next();
  };

  app.onError((err, c) => c.json({ error: err instanceof Error ? err.message : String(err) }, 500));
  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));

  app.get("/healthz", (c) => c.text("ok", 200, { "cache-control": "no-store" }));
  app.get("/readyz", (c) =>
    source.isAccepting()
      ? c.text("ready", 200, { "cache-control": "no-store" })
      : c.text("stopping", 503, { "cache-control": "no-store" }),
  );

  app.get("/stats", requireToken, async (c) => {
    const body = statsBody(await source.snapshot(), Date.now());
    return c.json(body, 200, { "cache-control": "no-store" });
  });

  app.get("/metrics", requireToken, async (c) => {
    const text = renderMetrics(await source.snapshot());
    return c.body(text, 200, { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" });
  });

  let stopping: Promise<void> | null = null;
  app.post("/admin/stop", requireToken, async (c) => {
    if (token === null) {
      const remote = remoteAddress(c);
      const host = c.req.header("host");
      const site = c.req.header("sec-fetch-site");
      const origin = c.req.header("origin");
      const crossSite =
        (site !== undefined && site !== "same-origin" && site !== "none") ||
        (origin !== undefined && originHost(origin) !== host);
      if (remote === null || !isLoopbackHost(remote) || host === undefined || !isLoopbackHost(hostOfHostHeader(host)) || crossSite) {
        return c.json(
          { error: "forbidden: without an admin token, POST /admin/stop is accepted only from loopback, not from a browser page of another origin; start the server with --admin-token or MYRIAD_ADMIN_TOKEN" },
          403,
        );
      }
    }
    if (stopping === null) {
      // Started before answering so that /readyz reports 503 from this moment on.
      try {
        stopping = Promise.resolve(source.stop());
      } catch (err) {
        stopping = Promise.reject(err);
      }
      stopping.catch((err: unknown) => console.error("myriad admin: graceful stop failed:", err));
    }
    if (c.req.query("wait") !== undefined) {
      await stopping;
      return c.json({ stopped: true }, 200);
    }
    return c.json({ stopping: true }, 202);
  });

  app.get("/", (c) => serveAsset(c, assets["/"], { "content-security-policy": CSP, "referrer-policy": "no-referrer" }));
  app.get("/assets/uplot.js", (c) => serveAsset(c, assets["/assets/uplot.js"]));
  app.get("/assets/uplot.css", (c) => serveAsset(c, assets["/assets/uplot.css"]));
  app.get("/assets/dashboard.js", (c) => serveAsset(c, assets["/assets/dashboard.js"]));

  return app;
}
