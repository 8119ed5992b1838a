/**
 * A real Redis for tests: `TEST_REDIS_URL` (default the local server) and a key prefix per caller,
 * whose keys are deleted afterwards. Where no server answers, tests that need one skip with one line
 * saying what to start; under CI (`VOICE_AGENT_CI=1`) that is a failure.
 */
import { RedisClient } from "bun";

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

const START_HINT =
  'start Redis: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no';

async function unavailable(): Promise<string | undefined> {
  const client = new RedisClient(TEST_REDIS_URL, {
    connectionTimeout: 2_000,
    autoReconnect: false,
  });
  try {
    await client.send("PING", []);
    return undefined;
  } catch (error) {
    return `Redis at ${TEST_REDIS_URL}: ${(error as Error).message}`;
  } finally {
    client.close();
  }
}

const reason = await unavailable();
if (reason && process.env.VOICE_AGENT_CI === "1")
  throw new Error(`CI needs Redis (${reason}); ${START_HINT}`);
if (reason) console.warn(`skipping Redis tests: ${reason}; ${START_HINT}`);

/** True when Redis tests can run here. */
export const redisReady = reason === undefined;

export interface TestPrefix {
  prefix: string;
  /** Deletes every key under the prefix. */
  clear(): Promise<void>;
}

/** A key prefix no other test uses. */
export function freshPrefix(): TestPrefix {
  const prefix = `va-test:${Bun.randomUUIDv7()}:`;
  return {
    prefix,
    async clear() {
      const client = new RedisClient(TEST_REDIS_URL);
      try {
        let cursor = "0";
        do {
          const [next, keys] = (await client.send("SCAN", [
            cursor,
            "MATCH",
            `${prefix}*`,
            "COUNT",
            "500",
          ])) as [string, string[]];
          cursor = next;
          if (keys.length > 0) await client.send("DEL", keys);
        } while (cursor !== "0");
      } finally {
        client.close();
      }
    },
  };
}
