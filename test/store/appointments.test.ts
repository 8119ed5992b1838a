import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NewSlot } from "../../src/store/appointments.ts";
import { openStore, type Store } from "../../src/store/index.ts";
import { ManualClock } from "../fakes/clock.ts";

const slot = (provider: string, startsAt: string, minutes = 30): NewSlot => ({
  calendar: "dental",
  provider,
  starts_at: startsAt,
  ends_at: new Date(Date.parse(startsAt) + minutes * 60_000).toISOString(),
});

const week = {
  calendar: "dental",
  from: "2026-03-02T00:00:00.000Z",
  to: "2026-03-09T00:00:00.000Z",
  limit: 50,
};

describe("appointments", () => {
  let store: Store;
  beforeEach(() => {
    store = openStore(":memory:", new ManualClock());
    store.appointments.addSlots([
      slot("Dr. Patel", "2026-03-03T09:00:00.000Z"),
      slot("Dr. Patel", "2026-03-03T09:30:00.000Z"),
      slot("Dr. Chen", "2026-03-03T09:00:00.000Z"),
      slot("Dr. Chen", "2026-03-10T09:00:00.000Z"),
    ]);
  });

  test("adding slots is idempotent", () => {
    expect(store.appointments.addSlots([slot("Dr. Patel", "2026-03-03T09:00:00.000Z")])).toBe(0);
    expect(store.appointments.openSlots(week)).toHaveLength(3);
  });

  test("a slot must end after it starts", () => {
    expect(() =>
      store.appointments.addSlots([slot("Dr. Patel", "2026-03-04T09:00:00.000Z", -30)]),
    ).toThrow(/CHECK/);
  });

  test("open slots come in time order, by range and provider", () => {
    const open = store.appointments.openSlots(week);
    expect(open.map((s) => `${s.starts_at} ${s.provider}`)).toEqual([
      "2026-03-03T09:00:00.000Z Dr. Chen",
      "2026-03-03T09:00:00.000Z Dr. Patel",
      "2026-03-03T09:30:00.000Z Dr. Patel",
    ]);
    expect(store.appointments.openSlots({ ...week, provider: "Dr. Chen" })).toHaveLength(1);
    expect(store.appointments.openSlots({ ...week, limit: 1 })).toHaveLength(1);
  });

  test("booking takes the slot out of the open list and reads back by code and phone", () => {
    const [first] = store.appointments.openSlots(week);
    if (!first) throw new Error("no slot");
    const result = store.appointments.book({
      slot_id: first.id,
      name: "Jamie Fox",
      phone: "+15557654321",
      reason: "cleaning",
    });
    if (!result.ok) throw new Error(result.reason);
    expect(result.booking).toMatchObject({
      status: "booked",
      name: "Jamie Fox",
      provider: first.provider,
      starts_at: first.starts_at,
    });
    expect(result.booking.id).toMatch(/^[A-HJ-NP-Z2-9]{6}$/);
    expect(store.appointments.openSlots(week).map((s) => s.id)).not.toContain(first.id);
    expect(store.appointments.booking(result.booking.id.toLowerCase())).toEqual(result.booking);
    expect(store.appointments.bookingsByPhone("+15557654321").map((b) => b.id)).toEqual([
      result.booking.id,
    ]);
  });

  test("a taken slot is refused, an unknown one too", () => {
    const [first] = store.appointments.openSlots(week);
    if (!first) throw new Error("no slot");
    expect(store.appointments.book({ slot_id: first.id, name: "One" }).ok).toBe(true);
    expect(store.appointments.book({ slot_id: first.id, name: "Two" })).toEqual({
      ok: false,
      reason: "slot_taken",
    });
    expect(store.appointments.book({ slot_id: 9999, name: "Three" })).toEqual({
      ok: false,
      reason: "no_such_slot",
    });
  });

  test("cancelling frees the slot for a new booking; cancelling twice does nothing", () => {
    const [first] = store.appointments.openSlots(week);
    if (!first) throw new Error("no slot");
    const booked = store.appointments.book({
      slot_id: first.id,
      name: "One",
      phone: "+15550000001",
    });
    if (!booked.ok) throw new Error(booked.reason);
    const cancelled = store.appointments.cancel(booked.booking.id);
    expect(cancelled).toMatchObject({
      status: "cancelled",
      cancelled_at: "2026-03-02T15:00:00.000Z",
    });
    expect(store.appointments.cancel(booked.booking.id)).toBeUndefined();
    expect(store.appointments.bookingsByPhone("+15550000001")).toEqual([]);
    expect(store.appointments.book({ slot_id: first.id, name: "Two" }).ok).toBe(true);
  });

  test("the schema itself refuses a second live booking of a slot", () => {
    const [first] = store.appointments.openSlots(week);
    if (!first) throw new Error("no slot");
    store.appointments.book({ slot_id: first.id, name: "One" });
    expect(() =>
      store.db.run(
        "INSERT INTO bookings (id, slot_id, name, created_at) VALUES ('ZZZZZZ', ?, 'Sneaky', '2026-03-02')",
        [first.id],
      ),
    ).toThrow(/UNIQUE/);
  });
});

describe("concurrent bookings on one file", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "voice-agent-booking-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("four threads booking the same slot at once: exactly one wins", async () => {
    const path = join(dir, "db.sqlite");
    const store = openStore(path);
    store.appointments.addSlots([slot("Dr. Patel", "2026-03-03T09:00:00.000Z")]);
    const [open] = store.appointments.openSlots(week);
    if (!open) throw new Error("no slot");
    const workers = Array.from(
      { length: 4 },
      () => new Worker(new URL("./booking-worker.ts", import.meta.url)),
    );
    const results = await Promise.all(
      workers.map(
        (worker, index) =>
          new Promise<{ ok: boolean; reason?: string }>((resolve, reject) => {
            worker.onmessage = (event) => resolve(event.data);
            worker.onerror = (event) => reject(new Error(event.message));
            worker.postMessage({ path, slotId: open.id, name: `Caller ${index}` });
          }),
      ),
    );
    for (const worker of workers) worker.terminate();
    expect(results.filter((result) => result.ok)).toHaveLength(1);
    expect(results.filter((result) => !result.ok)).toEqual(
      Array(3).fill({ ok: false, reason: "slot_taken" }),
    );
    const count = store.db
      .query<{ n: number }, []>("SELECT count(*) AS n FROM bookings WHERE status = 'booked'")
      .get();
    expect(count?.n).toBe(1);
    store.close();
  });
});
