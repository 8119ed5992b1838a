/**
 * The storage port's contract, run against both engines: the embedded SQLite store and PostgreSQL
 * (a fresh database for this file on the test server; skipped with one line where none runs, never
 * in CI). Whatever a caller may rely on is asserted here once, for both.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { DEFAULT_RETRY } from "../../src/campaigns/schedule.ts";
import type {
  Campaign,
  ClaimedAttempt,
  EndedAttempt,
  NewCampaign,
} from "../../src/store/campaigns.ts";
import { openStore } from "../../src/store/index.ts";
import type { Storage } from "../../src/store/port.ts";
import { openPostgresStorage } from "../../src/store/postgres/index.ts";
import { sqliteStorage } from "../../src/store/sqlite-storage.ts";
import { ManualClock } from "../fakes/clock.ts";
import { freshDatabase, postgresReady, type TestDatabase } from "../helpers/postgres.ts";
import { alex, outbound, slot, week } from "./fixtures.ts";

/** One engine: a database per test (or per file, emptied per test) that several stores can open. */
interface Engine {
  name: string;
  ready: boolean;
  setUp(): Promise<void>;
  /** Empties the database before a test; returns where it is. */
  reset(): Promise<string>;
  open(where: string, clock: ManualClock, owner: string): Promise<Storage>;
  tearDown(): Promise<void>;
}

let sqliteFolder = "";
let sqliteFiles = 0;
const sqlite: Engine = {
  name: "SQLite",
  ready: true,
  async setUp() {
    sqliteFolder = mkdtempSync(join(tmpdir(), "voice-agent-contract-"));
  },
  async reset() {
    sqliteFiles += 1;
    return join(sqliteFolder, `db-${sqliteFiles}.sqlite`);
  },
  async open(path, clock, owner) {
    return sqliteStorage(openStore(path, clock, { owner }));
  },
  async tearDown() {
    rmSync(sqliteFolder, { recursive: true, force: true });
  },
};

let database: TestDatabase | undefined;
const postgres: Engine = {
  name: "PostgreSQL",
  ready: postgresReady,
  async setUp() {
    database = await freshDatabase();
  },
  async reset() {
    if (!database) throw new Error("no database");
    // The first store of a test migrates; empty what an earlier test left (TRUNCATE fires no row triggers).
    const sql = new SQL(database.url, { max: 1 });
    const [exists] = await sql`SELECT to_regclass('call_events') IS NOT NULL AS migrated`;
    if (exists?.migrated)
      await sql.unsafe(
        "TRUNCATE bookings, slots, call_events, calls, leads, instances, campaigns RESTART IDENTITY CASCADE",
      );
    await sql.close();
    return database.url;
  },
  open(url, clock, owner) {
    return openPostgresStorage(url, clock, { owner, max: 4 });
  },
  async tearDown() {
    await database?.drop();
  },
};

for (const engine of [sqlite, postgres]) {
  describe.skipIf(!engine.ready)(`storage on ${engine.name}`, () => {
    let where = "";
    let clock: ManualClock;
    let storage: Storage;
    const opened: Storage[] = [];
    /** Another process's store on the same database (another instance of the service). */
    const another = async (owner: string) => {
      const other = await engine.open(where, clock, owner);
      opened.push(other);
      return other;
    };

    beforeAll(() => engine.setUp());
    afterAll(() => engine.tearDown());
    beforeEach(async () => {
      where = await engine.reset();
      clock = new ManualClock();
      storage = await another("instance_a");
    });
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
    });

    test("names its engine", () => {
      expect(storage.engine).toBe(engine.name === "SQLite" ? "sqlite" : "postgres");
    });

    describe("leads", () => {
      test("an import stores each phone once: not a lead's already, not twice in the batch", async () => {
        await storage.leads.create({ first_name: "Old", last_name: "Lead", phone: "+15551230001" });
        const { stored, duplicates } = await storage.leads.importMany([
          { first_name: "A", last_name: "One", phone: "+15551230002", timezone: "America/Chicago" },
          { first_name: "B", last_name: "Two", phone: "+15551230001" },
          { first_name: "C", last_name: "Three" },
          { first_name: "D", last_name: "Four", phone: "+15551230002" },
        ]);
        expect(stored.map((lead) => lead.first_name)).toEqual(["A", "C"]);
        expect(stored[0]?.timezone).toBe("America/Chicago");
        expect(duplicates).toEqual([1, 3]);
        expect(await storage.leads.list(10)).toHaveLength(3);
      });

      test("a created lead reads back whole, with id and timestamps", async () => {
        const lead = await storage.leads.create(alex);
        expect(lead.id).toMatch(/^lead_[0-9a-f-]{36}$/);
        expect(lead).toMatchObject(alex);
        expect(Object.keys(lead).sort()).toEqual(
          [...Object.keys(alex), "id", "created_at", "updated_at"].sort(),
        );
        expect(lead.created_at).toBe(clock.now().toISOString());
        expect(await storage.leads.get(lead.id)).toEqual(lead);
      });

      test("optional fields left out are null; an unknown id is undefined", async () => {
        const lead = await storage.leads.create({ first_name: "Sam", last_name: "Roe" });
        expect(lead.email).toBeNull();
        expect(lead.year_built).toBeNull();
        expect(await storage.leads.get("lead_missing")).toBeUndefined();
      });

      test("the list is newest first and pages", async () => {
        const first = await storage.leads.create({ first_name: "A", last_name: "One" });
        clock.advance(1000);
        const second = await storage.leads.create({ first_name: "B", last_name: "Two" });
        expect((await storage.leads.list(10)).map((lead) => lead.id)).toEqual([
          second.id,
          first.id,
        ]);
        expect((await storage.leads.list(1, 1)).map((lead) => lead.id)).toEqual([first.id]);
      });
    });

    describe("calls", () => {
      test("a call is created with its lead and read back; no instance holds it until it streams", async () => {
        const lead = await storage.leads.create({ first_name: "Alex", last_name: "Mitchell" });
        const call = await storage.calls.create({ ...outbound("CA1"), lead_id: lead.id });
        expect(call).toMatchObject({
          sid: "CA1",
          lead_id: lead.id,
          status: "queued",
          created_at: clock.now().toISOString(),
          owner: null,
          answered_by: null,
          caller_audio: null,
        });
        expect(await storage.calls.get("CA1")).toEqual(call);
        expect(await storage.calls.get("CA-none")).toBeUndefined();
        expect((await storage.calls.started("CA1"))?.owner).toBe("instance_a");
      });

      test("the schema refuses a missing lead, an unknown direction and a second row for a SID", async () => {
        await expect(
          storage.calls.create({ ...outbound("CA1"), lead_id: "lead_nobody" }),
        ).rejects.toThrow(/foreign key/i);
        await expect(
          storage.calls.create({ ...outbound("CA2"), direction: "sideways" as "inbound" }),
        ).rejects.toThrow(/check/i);
        await storage.calls.create(outbound("CA3"));
        await expect(storage.calls.create(outbound("CA3"))).rejects.toThrow(/unique|duplicate/i);
        expect((await storage.calls.ensure(outbound("CA3"))).sid).toBe("CA3");
      });

      test("updates change only the fields given; caller audio is structured", async () => {
        await storage.calls.create(outbound("CA1"));
        await storage.calls.update("CA1", {
          status: "in-progress",
          answered_at: "2026-03-02T15:00:05.000Z",
        });
        const callerAudio = {
          received: 10,
          forwarded: 8,
          held_back: {
            before_agent_ready: 2,
            awaiting_verdict: 0,
            agent_reconnecting: 0,
            ending: 0,
          },
        };
        const updated = await storage.calls.update("CA1", {
          answered_by: "human",
          caller_audio: callerAudio,
        });
        expect(updated).toMatchObject({
          status: "in-progress",
          answered_by: "human",
          answered_at: "2026-03-02T15:00:05.000Z",
          caller_audio: callerAudio,
        });
        expect(await storage.calls.update("CA-none", { status: "completed" })).toBeUndefined();
      });

      test("a message the caller left is kept with the record through later changes", async () => {
        await storage.calls.create(outbound("CA1"));
        const message = {
          caller_name: "Jamie Fox",
          callback_number: "+15557654321",
          message: 'Call about the bill "from March" ✓',
          taken_at: "2026-03-02T15:00:00.000Z",
        };
        await storage.calls.update("CA1", { message, outcome: "message_taken" });
        storage.calls.updateLater("CA1", {
          end_reason: "caller_hung_up",
          ended_at: "2026-03-02T15:01:00.000Z",
        });
        expect(await storage.calls.get("CA1")).toMatchObject({ message, outcome: "message_taken" });
        expect((await storage.calls.get("CA-none"))?.message).toBeUndefined();
      });

      test("an ended call gets the outcome its end reason implies, unless one was recorded", async () => {
        for (const [sid, reason, outcome] of [
          ["CA1", "silence", "no_response"],
          ["CA2", "agent_unavailable", "agent_error"],
          ["CA3", "something new", "failed"],
          ["CA5", "caller_hung_up", "caller_hung_up"],
          ["CA6", "agent_ended_call", "no_decision"],
          ["CA7", "fax_detected", "fax"],
        ] as const) {
          await storage.calls.create(outbound(sid));
          storage.calls.updateLater(sid, {
            end_reason: reason,
            ended_at: clock.now().toISOString(),
          });
          expect(await storage.calls.get(sid)).toMatchObject({ end_reason: reason, outcome });
        }
        await storage.calls.create(outbound("CA4"));
        await storage.calls.update("CA4", {
          outcome: "callback_requested",
          outcome_detail: "after 3",
        });
        await storage.calls.update("CA4", {
          end_reason: "caller_hung_up",
          ended_at: "2026-03-02T15:01:00.000Z",
        });
        expect(await storage.calls.get("CA4")).toMatchObject({
          outcome: "callback_requested",
          outcome_detail: "after 3",
        });
      });

      test("records ended as the service exits get service_shutdown, unless an outcome was recorded", async () => {
        await storage.calls.create(outbound("CA1"));
        await storage.calls.started("CA1");
        await storage.calls.create(outbound("CA2"));
        await storage.calls.started("CA2");
        await storage.calls.update("CA2", { outcome: "not_interested" });
        await storage.calls.create(outbound("CA3")); // never streamed: not this process's
        const ended = await storage.calls.endOpen("interrupted", { mine: true });
        expect(ended.map((call) => [call.sid, call.outcome, call.status])).toEqual([
          ["CA1", "service_shutdown", "completed"],
          ["CA2", "not_interested", "completed"],
        ]);
      });

      test("a started call is in progress and held by the instance streaming it", async () => {
        await storage.calls.create(outbound("CA1"));
        const b = await another("instance_b");
        clock.advance(2000);
        expect(await b.calls.started("CA1")).toMatchObject({
          status: "in-progress",
          owner: "instance_b",
          answered_at: "2026-03-02T15:00:02.000Z",
        });
        await storage.calls.endIfOpen("CA1", "caller_hung_up", "bye");
        expect(await b.calls.started("CA1")).toBeUndefined();
      });

      test("ending open records: mine, others', or one; each once, with its timeline entry", async () => {
        const b = await another("instance_b");
        await storage.calls.create(outbound("CA1"));
        await storage.calls.started("CA1");
        await b.calls.create(outbound("CA2"));
        await b.calls.started("CA2");
        await b.calls.update("CA2", { outcome: "not_interested" });
        await storage.calls.create(outbound("CA3"));

        const mine = await b.calls.endOpen("interrupted", { mine: true });
        expect(mine.map((call) => call.sid)).toEqual(["CA2"]);
        expect(mine[0]).toMatchObject({ outcome: "not_interested", status: "completed" });
        const others = await b.calls.endOpen("instance_lost", { mine: false });
        expect(others.map((call) => call.sid).sort()).toEqual(["CA1", "CA3"]);
        expect(await storage.calls.get("CA1")).toMatchObject({
          status: "completed",
          end_reason: "instance_lost",
        });
        expect(await storage.calls.endIfOpen("CA1", "stream_failed", "again")).toBeUndefined();
        const ended = (await storage.calls.events("CA1")).filter((event) => event.kind === "ended");
        expect(ended.map((event) => event.data)).toEqual([
          { reason: "instance_lost", detail: "the service stopped unexpectedly" },
        ]);
      });

      test("the list is newest first, filters by status and pages", async () => {
        for (const sid of ["CA1", "CA2", "CA3"]) {
          await storage.calls.create(outbound(sid));
          clock.advance(1000);
        }
        await storage.calls.update("CA2", { status: "completed" });
        const sids = async (query: Parameters<Storage["calls"]["list"]>[0]) =>
          (await storage.calls.list(query)).map((call) => call.sid);
        expect(await sids({ limit: 10 })).toEqual(["CA3", "CA2", "CA1"]);
        expect(await sids({ limit: 10, status: "completed" })).toEqual(["CA2"]);
        expect(await sids({ limit: 1, offset: 1 })).toEqual(["CA2"]);
      });

      test("the timeline keeps order, kinds, the moment of each event and structured data", async () => {
        await storage.calls.create(outbound("CA1"));
        storage.calls.appendEvent("CA1", {
          kind: "amd",
          data: { answered_by: "human", detection_ms: 2400 },
        });
        clock.advance(500);
        storage.calls.appendEvent("CA1", {
          kind: "transcript",
          data: { role: "assistant", text: 'Hi, this is Sarah. ✓ «quoted» "text"' },
        });
        storage.calls.appendEvent("CA1", {
          kind: "function_call",
          data: {
            id: "fc1",
            name: "check_availability",
            arguments: { day: "tomorrow", nested: [1, { deep: null }] },
            result: "10am",
            ok: true,
            duration_ms: 12,
          },
        });
        clock.advance(60_000);
        // Held until now: the read writes them first, each with the moment it happened.
        const events = await storage.calls.events("CA1");
        expect(events.map((event) => event.kind)).toEqual(["amd", "transcript", "function_call"]);
        expect(events[1]).toMatchObject({
          call_sid: "CA1",
          at: "2026-03-02T15:00:00.500Z",
          data: { role: "assistant", text: 'Hi, this is Sarah. ✓ «quoted» "text"' },
        });
        expect(events[2]?.data).toMatchObject({
          arguments: { day: "tomorrow", nested: [1, { deep: null }] },
        });
        expect(typeof events[0]?.id).toBe("number");
        expect(await storage.calls.events("CA-other")).toEqual([]);
      });

      test("held writes reach the database on flush and on close, where another instance reads them", async () => {
        await storage.calls.create(outbound("CA1"));
        const b = await another("instance_b");
        storage.calls.appendEvent("CA1", { kind: "status", data: { status: "ringing" } });
        storage.calls.updateLater("CA1", { status: "ringing" });
        expect(await b.calls.events("CA1")).toEqual([]);
        await storage.calls.flush();
        expect((await b.calls.events("CA1")).map((event) => event.kind)).toEqual(["status"]);
        expect((await b.calls.get("CA1"))?.status).toBe("ringing");
        storage.calls.appendEvent("CA1", { kind: "status", data: { status: "in-progress" } });
        await storage.close();
        opened.splice(opened.indexOf(storage), 1);
        expect(await b.calls.events("CA1")).toHaveLength(2);
      });
    });

    describe("the do-not-call list", () => {
      test("adds each number once, lists newest first, removes", async () => {
        const at = (minute: number) => new Date(Date.UTC(2026, 11, 2, 10, minute)).toISOString();
        expect(
          await storage.dnc.add(
            [
              { number: "+15551230001", reason: "asked", source: "agent" },
              { number: "+15551230002", reason: null, source: "api" },
            ],
            at(0),
          ),
        ).toEqual(["+15551230001", "+15551230002"]);
        const b = await another("instance_b");
        expect(
          await b.dnc.add([{ number: "+15551230001", reason: "again", source: "api" }], at(1)),
        ).toEqual([]);
        await b.dnc.add([{ number: "+15551230003", reason: null, source: "api" }], at(2));
        expect((await storage.dnc.list(10, 0)).map((entry) => entry.number)).toEqual([
          "+15551230003",
          "+15551230001",
          "+15551230002",
        ]);
        expect(await storage.dnc.get("+15551230001")).toEqual({
          number: "+15551230001",
          reason: "asked",
          source: "agent",
          added_at: at(0),
        });
        expect(await b.dnc.remove("+15551230001")).toBe(true);
        expect(await storage.dnc.remove("+15551230001")).toBe(false);
        expect(await storage.dnc.get("+15551230001")).toBeUndefined();
      });
    });

    describe("ended calls (the outbox)", () => {
      const NEW_CALL = {
        direction: "inbound" as const,
        from_number: "+15557654321",
        to_number: "+15550001111",
        scenario: "dental-receptionist",
        status: "in-progress",
      };
      const claimAt = (ms: number, leaseMs = 60_000) => ({
        dueBy: new Date(ms).toISOString(),
        now: new Date(ms).toISOString(),
        leaseUntil: new Date(ms + leaseMs).toISOString(),
        limit: 10,
      });

      test("every way a record ends adds one row; one process holds it at a time; a lost lease writes nothing", async () => {
        await storage.calls.create({ sid: "CAend1", ...NEW_CALL });
        await storage.calls.create({ sid: "CAend2", ...NEW_CALL });
        await storage.calls.create({ sid: "CAopen", ...NEW_CALL });
        await storage.calls.update("CAend1", {
          ended_at: clock.now().toISOString(),
          end_reason: "caller_hung_up",
        });
        await storage.calls.endIfOpen("CAend2", "stream_failed", "Twilio could not open it");
        // Ended again: still one row.
        await storage.calls.update("CAend1", { ended_at: clock.now().toISOString() });
        const b = await another("instance_b");
        const now = clock.now().getTime();
        const mine = await storage.endings.claim(claimAt(now));
        expect(mine.map((row) => row.call_sid).sort()).toEqual(["CAend1", "CAend2"]);
        expect(mine[0]).toMatchObject({ counted: false, state: "new", attempts: 0 });
        expect(await b.endings.claim(claimAt(now))).toEqual([]);
        // Counted once, by the holder only.
        expect(await b.endings.markCounted("CAend1")).toBe(false);
        expect(await storage.endings.markCounted("CAend1")).toBe(true);
        expect(await storage.endings.markCounted("CAend1")).toBe(false);
        // The lease runs out: another process takes the row; the first one's late result is dropped.
        const later = now + 61_000;
        expect((await b.endings.claim(claimAt(later))).map((row) => row.call_sid).sort()).toEqual([
          "CAend1",
          "CAend2",
        ]);
        await storage.endings.settle("CAend1", { state: "failed", attempts: 9 });
        await b.endings.settle("CAend1", { state: "delivered", attempts: 1 });
        expect(await storage.endings.get("CAend1")).toMatchObject({
          counted: true,
          state: "delivered",
          attempts: 1,
        });
        // Settled rows are done; a pending one comes back when due.
        await b.endings.settle("CAend2", {
          state: "pending",
          attempts: 1,
          next_attempt_at: new Date(later + 5_000).toISOString(),
        });
        expect(await storage.endings.claim(claimAt(later + 1_000))).toEqual([]);
        expect((await storage.endings.claim(claimAt(later + 5_000)))[0]?.call_sid).toBe("CAend2");
      });
    });

    describe("instances", () => {
      test("an instance silent too long loses its live calls to a survivor, once", async () => {
        const b = await another("instance_b");
        await storage.instances.beat();
        await b.instances.beat();
        await storage.calls.create(outbound("CA1"));
        await storage.calls.started("CA1");
        await storage.calls.create(outbound("CA2")); // not streaming yet: its token decides
        // Answered (Twilio's status callback) but its stream not started anywhere yet: not lost.
        await storage.calls.update("CA2", { status: "in-progress" });
        await b.calls.create(outbound("CA3"));
        await b.calls.started("CA3");
        const silentSince = () => new Date(clock.now().getTime() - 20_000).toISOString();
        expect(await b.calls.endLost(silentSince())).toEqual([]);

        clock.advance(25_000);
        await b.instances.beat();
        const lost = await b.calls.endLost(silentSince());
        expect(lost.map((call) => call.sid)).toEqual(["CA1"]);
        expect(lost[0]).toMatchObject({ end_reason: "instance_lost", status: "completed" });
        expect((await b.calls.get("CA2"))?.ended_at).toBeNull();
        expect((await b.calls.get("CA3"))?.ended_at).toBeNull();
        expect(await b.calls.endLost(silentSince())).toEqual([]);
        const [ended] = (await b.calls.events("CA1")).filter((event) => event.kind === "ended");
        expect(ended?.data).toMatchObject({ reason: "instance_lost" });
      });

      test("a live call of an instance that never beat or has left is lost too; a beating one's is not", async () => {
        const b = await another("instance_b");
        const c = await another("instance_c");
        await b.calls.create(outbound("CA1"));
        await b.calls.started("CA1");
        await c.calls.create(outbound("CA2"));
        await c.calls.started("CA2");
        await c.instances.beat();
        await c.instances.leave();
        await storage.calls.create(outbound("CA3"));
        await storage.calls.started("CA3");
        const d = await another("instance_d");
        await d.instances.beat();
        await d.calls.create(outbound("CA4"));
        await d.calls.started("CA4");
        const lost = await storage.calls.endLost(clock.now().toISOString());
        expect(lost.map((call) => call.sid).sort()).toEqual(["CA1", "CA2"]);
      });
    });

    describe("appointments", () => {
      beforeEach(async () => {
        await storage.appointments.addSlots([
          slot("Dr. Patel", "2026-03-03T09:00:00.000Z"),
          slot("Dr. Patel", "2026-03-03T09:30:00.000Z"),
          slot("Dr. Chen", "2026-03-03T09:00:00.000Z"),
          slot("Dr. Chen", "2026-03-10T09:00:00.000Z"),
        ]);
      });
      const firstOpen = async () => {
        const [first] = await storage.appointments.openSlots(week);
        if (!first) throw new Error("no slot");
        return first;
      };

      test("adding slots is idempotent; a slot must end after it starts", async () => {
        expect(
          await storage.appointments.addSlots([slot("Dr. Patel", "2026-03-03T09:00:00.000Z")]),
        ).toBe(0);
        expect(await storage.appointments.openSlots(week)).toHaveLength(3);
        await expect(
          storage.appointments.addSlots([slot("Dr. Patel", "2026-03-04T09:00:00.000Z", -30)]),
        ).rejects.toThrow(/check/i);
      });

      test("open slots come in time order, by range and provider, with numeric ids", async () => {
        const open = await storage.appointments.openSlots(week);
        expect(open.map((s) => `${s.starts_at} ${s.provider}`)).toEqual([
          "2026-03-03T09:00:00.000Z Dr. Chen",
          "2026-03-03T09:00:00.000Z Dr. Patel",
          "2026-03-03T09:30:00.000Z Dr. Patel",
        ]);
        expect(typeof open[0]?.id).toBe("number");
        expect(await storage.appointments.slot(open[0]?.id ?? 0)).toEqual(open[0]);
        expect(
          await storage.appointments.openSlots({ ...week, provider: "Dr. Chen" }),
        ).toHaveLength(1);
        expect(await storage.appointments.openSlots({ ...week, limit: 1 })).toHaveLength(1);
      });

      test("a booking takes the slot and reads back by code (any case), phone and call", async () => {
        const first = await firstOpen();
        await storage.calls.create(outbound("CA1"));
        const result = await storage.appointments.book({
          slot_id: first.id,
          name: "Jamie Fox",
          phone: "+15557654321",
          reason: "cleaning",
          call_sid: "CA1",
        });
        if (!result.ok) throw new Error(result.reason);
        expect(result.booking).toMatchObject({
          status: "booked",
          name: "Jamie Fox",
          provider: first.provider,
          starts_at: first.starts_at,
          lead_id: null,
          cancelled_at: null,
        });
        expect(result.booking.id).toMatch(/^[A-HJ-NP-Z2-9]{6}$/);
        expect((await storage.appointments.openSlots(week)).map((s) => s.id)).not.toContain(
          first.id,
        );
        expect(await storage.appointments.booking(result.booking.id.toLowerCase())).toEqual(
          result.booking,
        );
        expect(await storage.appointments.bookingsByPhone("+15557654321")).toEqual([
          result.booking,
        ]);
        expect(await storage.appointments.bookingsByCall("CA1")).toEqual([result.booking]);
      });

      test("a taken slot is refused, an unknown one too", async () => {
        const first = await firstOpen();
        expect((await storage.appointments.book({ slot_id: first.id, name: "One" })).ok).toBe(true);
        expect(await storage.appointments.book({ slot_id: first.id, name: "Two" })).toEqual({
          ok: false,
          reason: "slot_taken",
        });
        expect(await storage.appointments.book({ slot_id: 9999, name: "Three" })).toEqual({
          ok: false,
          reason: "no_such_slot",
        });
      });

      test("cancelling frees the slot; cancelling twice does nothing", async () => {
        const first = await firstOpen();
        const booked = await storage.appointments.book({
          slot_id: first.id,
          name: "One",
          phone: "+15550000001",
        });
        if (!booked.ok) throw new Error(booked.reason);
        expect(await storage.appointments.cancel(booked.booking.id.toLowerCase())).toMatchObject({
          status: "cancelled",
          cancelled_at: "2026-03-02T15:00:00.000Z",
        });
        expect(await storage.appointments.cancel(booked.booking.id)).toBeUndefined();
        expect(await storage.appointments.bookingsByPhone("+15550000001")).toEqual([]);
        expect((await storage.appointments.book({ slot_id: first.id, name: "Two" })).ok).toBe(true);
      });

      test("caps per call and per phone are checked in the same step as the booking", async () => {
        await storage.calls.create(outbound("CA1"));
        await storage.calls.create(outbound("CA2"));
        const open = await storage.appointments.openSlots(week);
        const after = "2026-03-02T15:00:00.000Z";
        const book = (index: number, call: string, phone: string) =>
          storage.appointments.book({
            slot_id: open[index]?.id ?? 0,
            name: "Jamie Fox",
            phone,
            call_sid: call,
            limits: { perCall: 1, perPhone: 2, after },
          });
        expect((await book(0, "CA1", "+15550000001")).ok).toBe(true);
        expect(await book(1, "CA1", "+15550000002")).toEqual({ ok: false, reason: "call_limit" });
        expect((await book(1, "CA2", "+15550000001")).ok).toBe(true);
        await storage.calls.create(outbound("CA3"));
        expect(await book(2, "CA3", "+15550000001")).toEqual({ ok: false, reason: "phone_limit" });
        // Bookings that start before `after` (past ones) do not count against the phone.
        const later = await storage.appointments.book({
          slot_id: open[2]?.id ?? 0,
          name: "Jamie Fox",
          phone: "+15550000001",
          call_sid: "CA3",
          limits: { perPhone: 2, after: "2026-03-03T09:10:00.000Z" },
        });
        expect(later.ok).toBe(true);
      });

      test("20 bookings for one phone at once, over three instances, with a cap of 3: exactly 3", async () => {
        await storage.appointments.addSlots(
          Array.from({ length: 20 }, (_, hour) =>
            slot("Dr. Lee", `2026-03-05T${String(hour + 2).padStart(2, "0")}:00:00.000Z`),
          ),
        );
        const lee = await storage.appointments.openSlots({ ...week, provider: "Dr. Lee" });
        const instances = [storage, await another("instance_b"), await another("instance_c")];
        const results = await Promise.all(
          lee.map((open, index) =>
            (instances[index % 3] as Storage).appointments.book({
              slot_id: open.id,
              name: `Caller ${index}`,
              phone: "+15550000009",
              limits: { perPhone: 3, after: "2026-03-02T00:00:00.000Z" },
            }),
          ),
        );
        expect(results.filter((result) => result.ok)).toHaveLength(3);
        expect(
          results.filter((result) => !result.ok && result.reason === "phone_limit"),
        ).toHaveLength(17);
      });

      test("50 bookings of one slot at once, from three instances: exactly one wins", async () => {
        const first = await firstOpen();
        const instances = [storage, await another("instance_b"), await another("instance_c")];
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, index) =>
            (instances[index % 3] as Storage).appointments.book({
              slot_id: first.id,
              name: `Caller ${index}`,
            }),
          ),
        );
        expect(results.filter((result) => result.ok)).toHaveLength(1);
        expect(results.filter((result) => !result.ok)).toEqual(
          Array(49).fill({ ok: false, reason: "slot_taken" }),
        );
      });
    });

    describe("campaigns", () => {
      const settings: NewCampaign = {
        name: "December leads",
        scenario: "insurance-followup",
        from: "+15005550006",
        timezone: "America/Chicago",
        window: { days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "20:00" },
        max_concurrent: 3,
        max_per_minute: 4,
        max_attempts: 2,
        retry_after_minutes: DEFAULT_RETRY,
        retry_no_decision: false,
      };
      const now = () => clock.now().toISOString();
      const always = () => now();
      /** Calls that ended up to now are due to be settled. */
      const endedBy = () => new Date(Date.parse(now()) + 1).toISOString();
      /** A campaign over `count` new leads, each with a phone. */
      const campaignOf = async (count: number, overrides: Partial<NewCampaign> = {}) => {
        const leads = [];
        for (let index = 0; index < count; index++) {
          const phone = `+1555000${String(index).padStart(4, "0")}`;
          const lead = await storage.leads.create({
            first_name: "L",
            last_name: `${index}`,
            phone,
          });
          leads.push({ lead_id: lead.id, phone, timezone: "America/Chicago" });
        }
        return (await storage.campaigns.create({ ...settings, ...overrides }, leads, now()))
          ?.campaign as Campaign;
      };
      const claim = (campaign: Campaign, store = storage, limit = 100, opening = always) =>
        store.campaigns.claim({ campaign, now: now(), limit, instance: "instance_a", opening });

      test("a campaign reads back with its settings; new leads exclude called and campaign leads", async () => {
        const campaign = await campaignOf(2);
        expect(campaign).toMatchObject({ ...settings, state: "active" });
        expect(await storage.campaigns.get(campaign.id)).toEqual(campaign);
        expect((await storage.campaigns.list(10, 0)).map((row) => row.id)).toEqual([campaign.id]);
        const fresh = await storage.leads.create({
          first_name: "N",
          last_name: "Ew",
          phone: "+15559990000",
        });
        const called = await storage.leads.create({
          first_name: "C",
          last_name: "Alled",
          phone: "+15559990001",
        });
        await storage.calls.create({ ...outbound("CA-called"), lead_id: called.id });
        expect((await storage.campaigns.newLeads(10)).map((lead) => lead.lead_id)).toEqual([
          fresh.id,
        ]);
        const busy = await storage.campaigns.busyLeads([
          fresh.id,
          ...(await storage.campaigns.leads(campaign.id, 10, 0)).map((lead) => lead.lead_id),
        ]);
        expect([...busy.values()]).toEqual([campaign.id, campaign.id]);
      });

      test("claims stop at the concurrency, then at the rate over the last minute", async () => {
        const campaign = await campaignOf(10);
        const first = await claim(campaign);
        expect(first.map((attempt) => attempt.number)).toEqual([1, 1, 1]);
        expect(await claim(campaign)).toEqual([]);
        for (const [index, attempt] of first.entries()) {
          await storage.calls.create({ ...outbound(`CA${index}`), lead_id: attempt.lead_id });
          await storage.campaigns.placed(attempt.id, `CA${index}`, now());
          await storage.calls.endIfOpen(`CA${index}`, "caller_hung_up", "");
        }
        await storage.calls.update("CA0", { outcome: "appointment_booked" });
        const ended = await storage.campaigns.ended(10, endedBy());
        expect(ended.map((row) => row.outcome).sort()).toEqual([
          "appointment_booked",
          "caller_hung_up",
          "caller_hung_up",
        ]);
        for (const row of ended)
          expect(
            await storage.campaigns.settle(
              row,
              row.outcome === "appointment_booked"
                ? { kind: "done", result: row.outcome }
                : { kind: "retry", reason: "retry", at: new Date(Date.parse(now()) + 3_600_000) },
              now(),
            ),
          ).toBe(true);
        expect(
          await storage.campaigns.settle(
            ended[0] as EndedAttempt,
            { kind: "done", result: "x" },
            now(),
          ),
        ).toBe(false);
        // Three free again, but four a minute: one more now, the rest a minute later.
        expect(await claim(campaign)).toHaveLength(1);
        clock.advance(60_001);
        expect(await claim(campaign)).toHaveLength(2);
        const summary = await storage.campaigns.summary(campaign.id);
        expect(summary.leads).toEqual({
          pending: 6,
          calling: 3,
          done: 1,
          unknown: 0,
          cancelled: 0,
        });
        expect(summary.results).toEqual({ appointment_booked: 1 });
        expect(summary.attempts).toMatchObject({ total: 6, ended: 3, dialling: 3 });
        expect(summary.next_attempts).toHaveLength(6);
      });

      test("a lead outside its window waits for the opening; a release does not count", async () => {
        const campaign = await campaignOf(2);
        const later = new Date(Date.parse(now()) + 7_200_000).toISOString();
        expect(await claim(campaign, storage, 100, () => later)).toEqual([]);
        expect(
          (await storage.campaigns.summary(campaign.id)).next_attempts.map((next) => next.at),
        ).toEqual([later, later]);
        clock.advance(7_200_000);
        const [attempt] = await claim(campaign, storage, 1);
        await storage.campaigns.release((attempt as ClaimedAttempt).id, now());
        const [again] = await claim(campaign, storage, 1);
        expect(again?.number).toBe(1);
      });

      test("two instances claiming at once never exceed the limits nor share an attempt", async () => {
        const campaign = await campaignOf(20, { max_concurrent: 7, max_per_minute: 100 });
        const instances = [storage, await another("instance_b"), await another("instance_c")];
        const claims = await Promise.all(
          instances.flatMap((store) => [claim(campaign, store), claim(campaign, store)]),
        );
        const all = claims.flat();
        expect(all).toHaveLength(7);
        expect(new Set(all.map((attempt) => attempt.lead_id)).size).toBe(7);
      });

      test("interrupted attempts: never asked of Twilio are released, asked without a SID are unknown; a late SID still lands", async () => {
        const campaign = await campaignOf(2);
        const [asked, notAsked] = (await claim(campaign)) as [ClaimedAttempt, ClaimedAttempt];
        expect(await storage.campaigns.requested(asked.id, now())).toBe(true);
        expect(await storage.campaigns.requested(asked.id, now())).toBe(false);
        clock.advance(120_000);
        const { unknown, released } = await storage.campaigns.sweepInterrupted(
          new Date(Date.parse(now()) - 60_000).toISOString(),
          now(),
        );
        expect(unknown.map((row) => row.id)).toEqual([asked.id]);
        expect(released).toBe(1);
        // The released one is gone: its process, if alive after all, may not dial it.
        expect(await storage.campaigns.requested(notAsked.id, now())).toBe(false);
        expect((await storage.campaigns.summary(campaign.id)).leads).toMatchObject({
          unknown: 1,
          pending: 1,
        });
        const [again] = await claim(campaign);
        expect(again).toMatchObject({ lead_id: notAsked.lead_id, number: 1 });
        await storage.calls.create({ ...outbound("CA-late"), lead_id: asked.lead_id });
        await storage.campaigns.placed(asked.id, "CA-late", now());
        const lead = (await storage.campaigns.leads(campaign.id, 10, 0)).find(
          (each) => each.lead_id === asked.lead_id,
        );
        expect(lead).toMatchObject({ state: "calling", result: null });
        expect(lead?.attempts_made[0]).toMatchObject({
          state: "placed",
          call_sid: "CA-late",
          call: { status: "queued" },
        });
      });

      test("a number is in one live campaign lead at a time: the others are left out, none stored when all are", async () => {
        const first = await campaignOf(2);
        const [lead] = await storage.campaigns.leads(first.id, 1, 0);
        const twin = await storage.leads.create({
          first_name: "T",
          last_name: "Win",
          phone: lead?.phone,
        });
        const fresh = await storage.leads.create({
          first_name: "F",
          last_name: "Resh",
          phone: "+15559998888",
        });
        const created = await storage.campaigns.create(
          settings,
          [
            { lead_id: twin.id, phone: twin.phone as string, timezone: "UTC" },
            { lead_id: fresh.id, phone: "+15559998888", timezone: "UTC" },
          ],
          now(),
        );
        expect(created?.conflicts).toEqual([twin.id]);
        expect(
          await storage.campaigns.create(
            settings,
            [{ lead_id: twin.id, phone: twin.phone as string, timezone: "UTC" }],
            now(),
          ),
        ).toBeUndefined();
        expect((await storage.campaigns.list(10, 0)).length).toBe(2);
      });

      test("a late SID for an unknown lead whose number another campaign took on: no clash, never retried", async () => {
        const first = await campaignOf(1);
        const [attempt] = (await claim(first)) as [ClaimedAttempt];
        await storage.campaigns.requested(attempt.id, now());
        clock.advance(120_000);
        await storage.campaigns.sweepInterrupted(now(), now());
        const twin = await storage.leads.create({
          first_name: "T",
          last_name: "W",
          phone: attempt.phone,
        });
        const second = await storage.campaigns.create(
          settings,
          [{ lead_id: twin.id, phone: attempt.phone, timezone: "UTC" }],
          now(),
        );
        expect(second?.conflicts).toEqual([]);
        await storage.calls.create({ ...outbound("CA-late2"), lead_id: attempt.lead_id });
        await storage.campaigns.placed(attempt.id, "CA-late2", now());
        await storage.calls.endIfOpen("CA-late2", "caller_hung_up", "");
        const [ended] = await storage.campaigns.ended(10, endedBy());
        await storage.campaigns.settle(
          ended as EndedAttempt,
          { kind: "retry", reason: "retry", at: new Date(Date.parse(now()) + 3_600_000) },
          now(),
        );
        const [lead] = await storage.campaigns.leads(first.id, 10, 0);
        expect(lead).toMatchObject({ state: "done", result: "number_called_elsewhere" });
      });

      test("a paused campaign claims nothing; the service's pause says why until resumed", async () => {
        const campaign = await campaignOf(2);
        const paused = await storage.campaigns.suspend(campaign.id, "Twilio refused", now());
        expect(paused).toMatchObject({ state: "paused", note: "Twilio refused" });
        expect(await claim(campaign)).toEqual([]);
        expect(await storage.campaigns.suspend(campaign.id, "again", now())).toBeUndefined();
        const resumed = await storage.campaigns.transition(
          campaign.id,
          ["paused"],
          "active",
          now(),
        );
        expect(resumed).toMatchObject({ state: "active", note: null });
        expect(await claim(campaign)).toHaveLength(2);
      });

      test("a callback is kept for the call's lead while its attempt is live; cancel cancels pending leads", async () => {
        const campaign = await campaignOf(2);
        const [attempt] = await claim(campaign, storage, 1);
        await storage.calls.create({
          ...outbound("CA-cb"),
          lead_id: (attempt as ClaimedAttempt).lead_id,
        });
        await storage.campaigns.placed((attempt as ClaimedAttempt).id, "CA-cb", now());
        expect(
          await storage.campaigns.requestCallback("CA-cb", "2026-03-03T21:00:00.000Z", now()),
        ).toEqual({ previous: null });
        // A second time, then withdrawn: the first comes back.
        const second = "2026-03-03T22:00:00.000Z";
        expect(await storage.campaigns.requestCallback("CA-cb", second, now())).toEqual({
          previous: "2026-03-03T21:00:00.000Z",
        });
        await storage.campaigns.withdrawCallback("CA-cb", second, "2026-03-03T21:00:00.000Z");
        expect(
          await storage.campaigns.requestCallback("CA-none", "2026-03-03T21:00:00.000Z", now()),
        ).toBeUndefined();
        expect((await storage.campaigns.ofCall("CA-cb"))?.timezone).toBe("America/Chicago");
        await storage.calls.endIfOpen("CA-cb", "caller_hung_up", "");
        const [ended] = await storage.campaigns.ended(10, endedBy());
        expect(ended?.callback_at).toBe("2026-03-03T21:00:00.000Z");
        expect(
          await storage.campaigns.transition(campaign.id, ["completed"], "active", now()),
        ).toBeUndefined();
        const cancelled = await storage.campaigns.transition(
          campaign.id,
          ["active", "paused"],
          "cancelled",
          now(),
        );
        expect(cancelled?.state).toBe("cancelled");
        // The call under way ends after the cancel: its lead is not tried again.
        await storage.campaigns.settle(
          ended as EndedAttempt,
          { kind: "retry", reason: "callback", at: new Date("2026-03-03T21:00:00.000Z") },
          now(),
        );
        expect((await storage.campaigns.summary(campaign.id)).leads).toMatchObject({
          cancelled: 2,
          pending: 0,
        });
        // A callback asked on a call already settled changes nothing.
        expect(
          await storage.campaigns.requestCallback("CA-cb", "2026-03-04T21:00:00.000Z", now()),
        ).toBeUndefined();
        expect(await storage.campaigns.completeIfDone(campaign.id, now())).toBe(false);
        // A campaign with no lead to call is not stored.
        expect(await campaignOf(0)).toBeUndefined();
        expect((await storage.campaigns.active()).map((row) => row.id)).toEqual([]);
      });
    });
  });
}
