/**
 * `voice-agent migrate` and `voice-agent db copy`: an SQLite database with every kind of row moves
 * into a fresh PostgreSQL database and reads back the same through the storage port; a target with
 * data is refused untouched; the commands as an operator runs them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { copyToPostgres } from "../../src/cli/db.ts";
import { openStore } from "../../src/store/index.ts";
import type { Storage } from "../../src/store/port.ts";
import { openPostgresStorage } from "../../src/store/postgres/index.ts";
import { sqliteStorage } from "../../src/store/sqlite-storage.ts";
import { ManualClock } from "../fakes/clock.ts";
import { freshDatabase, postgresReady, type TestDatabase } from "../helpers/postgres.ts";

const MAIN = join(import.meta.dir, "../../src/main.ts");

/** Runs the CLI from source with only these variables (and PATH). */
async function cli(args: string[], env: Record<string, string>) {
  const child = Bun.spawn(["bun", "run", MAIN, ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    cwd: tmpdir(),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, out, err] = await Promise.all([
    child.exited,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  return { code, out, err };
}

/** Everything a caller can read through the port, for comparing two stores. */
async function snapshot(storage: Storage) {
  const calls = await storage.calls.list({ limit: 200 });
  const slots = await storage.appointments.openSlots({
    calendar: "dental",
    from: "2026-01-01T00:00:00.000Z",
    to: "2027-01-01T00:00:00.000Z",
    limit: 500,
  });
  return {
    leads: await storage.leads.list(200),
    calls,
    events: await Promise.all(calls.map((call) => storage.calls.events(call.sid))),
    slots,
    bookings: await storage.appointments.bookingsByPhone("+15557654321"),
    cancelled: await storage.appointments.booking("ZZZZZZ"),
  };
}

describe.skipIf(!postgresReady)("db copy and migrate on PostgreSQL", () => {
  let dir: string;
  let path: string;
  let database: TestDatabase;
  const clock = new ManualClock();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "voice-agent-db-copy-"));
    path = join(dir, "voice-agent.db");
    database = await freshDatabase();
    const store = openStore(path, clock, { owner: "instance_old" });
    const lead = store.leads.create({
      first_name: "Alex",
      last_name: "Mitchell",
      year_built: 1992,
    });
    const base = { from_number: "+15550001111", to_number: "+15557654321", scenario: "x" };
    store.calls.create({
      ...base,
      sid: "CA1",
      direction: "outbound",
      status: "queued",
      lead_id: lead.id,
    });
    store.calls.started("CA1");
    store.calls.appendEvent("CA1", {
      kind: "transcript",
      data: { role: "user", text: 'Hi ✓ "q"' },
    });
    store.calls.update("CA1", {
      caller_audio: {
        received: 3,
        forwarded: 2,
        held_back: { before_agent_ready: 1, awaiting_verdict: 0, agent_reconnecting: 0, ending: 0 },
      },
    });
    clock.advance(1000);
    store.calls.create({ ...base, sid: "CA2", direction: "inbound", status: "ringing" });
    store.calls.endIfOpen("CA2", "caller_hung_up", "bye");
    store.appointments.addSlots(
      [9, 10, 11].map((hour) => ({
        calendar: "dental",
        provider: "Dr. Patel",
        starts_at: `2026-03-03T${hour}:00:00.000Z`,
        ends_at: `2026-03-03T${hour}:30:00.000Z`,
      })),
    );
    store.appointments.book({ slot_id: 1, name: "Jamie", phone: "+15557654321", call_sid: "CA1" });
    const cancelled = store.appointments.book({ slot_id: 2, name: "Sam", phone: "+15550000000" });
    if (cancelled.ok) store.appointments.cancel(cancelled.booking.id);
    store.close();
  });
  afterAll(async () => {
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("every row moves with its ids and times, and reads back the same", async () => {
    expect(await copyToPostgres(path, database.url)).toEqual([
      { table: "leads", rows: 1 },
      { table: "calls", rows: 2 },
      { table: "call_events", rows: 2 },
      { table: "slots", rows: 3 },
      { table: "bookings", rows: 2 },
    ]);
    const before = sqliteStorage(openStore(path, clock, { owner: "instance_old" }));
    const after = await openPostgresStorage(database.url, clock, { owner: "instance_new" });
    try {
      expect(await snapshot(after)).toEqual(await snapshot(before));
      // New rows continue after the copied ids.
      expect(
        await after.appointments.addSlots([
          {
            calendar: "dental",
            provider: "Dr. Chen",
            starts_at: "2026-03-04T09:00:00.000Z",
            ends_at: "2026-03-04T09:30:00.000Z",
          },
        ]),
      ).toBe(1);
      const [newest] = await after.appointments.openSlots({
        calendar: "dental",
        from: "2026-03-04T00:00:00.000Z",
        to: "2026-03-05T00:00:00.000Z",
        limit: 1,
      });
      expect(newest?.id).toBe(4);
      after.calls.appendEvent("CA1", { kind: "status", data: { status: "completed" } });
      const events = await after.calls.events("CA1");
      expect(events.map((event) => event.id)).toEqual([1, 3]);
    } finally {
      await before.close();
      await after.close();
    }
  });

  test("a target that holds data is refused, and nothing is written", async () => {
    await expect(copyToPostgres(path, database.url)).rejects.toThrow(/already holds leads/);
    const after = await openPostgresStorage(database.url, clock, {});
    expect(await after.leads.list(10)).toHaveLength(1);
    await after.close();
  });

  test("the commands as an operator runs them", async () => {
    const empty = await freshDatabase();
    try {
      const first = await cli(["migrate"], { DATABASE_URL: empty.url });
      expect(first).toMatchObject({ code: 0 });
      expect(first.out).toContain("PostgreSQL: applied #1, #2, #3, #4, #5, #6");
      const again = await cli(["migrate"], { DATABASE_URL: empty.url });
      expect(again.out).toContain("nothing to apply");

      const copied = await cli(["db", "copy", "--to", empty.url], { DATABASE_PATH: path });
      expect(copied.code).toBe(0);
      expect(copied.out).toContain("leads 1, calls 2, call_events 2, slots 3, bookings 2");
      expect(copied.out).not.toContain(empty.url);

      const wrong = await cli(["db", "copy", "--to", "mysql://x"], { DATABASE_PATH: path });
      expect(wrong.code).toBe(64);
      expect(wrong.err).toContain("--to: expected a postgres:// URL");
      const missing = await cli(["db", "copy", "--to", empty.url], {
        DATABASE_PATH: join(dir, "none.db"),
      });
      expect(missing.code).toBe(1);
      expect(missing.err).toContain("no SQLite database");
    } finally {
      await empty.drop();
    }
  });
});

test("migrate on the SQLite file brings it to the schema and says so", async () => {
  const folder = mkdtempSync(join(tmpdir(), "voice-agent-migrate-"));
  try {
    const file = join(folder, "voice-agent.db");
    const first = await cli(["migrate"], { DATABASE_PATH: file });
    expect(first.code).toBe(0);
    expect(first.out).toContain(`SQLite ${file}: applied #1, #2, #3, #4, #5, #6`);
    expect((await cli(["migrate", "extra"], { DATABASE_PATH: file })).code).toBe(64);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
