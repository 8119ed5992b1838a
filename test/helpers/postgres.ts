/**
 * A real PostgreSQL for tests: `TEST_DATABASE_URL` (default the local server, trust auth, database
 * `test`), and a fresh database per caller, dropped afterwards. Where no server answers, tests that
 * need one skip with one line saying what to start; under CI (`VOICE_AGENT_CI=1`) that is a failure.
 */
import { SQL } from "bun";

export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

const START_HINT =
  "start PostgreSQL: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

/** Undefined when a server answers at TEST_DATABASE_URL; otherwise why not, in one line. */
async function unavailable(): Promise<string | undefined> {
  const sql = new SQL(TEST_DATABASE_URL, { max: 1, connectionTimeout: 2, idleTimeout: 1 });
  try {
    await sql`SELECT 1`;
    return undefined;
  } catch (error) {
    return `PostgreSQL at ${redacted(TEST_DATABASE_URL)}: ${(error as Error).message}`;
  } finally {
    await sql.close().catch(() => {});
  }
}

const reason = await unavailable();
if (reason && process.env.VOICE_AGENT_CI === "1")
  throw new Error(`CI needs PostgreSQL (${reason}); ${START_HINT}`);
if (reason) console.warn(`skipping PostgreSQL tests: ${reason}; ${START_HINT}`);

/** True when PostgreSQL tests can run here. */
export const postgresReady = reason === undefined;

export interface TestDatabase {
  /** Connection URL of the fresh database. */
  url: string;
  /** Drops the database (closing what still holds it). */
  drop(): Promise<void>;
}

/** A new, empty database on the test server, named for no one else. */
export async function freshDatabase(): Promise<TestDatabase> {
  const name = `va_test_${Bun.randomUUIDv7().replaceAll("-", "").slice(-16)}`;
  const admin = new SQL(TEST_DATABASE_URL, { max: 1 });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.close();
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const sql = new SQL(TEST_DATABASE_URL, { max: 1 });
      await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await sql.close();
    },
  };
}

function redacted(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = "***";
  return parsed.toString();
}
