import { createHash, timingSafeEqual } from "node:crypto";

/** Returns the token of an `Authorization: Bearer <token>` header value (scheme matched
 *  case-insensitively, RFC 7235), or null when the header is missing or another scheme. */
function bearerToken(header: string | null | undefined): string | null {
  if (!header) return null;
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(header);
  return m ? (m[1] as string) : null;
}

/**
 * Returns a checker for requests' Authorization headers against `token`: it answers true
 * only for `Bearer <token>`. The expected digest is computed once.
 */
export function bearerChecker(token: string): (authorization: string | null | undefined) => boolean {
  const expected = createHash("sha256").update(token).digest();
  return (authorization) => {
    // Hash even a missing token so that a request without one costs the same.
    const presented = bearerToken(authorization);
    const got = createHash("sha256").update(presented ?? "").digest();
    return timingSafeEqual(got, expected) && presented !== null;
  };
}

/** Returns true for a host name or address that only this machine can reach: localhost,
 *  127.0.0.0/8, ::1 (bracketed or not) and their IPv4-mapped forms. */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  if (h.startsWith("::ffff:")) h = h.slice(7);
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}
