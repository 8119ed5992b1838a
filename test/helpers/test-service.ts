/**
 * `startService` for tests, on the storage the run asks for: with `TEST_STORAGE=postgres`, a service
 * configured for the in-memory SQLite store gets a fresh PostgreSQL database and a fresh Redis key
 * prefix instead (both cleared when it shuts down), so the whole-call tests run unchanged on the
 * embedded default and on a fleet's PostgreSQL + Redis. A test that names its own
 * database file keeps it: what it checks is SQLite's.
 */
import type { Config } from "../../src/config.ts";
import type { StreamGrant, TokenOptions } from "../../src/fleet/coordination.ts";
import type { Logger } from "../../src/log.ts";
import { type Service, type ServiceOverrides, startService } from "../../src/service.ts";
import { freshDatabase, postgresReady } from "./postgres.ts";
import { freshPrefix, redisReady, TEST_REDIS_URL } from "./redis.ts";

/** The engine this run puts services on. */
export const testStorage = process.env.TEST_STORAGE === "postgres" ? "postgres" : "sqlite";
if (testStorage === "postgres" && !(postgresReady && redisReady))
  throw new Error(
    "TEST_STORAGE=postgres needs PostgreSQL and Redis (TEST_DATABASE_URL, TEST_REDIS_URL)",
  );

export async function startTestService(
  config: Config,
  logger: Logger,
  overrides: ServiceOverrides = {},
): Promise<Service> {
  if (testStorage === "sqlite" || config.databaseUrl || config.databasePath !== ":memory:")
    return startService(config, logger, overrides);
  const database = await freshDatabase();
  const keys = freshPrefix();
  const cleanUp = async () => {
    await database.drop();
    await keys.clear();
  };
  const fleet: Config = {
    ...config,
    databaseUrl: database.url,
    redis: { url: TEST_REDIS_URL, keyPrefix: keys.prefix },
  };
  const service = await startService(fleet, logger, overrides).catch(async (error: unknown) => {
    await cleanUp();
    throw error;
  });
  return {
    ...service,
    async shutdown(reason) {
      await service.shutdown(reason);
      await cleanUp();
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
