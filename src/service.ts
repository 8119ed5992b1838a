/**
 * The running service: opens the store, builds the app, listens, and shuts down in order — stop
 * taking calls, let live ones finish within the drain time, hang up the rest, close the database.
 */
import { type App, createApp } from "./app.ts";
import { CallRegistry } from "./call/registry.ts";
import { type Config, integrationStatus } from "./config.ts";
import type { Logger } from "./log.ts";
import { openStore, type Store } from "./store/index.ts";
import { VERSION } from "./version.ts";

export interface Service {
  readonly app: App;
  readonly store: Store;
  readonly calls: CallRegistry;
  /** Base URL the server listens on, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  readonly port: number;
  /** Idempotent; resolves once the server and the database are closed. */
  shutdown(reason: string): Promise<void>;
}

/** @example const service = startService(loadConfig(process.env), logger); await service.shutdown("SIGTERM"); */
export function startService(config: Config, logger: Logger): Service {
  const store = openStore(config.databasePath);
  const calls = new CallRegistry();
  const app = createApp({ config, calls, logger, version: VERSION });
  app.listen({ hostname: config.server.host, port: config.server.port });
  const server = app.server;
  if (!server) throw new Error("server did not start");
  const port = server.port ?? config.server.port;
  const url = `http://${server.hostname === "0.0.0.0" ? "127.0.0.1" : server.hostname}:${port}`;

  const integrations = integrationStatus(config);
  logger.info("listening", { url, host: config.server.host, port, version: VERSION, integrations });
  for (const [name, status] of Object.entries(integrations)) {
    if (!status.configured) logger.warn(`${name} not configured`, { missing: status.missing });
  }

  let stopped: Promise<void> | undefined;
  const stop = async (reason: string) => {
    const drainMs = config.server.shutdownDrainMs;
    calls.stopAccepting();
    logger.info("shutting down", { reason, activeCalls: calls.size, drainMs });
    if (!(await calls.waitUntilEmpty(drainMs))) {
      logger.warn("drain time over, hanging up live calls", { activeCalls: calls.size });
      await calls.hangUpAll("service shutting down");
    }
    await app.stop();
    store.close();
    logger.info("stopped", { reason });
  };

  return {
    app,
    store,
    calls,
    url,
    port,
    shutdown(reason) {
      stopped ??= stop(reason);
      return stopped;
    },
  };
}
