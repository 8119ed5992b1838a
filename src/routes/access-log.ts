/**
 * One log line per HTTP request: method, path (no query string: it may carry personal data), status
 * and duration. Health checks, docs assets and the favicon log at debug so probes do not flood the journal.
 */
import { Elysia } from "elysia";
import type { Logger } from "../log.ts";
import { requestUrl } from "../request-url.ts";

const QUIET = new Set([
  "/health",
  "/docs",
  "/docs/json",
  "/docs/assets/scalar.js",
  "/favicon.ico",
  "/favicon.svg",
]);

export function accessLog(logger: Logger) {
  const started = new WeakMap<Request, number>();
  return new Elysia({ name: "access-log" })
    .onRequest(({ request }) => {
      started.set(request, performance.now());
    })
    .onAfterResponse({ as: "global" }, ({ request, set }) => {
      const path = requestUrl(request).pathname;
      if (path === "/twilio") return;
      const since = started.get(request);
      const fields = {
        method: request.method,
        path,
        status: typeof set.status === "number" ? set.status : 200,
        ms: since === undefined ? undefined : Math.round((performance.now() - since) * 10) / 10,
      };
      if (QUIET.has(path)) logger.debug("http", fields);
      else logger.info("http", fields);
    });
}
