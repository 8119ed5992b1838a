/**
 * One log line per HTTP request: method, path (no query string: it may carry personal data), status
 * and duration, the status being the one actually sent (a returned Response's own, e.g. a redirect's
 * 302). Health checks, metrics scrapes, docs assets and the favicon log at debug so probes do not
 * flood the journal. Each request is also handed to `observe` (the metrics of Twilio's webhooks).
 */
import { Elysia } from "elysia";
import type { Logger } from "../log.ts";
import { requestUrl } from "../request-url.ts";

const QUIET = new Set([
  "/health",
  "/metrics",
  "/docs",
  "/docs/json",
  "/docs/assets/scalar.js",
  "/favicon.ico",
  "/favicon.svg",
]);

export function accessLog(logger: Logger, observe?: (path: string, status: number) => void) {
  const started = new WeakMap<Request, number>();
  return new Elysia({ name: "access-log" })
    .onRequest(({ request }) => {
      started.set(request, performance.now());
    })
    .onAfterResponse({ as: "global" }, ({ request, set, response }) => {
      const path = requestUrl(request).pathname;
      if (path === "/twilio") return;
      const since = started.get(request);
      const fields = {
        method: request.method,
        path,
        status:
          response instanceof Response
            ? response.status
            : typeof set.status === "number"
              ? set.status
              : 200,
        ms: since === undefined ? undefined : Math.round((performance.now() - since) * 10) / 10,
      };
      if (QUIET.has(path)) logger.debug("http", fields);
      else logger.info("http", fields);
      observe?.(path, fields.status);
    });
}
