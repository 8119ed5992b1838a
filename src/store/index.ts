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
import { LeadRepository } from "./leads.ts";
import { migrate } from "./migrations.ts";

export interface Store {
  readonly db: Database;
  readonly leads: LeadRepository;
  readonly calls: CallRepository;
  readonly appointments: AppointmentRepository;
  /** Checkpoints the WAL and closes the file. */
  close(): void;
}

const BUSY_TIMEOUT_MS = 5_000;

/**
 * @param path a file path (its folder is created) or ":memory:"
 * @param owner this process's instance id, recorded on the calls it holds
 * @example const store = openStore("./data/voice-agent.db"); store.leads.get(id); store.close();
 */
export function openStore(
  path: string,
  clock: Clock = systemClock,
  owner = `instance_${Bun.randomUUIDv7()}`,
): Store {
  if (path !== ":memory:") createPrivately(path);
  const db = new Database(path, { create: true, strict: true });
  db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA synchronous = NORMAL");
  db.run("PRAGMA foreign_keys = ON");
  migrate(db);
  return {
    db,
    leads: new LeadRepository(db, clock),
    calls: new CallRepository(db, clock, owner),
    appointments: new AppointmentRepository(db, clock),
    close() {
      db.run("PRAGMA optimize");
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
