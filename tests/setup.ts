// Preloaded by bunfig.toml before every test file. Integration tests start real processes
// (redis-server, bun run serve, chromium) on a 2-core machine shared with other work, so the
// default 5 s per test is too tight; bunfig's [test] timeout key is not honoured by bun 1.4.
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(30_000);
