/**
 * Opens a PostgreSQL server as the service's storage: connects a pool (Bun's built-in `SQL`),
 * migrates the schema and hands out the repositories behind the storage port, each answering as
 * the SQLite store does. Call events and a live call's own changes are written behind: a crash
 * loses at most the last interval's (see `write-behind.ts`).
 */
import { SQL } from "bun";
import type { Clock } from "../../clock.ts";
import { DEFAULT_FLUSH_INTERVAL_MS } from "../index.ts";
import type { Storage } from "../port.ts";
import { PostgresAppointmentStore } from "./appointments.ts";
import { PostgresCallStore } from "./calls.ts";
import { PostgresCampaignStore } from "./campaigns.ts";
import { PostgresDncStore } from "./dnc.ts";
import { PostgresEndingStore } from "./endings.ts";
import { PostgresInstanceStore } from "./instances.ts";
import { PostgresLeadStore } from "./leads.ts";
import { migratePostgres } from "./migrations.ts";
import { PostgresSessionStore } from "./sessions.ts";

export interface PostgresStorageOptions {
  /** This process's instance id, recorded on the calls it holds. */
  owner?: string;
  /** How long call events are held before being written together (default 200 ms). */
  flushIntervalMs?: number;
  /** Held writes the database refused or that were dropped; by default thrown away silently. */
  onWriteFailure?(error: unknown, failed: number): void;
  /** Most connections in the pool (Bun's default: 10). */
  max?: number;
}

/**
 * @param url a `postgres://` connection URL
 * @example const storage = await openPostgresStorage(url, systemClock, {}); await storage.close();
 */
export async function openPostgresStorage(
  url: string,
  clock: Clock,
  {
    owner = `instance_${Bun.randomUUIDv7()}`,
    flushIntervalMs = DEFAULT_FLUSH_INTERVAL_MS,
    onWriteFailure = () => {},
    max,
  }: PostgresStorageOptions,
): Promise<Storage> {
  const sql = new SQL(url, { max });
  try {
    await migratePostgres(sql);
  } catch (error) {
    await sql.close();
    throw error;
  }
  const calls = new PostgresCallStore(sql, clock, { owner, flushIntervalMs, onWriteFailure });
  return {
    engine: "postgres",
    leads: new PostgresLeadStore(sql, clock),
    calls,
    appointments: new PostgresAppointmentStore(sql, clock),
    instances: new PostgresInstanceStore(sql, clock, owner),
    endings: new PostgresEndingStore(sql, owner),
    sessions: new PostgresSessionStore(sql),
    dnc: new PostgresDncStore(sql),
    campaigns: new PostgresCampaignStore(sql),
    async close() {
      const left = await calls.close();
      if (left > 0) {
        onWriteFailure(
          new Error("the database did not take the held writes before shutdown"),
          left,
        );
      }
      await sql.close();
    },
  };
}
