import { beforeEach, expect, test } from "bun:test";
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
  expect(() => store.db.run("UPDATE call_events SET kind = 'x'")).toThrow(/append-only/);
  expect(() => store.db.run("DELETE FROM call_events")).toThrow(/append-only/);
  expect(store.calls.events("CA1")).toHaveLength(1);
});

test("events need an existing call", () => {
  expect(() =>
    store.calls.appendEvent("CA-missing", { kind: "status", data: { status: "x" } }),
  ).toThrow(/FOREIGN KEY/);
});
