/**
 * Opens the SQLite file (WAL, foreign keys, busy timeout), migrates it and hands out the typed
 * repositories. The folder it creates is 0700 and the database files are 0600, whatever the umask:
 * they hold phone numbers, names and transcripts.
 */
import { Database } from "bun:sqlite";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { type Clock, systemClock } from "../clock.ts";
import { AppointmentRepository } from "./appointments.ts";
import { CallRepository } from "./calls.ts";
import { CampaignRepository } from "./campaigns.ts";
import { DncRepository } from "./dnc.ts";
import { EndingRepository } from "./endings.ts";
import { InstanceRepository } from "./instances.ts";
import { LeadRepository } from "./leads.ts";
import { migrate } from "./migrations.ts";
import { SessionRepository } from "./sessions.ts";
import { WriteBehind } from "./write-behind.ts";

export interface Store {
  readonly db: Database;
  readonly leads: LeadRepository;
  readonly calls: CallRepository;
  readonly appointments: AppointmentRepository;
  readonly instances: InstanceRepository;
  readonly endings: EndingRepository;
  readonly sessions: SessionRepository;
  readonly dnc: DncRepository;
  readonly campaigns: CampaignRepository;
  /** Writes what is held, checkpoints the WAL and closes the file. */
  close(): void;
}

export interface StoreOptions {
  /** This process's instance id, recorded on the calls it holds. */
  owner?: string;
  /** How long call events are held before being written together (default 200 ms). */
  flushIntervalMs?: number;
  /** Held writes the database refused; by default they are thrown away silently. */
  onWriteFailure?(error: unknown, failed: number): void;
  /** How long a write waits for another process's lock before failing (default 5 s). */
  busyTimeoutMs?: number;
}

const BUSY_TIMEOUT_MS = 5_000;
export const DEFAULT_FLUSH_INTERVAL_MS = 200;

/**
 * @param path a file path (its folder is created) or ":memory:"
 * @example const store = openStore("./data/voice-agent.db"); store.leads.get(id); store.close();
 */
export function openStore(
  path: string,
  clock: Clock = systemClock,
  {
    owner = `instance_${Bun.randomUUIDv7()}`,
    flushIntervalMs = DEFAULT_FLUSH_INTERVAL_MS,
    onWriteFailure = () => {},
    busyTimeoutMs = BUSY_TIMEOUT_MS,
  }: StoreOptions = {},
): Store {
  if (path !== ":memory:") createPrivately(path);
  const db = new Database(path, { create: true, strict: true });
  db.run(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA synchronous = NORMAL");
  db.run("PRAGMA foreign_keys = ON");
  migrate(db);
  const writes = new WriteBehind(db, clock, {
    intervalMs: flushIntervalMs,
    busyTimeoutMs,
    onFailure: onWriteFailure,
  });
  return {
    db,
    leads: new LeadRepository(db, clock),
    calls: new CallRepository(db, clock, owner, writes),
    appointments: new AppointmentRepository(db, clock),
    instances: new InstanceRepository(db, clock, owner),
    endings: new EndingRepository(db, owner),
    sessions: new SessionRepository(db),
    dnc: new DncRepository(db),
    campaigns: new CampaignRepository(db),
    close() {
      writes.flush();
      const left = writes.stop();
      if (left > 0) onWriteFailure(new Error("the database stayed locked until shutdown"), left);
      try {
        db.run("PRAGMA optimize");
      } catch {
        // Only an optimisation; a database another process still locks closes all the same.
      }
      db.close(false);
    },
  };
}

/**
 * Creates the database's folder (0700) and file (0600) if missing, and makes an existing file and its
 * WAL companions 0600: SQLite gives the -wal and -shm files the database file's mode.
 */
function createPrivately(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, "a", 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
}
