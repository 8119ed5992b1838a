/** Builds the HTTP/WebSocket application from its dependencies: routes, docs and the one error handler. */
import { Elysia } from "elysia";
import type { CallRegistry } from "./call/registry.ts";
import { type Config, integrationStatus } from "./config.ts";
import type { Logger } from "./log.ts";
import { docsRoutes } from "./routes/docs.ts";
import { errorHandler } from "./routes/errors.ts";
import { healthRoutes } from "./routes/health.ts";

export interface AppDeps {
  config: Config;
  calls: CallRegistry;
  logger: Logger;
  version: string;
}

/**
 * @example const app = createApp(deps); const res = await app.handle(new Request("http://localhost/health"));
 */
export function createApp(deps: AppDeps) {
  return new Elysia()
    .use(errorHandler(deps.logger))
    .use(docsRoutes(deps.version))
    .use(
      healthRoutes({
        version: deps.version,
        integrations: integrationStatus(deps.config),
        activeCalls: () => deps.calls.size,
        draining: () => deps.calls.draining,
      }),
    );
}

export type App = ReturnType<typeof createApp>;
