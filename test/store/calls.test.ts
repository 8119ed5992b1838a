import { Database } from "bun:sqlite";
import { beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NewCall } from "../../src/store/calls.ts";
import { openStore, type Store } from "../../src/store/index.ts";
import { ManualClock } from "../fakes/clock.ts";

let store: Store;
let clock: ManualClock;
beforeEach(() => {
  clock = new ManualClock();
  store = openStore(":memory:", clock);
});

const outbound = (sid: string): NewCall => ({
  sid,
  direction: "outbound",
  from_number: "+15550001111",
  to_number: "+15551234567",
  scenario: "insurance-followup",
  status: "queued",
});

test("a call is created with its lead and read back", () => {
  const lead = store.leads.create({ first_name: "Alex", last_name: "Mitchell" });
  const call = store.calls.create({ ...outbound("CA1"), lead_id: lead.id });
  expect(call).toMatchObject({
    sid: "CA1",
    lead_id: lead.id,
    status: "queued",
    created_at: clock.now().toISOString(),
  });
  expect(call.answered_by).toBeNull();
  expect(store.calls.get("CA1")).toEqual(call);
});

test("a call cannot point at a lead that does not exist", () => {
  expect(() => store.calls.create({ ...outbound("CA1"), lead_id: "lead_nobody" })).toThrow(
    /FOREIGN KEY/,
  );
});

test("direction is checked by the schema", () => {
  expect(() =>
    store.calls.create({ ...outbound("CA1"), direction: "sideways" as "inbound" }),
  ).toThrow(/CHECK/);
});

test("updates change only the fields given", () => {
  store.calls.create(outbound("CA1"));
  store.calls.update("CA1", { status: "in-progress", answered_at: "2026-03-02T15:00:05.000Z" });
  const updated = store.calls.update("CA1", { answered_by: "human" });
  expect(updated).toMatchObject({
    status: "in-progress",
    answered_by: "human",
    answered_at: "2026-03-02T15:00:05.000Z",
  });
  expect(store.calls.update("CA-none", { status: "completed" })).toBeUndefined();
});

describe("every ended call has an outcome", () => {
  test("without a disposition, the end reason gives it", () => {
    for (const [sid, reason, outcome] of [
      ["CA1", "silence", "no_response"],
      ["CA2", "caller_hung_up", "caller_hung_up"],
      ["CA3", "agent_ended_call", "no_decision"],
      ["CA4", "agent_unavailable", "agent_error"],
      ["CA5", "fax_detected", "fax"],
      ["CA6", "something new", "failed"],
    ] as const) {
      store.calls.create(outbound(sid));
      store.calls.updateLater(sid, { end_reason: reason, ended_at: clock.now().toISOString() });
      expect(store.calls.get(sid)).toMatchObject({ end_reason: reason, outcome });
    }
  });

  test("a disposition recorded during the call is kept, whenever the end comes", () => {
    store.calls.create(outbound("CA1"));
    store.calls.update("CA1", { outcome: "callback_requested", outcome_detail: "after 3" });
    store.calls.update("CA1", {
      end_reason: "caller_hung_up",
      ended_at: clock.now().toISOString(),
    });
    expect(store.calls.get("CA1")).toMatchObject({
      outcome: "callback_requested",
      outcome_detail: "after 3",
    });
  });

  test("records ended at start-up or on exit get one too", () => {
    store.calls.create(outbound("CA1"));
    store.calls.started("CA1");
    store.calls.create(outbound("CA2"));
    store.calls.update("CA2", { outcome: "not_interested" });
    store.calls.endOpen("interrupted", { mine: true });
    expect(store.calls.get("CA1")?.outcome).toBe("service_shutdown");
    expect(store.calls.get("CA2")?.outcome).toBe("not_interested");
    expect(store.calls.endIfOpen("CA1", "stream_failed", "again")).toBeUndefined();
  });
});

test("the list is newest first, filters by status and pages", () => {
  for (const sid of ["CA1", "CA2", "CA3"]) {
    store.calls.create(outbound(sid));
    clock.advance(1000);
  }
  store.calls.update("CA2", { status: "completed" });
  expect(store.calls.list({ limit: 10 }).map((call) => call.sid)).toEqual(["CA3", "CA2", "CA1"]);
  expect(store.calls.list({ limit: 10, status: "completed" }).map((call) => call.sid)).toEqual([
    "CA2",
  ]);
  expect(store.calls.list({ limit: 1, offset: 1 }).map((call) => call.sid)).toEqual(["CA2"]);
});

test("the event timeline keeps order, kinds and structured data", () => {
  store.calls.create(outbound("CA1"));
  store.calls.appendEvent("CA1", {
    kind: "amd",
    data: { answered_by: "human", detection_ms: 2400 },
  });
  clock.advance(500);
  store.calls.appendEvent("CA1", {
    kind: "transcript",
    data: { role: "assistant", text: "Hi, this is Sarah." },
  });
  store.calls.appendEvent("CA1", {
    kind: "function_call",
    data: {
      id: "fc1",
      name: "check_availability",
      arguments: { day: "tomorrow" },
      result: "10am",
      ok: true,
      duration_ms: 12,
    },
  });
  store.calls.appendEvent("CA1", {
    kind: "barge_in",
    data: { unplayed_marks: 2, unplayed_ms: 640 },
  });
  const events = store.calls.events("CA1");
  expect(events.map((event) => event.kind)).toEqual([
    "amd",
    "transcript",
    "function_call",
    "barge_in",
  ]);
  expect(events[1]).toMatchObject({
    call_sid: "CA1",
    at: "2026-03-02T15:00:00.500Z",
    data: { role: "assistant" },
  });
  expect(events[2]?.data).toMatchObject({ arguments: { day: "tomorrow" } });
  expect(store.calls.events("CA-other")).toEqual([]);
});

test("events are append-only", () => {
  store.calls.create(outbound("CA1"));
  store.calls.appendEvent("CA1", { kind: "status", data: { status: "ringing" } });
  store.calls.flush();
  expect(() => store.db.run("UPDATE call_events SET kind = 'x'")).toThrow(/append-only/);
  expect(() => store.db.run("DELETE FROM call_events")).toThrow(/append-only/);
  expect(store.calls.events("CA1")).toHaveLength(1);
});

describe("write-behind", () => {
  const rows = () =>
    store.db.query<{ n: number }, []>("SELECT count(*) AS n FROM call_events").get()?.n;
  let failures: { error: unknown; failed: number }[];
  beforeEach(() => {
    failures = [];
    store = openStore(":memory:", clock, {
      flushIntervalMs: 200,
      onWriteFailure: (error, failed) => failures.push({ error, failed }),
    });
    store.calls.create(outbound("CA1"));
  });

  test("events wait in memory and are written together one interval after the first", () => {
    store.calls.appendEvent("CA1", { kind: "status", data: { status: "ringing" } });
    clock.advance(150);
    store.calls.appendEvent("CA1", { kind: "status", data: { status: "in-progress" } });
    store.calls.updateLater("CA1", { outcome: "booked", outcome_detail: "Tuesday" });
    expect(rows()).toBe(0);
    clock.advance(49);
    expect(rows()).toBe(0);
    clock.advance(1);
    expect(rows()).toBe(2);
    expect(store.calls.get("CA1")?.outcome).toBe("booked");
  });

  test("each event keeps the moment it happened, not the moment it was written", () => {
    const start = clock.now().getTime();
    store.calls.appendEvent("CA1", { kind: "status", data: { status: "ringing" } });
    clock.advance(120);
    store.calls.appendEvent("CA1", { kind: "status", data: { status: "in-progress" } });
    clock.advance(500);
    expect(store.calls.events("CA1").map((event) => Date.parse(event.at) - start)).toEqual([
      0, 120,
    ]);
  });

  test("every read sees what is held, in the order it was recorded", () => {
    store.calls.appendEvent("CA1", { kind: "status", data: { status: "ringing" } });
    store.calls.updateLater("CA1", { answered_by: "human" });
    expect(store.calls.get("CA1")?.answered_by).toBe("human");
    store.calls.appendEvent("CA1", { kind: "amd", data: { answered_by: "human" } });
    store.calls.update("CA1", { status: "in-progress" });
    expect(store.calls.events("CA1").map((event) => event.kind)).toEqual(["status", "amd"]);
    expect(store.calls.list({ limit: 10 })[0]?.answered_by).toBe("human");
  });

  test("a write the database refuses is reported; the rest of its batch is written", () => {
    store.calls.appendEvent("CA1", { kind: "status", data: { status: "ringing" } });
    store.calls.appendEvent("CA-missing", { kind: "status", data: { status: "x" } });
    store.calls.appendEvent("CA1", { kind: "status", data: { status: "in-progress" } });
    store.calls.flush();
    expect(rows()).toBe(2);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.failed).toBe(1);
    expect(String(failures[0]?.error)).toContain("FOREIGN KEY");
  });

  test("while another process locks the database, writes stay held and go through later", () => {
    const dir = mkdtempSync(join(tmpdir(), "write-behind-"));
    try {
      const path = join(dir, "calls.db");
      const file = openStore(path, clock, {
        busyTimeoutMs: 0,
        onWriteFailure: () => failures.push({ error: "x", failed: 1 }),
      });
      file.calls.create(outbound("CA1"));
      const other = new Database(path);
      other.run("BEGIN IMMEDIATE");
      file.calls.appendEvent("CA1", { kind: "status", data: { status: "ringing" } });
      file.calls.flush();
      file.calls.appendEvent("CA1", { kind: "status", data: { status: "in-progress" } });
      clock.advance(200);
      other.run("COMMIT");
      other.close();
      expect(failures).toEqual([]);
      clock.advance(200);
      expect(file.db.query("SELECT count(*) AS n FROM call_events").get()).toEqual({ n: 2 });
      expect(file.calls.events("CA1").map((event) => event.data)).toEqual([
        { status: "ringing" },
        { status: "in-progress" },
      ]);
      file.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("locked by another process: the interval's flush does not wait, a direct write does not jump the queue, close still closes", () => {
    const dir = mkdtempSync(join(tmpdir(), "write-behind-"));
    try {
      const path = join(dir, "calls.db");
      // A long wait for locks, as in production: only the background flush must not use it.
      const file = openStore(path, clock, {
        busyTimeoutMs: 2_000,
        onWriteFailure: (error, failed) => failures.push({ error, failed }),
      });
      file.calls.create(outbound("CA1"));
      const other = new Database(path);
      other.run("BEGIN IMMEDIATE");
      file.calls.updateLater("CA1", { outcome: "no_answer_voicemail_left" });
      const started = performance.now();
      clock.advance(200);
      expect(performance.now() - started).toBeLessThan(1_000);
      // A newer direct write would land before the held one: refused while the lock lasts.
      file.calls.updateLater("CA1", { outcome_detail: "held" });
      other.run("COMMIT");
      other.run("BEGIN IMMEDIATE");
      file.db.run("PRAGMA busy_timeout = 0");
      expect(() => file.calls.update("CA1", { outcome: "appointment_booked" })).toThrow(/locked/);
      other.run("COMMIT");
      file.calls.update("CA1", { outcome: "appointment_booked" });
      expect(file.calls.get("CA1")).toMatchObject({
        outcome: "appointment_booked",
        outcome_detail: "held",
      });
      // Closing while locked reports what stays held and closes without throwing.
      file.calls.appendEvent("CA1", { kind: "status", data: { status: "completed" } });
      other.run("BEGIN IMMEDIATE");
      expect(() => file.close()).not.toThrow();
      expect(failures.at(-1)?.failed).toBe(1);
      other.run("COMMIT");
      other.close();
      clock.advance(1_000);
      expect(failures).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("closing the store writes what is held", () => {
    const dir = mkdtempSync(join(tmpdir(), "write-behind-"));
    try {
      const path = join(dir, "calls.db");
      const file = openStore(path, clock, { flushIntervalMs: 5_000 });
      file.calls.create(outbound("CA1"));
      file.calls.appendEvent("CA1", { kind: "status", data: { status: "ringing" } });
      file.calls.updateLater("CA1", {
        caller_audio: {
          received: 3,
          forwarded: 2,
          held_back: {
            before_agent_ready: 1,
            awaiting_verdict: 0,
            agent_reconnecting: 0,
            ending: 0,
          },
        },
      });
      file.close();
      const reopened = openStore(path, clock);
      expect(reopened.calls.events("CA1")).toHaveLength(1);
      expect(reopened.calls.get("CA1")?.caller_audio).toMatchObject({ received: 3, forwarded: 2 });
      reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
