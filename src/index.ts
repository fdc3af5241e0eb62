/**
 * myriad's library surface: the reactor (createServer), the codecs, the connection pool and
 * clients, and the two data structures under them. The admin server (Hono) and the cluster
 * supervisor are separate entry points, `myriad/admin` and `myriad/cluster`, so that a worker
 * process that imports `myriad` does not pay for them. The example apps (the KV server, echo,
 * the module-app contract) are not the library: they ship as `myriad/apps`.
 */
export { MyriadError, MyriadRangeError, MyriadTypeError, MYRIAD_ERROR_CODES, isMyriadError, type MyriadErrorCode } from "./errors.ts";
export * from "./timers/index.ts";
export * from "./conn-table/index.ts";
export * from "./codec/index.ts";
export * from "./reactor/index.ts";
export * from "./pool/index.ts";
export { VERSION } from "./version.ts";
