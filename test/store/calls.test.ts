import { Database } from "bun:sqlite";
import { beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type Store } from "../../src/store/index.ts";
import { ManualClock } from "../fakes/clock.ts";
import { outbound } from "./fixtures.ts";

let store: Store;
let clock: ManualClock;
beforeEach(() => {
  clock = new ManualClock();
  store = openStore(":memory:", clock);
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
