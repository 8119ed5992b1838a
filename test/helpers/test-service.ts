/**
 * `startService` for tests, on the storage the run asks for: with `TEST_STORAGE=postgres`, a service
 * configured for the in-memory SQLite store gets a fresh PostgreSQL database instead (dropped when it
 * shuts down), so the whole-call tests run unchanged on both engines. A test that names its own
 * database file keeps it: what it checks is SQLite's.
 */
import type { Config } from "../../src/config.ts";
import type { StreamGrant, TokenOptions } from "../../src/fleet/coordination.ts";
import type { Logger } from "../../src/log.ts";
import { type Service, type ServiceOverrides, startService } from "../../src/service.ts";
import { freshDatabase, postgresReady } from "./postgres.ts";

/** The engine this run puts services on. */
export const testStorage = process.env.TEST_STORAGE === "postgres" ? "postgres" : "sqlite";
if (testStorage === "postgres" && !postgresReady)
  throw new Error("TEST_STORAGE=postgres needs PostgreSQL at TEST_DATABASE_URL");

export async function startTestService(
  config: Config,
  logger: Logger,
  overrides: ServiceOverrides = {},
): Promise<Service> {
  if (testStorage === "sqlite" || config.databaseUrl || config.databasePath !== ":memory:")
    return startService(config, logger, overrides);
  const database = await freshDatabase();
  const service = await startService(
    { ...config, databaseUrl: database.url },
    logger,
    overrides,
  ).catch(async (error: unknown) => {
    await database.drop();
    throw error;
  });
  return {
    ...service,
    async shutdown(reason) {
      await service.shutdown(reason);
      await database.drop();
    },
  };
}

/** A stream token the service issues itself, as its webhooks would (no capacity limit). */
export async function grantStream(
  service: Service,
  key: string,
  grant: StreamGrant,
  options: TokenOptions,
): Promise<string> {
  const token = await service.coordination.issueToken(
    key,
    grant,
    options,
    Number.POSITIVE_INFINITY,
  );
  if (!token) throw new Error(`no token for ${key}`);
  return token;
}
