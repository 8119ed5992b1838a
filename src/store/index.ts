/** Opens the SQLite file (WAL, foreign keys, busy timeout), migrates it and hands out the typed repositories. */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
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
 * @example const store = openStore("./data/voice-agent.db"); store.leads.get(id); store.close();
 */
export function openStore(path: string, clock: Clock = systemClock): Store {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { create: true, strict: true });
  db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA synchronous = NORMAL");
  db.run("PRAGMA foreign_keys = ON");
  migrate(db);
  return {
    db,
    leads: new LeadRepository(db, clock),
    calls: new CallRepository(db, clock),
    appointments: new AppointmentRepository(db, clock),
    close() {
      db.run("PRAGMA optimize");
      db.close(false);
    },
  };
}
