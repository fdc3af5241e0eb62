import { Hono, type Context, type MiddlewareHandler } from "hono";
import { MyriadTypeError } from "../errors.ts";
import { bearerChecker } from "./auth.ts";
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

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

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
 *   It needs the token: without a token configured it is always refused (403, saying to
 *   set --admin-token or MYRIAD_ADMIN_TOKEN).
 * - `GET /` and `GET /assets/{uplot.js,uplot.css,dashboard.js}` — the dashboard. These hold
 *   no data and are always open; with a token, open the page as `/?token=<token>` and its
 *   script sends the token as a bearer header on each /stats poll.
 *
 * With a token configured, /stats, /metrics and /admin/stop answer 401 (with
 * `WWW-Authenticate: Bearer`) unless the request carries `Authorization: Bearer <token>`;
 * the comparison is constant-time.
 */
export function createAdminApp(opts: AdminAppOptions): Hono {
  checkAdminOptions(opts);
  const { source } = opts;
  const token = opts.token !== undefined && opts.token !== "" ? opts.token : null;
  const check = token !== null ? bearerChecker(token) : null;
  const assets = dashboardAssets();
  const app = new Hono({ getPath: requestPath });

  const requireToken: MiddlewareHandler = async (c, next) => {
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
  app.get("/readyz", (c) => {
    if (!source.isAccepting()) return c.text("stopping", 503, { "cache-control": "no-store" });
    return c.text(source.busUp?.() === false ? "ready (bus down)" : "ready", 200, { "cache-control": "no-store" });
  });

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
    // Stopping the server is the one write this API has: it needs a token that proves
    // intent. Without one it is refused outright, from loopback too (any local process or a
    // page that reaches 127.0.0.1 could otherwise stop the server).
    if (token === null) {
      return c.json({ error: "forbidden: POST /admin/stop needs an admin token; set --admin-token or MYRIAD_ADMIN_TOKEN to enable /admin/stop" }, 403);
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

/**
 * Throws MyriadTypeError (ERR_ADMIN_OPTION) unless opts is { source, token? } with a source
 * that has snapshot(), isAccepting() and stop(): caught at start-up, not at the first request.
 */
function checkAdminOptions(opts: AdminAppOptions): void {
  if (typeof opts !== "object" || opts === null) {
    throw new MyriadTypeError("ERR_ADMIN_OPTION", `admin options must be an object like { source, token? }, got ${String(opts)}`);
  }
  const source = opts.source as Partial<AdminStatsSource> | null | undefined;
  if (
    typeof source !== "object" ||
    source === null ||
    typeof source.snapshot !== "function" ||
    typeof source.isAccepting !== "function" ||
    typeof source.stop !== "function"
  ) {
    throw new MyriadTypeError("ERR_ADMIN_OPTION", "admin option source must have snapshot(), isAccepting() and stop() (see serverSource)");
  }
  if (opts.token !== undefined && typeof opts.token !== "string") {
    throw new MyriadTypeError("ERR_ADMIN_OPTION", `admin option token must be a string, got ${typeof opts.token}`);
  }
}

/**
 * The path of a request. A balancer's health check is often HTTP/1.0 without a Host header
 * (HAProxy's `option httpchk GET /readyz`): Bun then hands over a relative URL ("/readyz"),
 * which Hono's default reading ("the path starts after the host") turns into "z".
 */
function requestPath(req: Request): string {
  const url = req.url;
  const start = url.startsWith("/") ? 0 : url.indexOf("/", url.indexOf("://") + 3);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}
