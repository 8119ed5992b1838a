import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type Store } from "../../src/store/index.ts";
import { ManualClock } from "../fakes/clock.ts";
import { slot, week } from "./fixtures.ts";

/** SQLite's own guarantees; the repository's behaviour is in storage-contract.test.ts, on both engines. */
describe("appointments on SQLite", () => {
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
