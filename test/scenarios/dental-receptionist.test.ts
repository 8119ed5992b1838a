import { beforeEach, describe, expect, test } from "bun:test";
import { runTool } from "../../src/call/tools.ts";
import { createLogger } from "../../src/log.ts";
import { dentalReceptionist } from "../../src/scenarios/dental-receptionist/index.ts";
import type { PreparedScenario, ToolContext } from "../../src/scenarios/types.ts";
import { openStore, type Store } from "../../src/store/index.ts";
import type { Storage } from "../../src/store/port.ts";
import { sqliteStorage } from "../../src/store/sqlite-storage.ts";
import { ManualClock } from "../fakes/clock.ts";

const CALLER = "+15557654321";
const silent = createLogger({ level: "error", write: () => {} });
// Monday 2026-03-02, 10:00 in New York.
const NOW = "2026-03-02T15:00:00.000Z";

/** The SQLite store itself, for setting up and checking rows; the scenario sees it as `storage`. */
let store: Store;
let storage: Storage;
let clock: ManualClock;
let scenario: PreparedScenario;
let ended: string[];

function context(customerNumber = CALLER): ToolContext {
  return {
    callSid: "CA1",
    customerNumber,
    now: clock.now(),
    endCall: (reason) => ended.push(reason),
    transfer: () => {},
    onWithdraw: () => {},
  };
}

/** Calls a tool the way the session does: JSON arguments, validation, handler. */
async function call(name: string, args: unknown, customerNumber = CALLER) {
  const tool = scenario.tools.find((candidate) => candidate.name === name);
  const outcome = await runTool(
    tool,
    name,
    JSON.stringify(args),
    context(customerNumber),
    clock,
    1_000,
  );
  const parsed = outcome.content.startsWith("{") ? JSON.parse(outcome.content) : outcome.content;
  return { ...outcome, result: parsed };
}

beforeEach(async () => {
  clock = new ManualClock(NOW);
  store = openStore(":memory:", clock);
  storage = sqliteStorage(store);
  await dentalReceptionist.seed?.({ store: storage, clock, logger: silent });
  store.calls.create({
    sid: "CA1",
    direction: "inbound",
    from_number: CALLER,
    to_number: "+15550001111",
    scenario: "dental-receptionist",
    status: "in-progress",
  });
  scenario = await dentalReceptionist.prepare(
    {
      callSid: "CA1",
      direction: "inbound",
      recorded: false,
      from: CALLER,
      to: "+15550001111",
      startedAt: clock.now(),
    },
    { store: storage, clock, logger: silent },
  );
  ended = [];
});

describe("seed", () => {
  test("four weeks of slots from the office hours, idempotent", async () => {
    const all = () =>
      store.appointments.openSlots({
        calendar: "dental",
        from: NOW,
        to: "2027-01-01",
        limit: 10_000,
      });
    const count = all().length;
    expect(count).toBeGreaterThan(500);
    await dentalReceptionist.seed?.({ store: storage, clock, logger: silent });
    expect(all().length).toBe(count);
    const sunday = store.appointments.openSlots({
      calendar: "dental",
      from: "2026-03-08T05:00:00.000Z",
      to: "2026-03-09T04:00:00.000Z",
      limit: 100,
    });
    expect(sunday).toEqual([]);
    const saturday = store.appointments.openSlots({
      calendar: "dental",
      from: "2026-03-07T05:00:00.000Z",
      to: "2026-03-08T05:00:00.000Z",
      limit: 100,
    });
    expect(new Set(saturday.map((slot) => slot.provider))).toEqual(new Set(["Dr. Sarah Patel"]));
  });
});

describe("prompt and greeting", () => {
  test("carry the office, the call's date and the caller's number", () => {
    expect(scenario.greeting).toContain("Bright Smile Dental");
    expect(scenario.prompt).toContain("Today is Monday, March 2, 2026");
    expect(scenario.prompt).toContain(CALLER);
    expect(scenario.tools.map((tool) => tool.name)).toEqual([
      "check_available_slots",
      "book_appointment",
      "check_appointment",
      "cancel_appointment",
      "take_message",
      "end_call",
    ]);
  });
});

describe("prompt and privacy", () => {
  test("tells the agent to ask for the code and the patient's name when the caller's number finds nothing", () => {
    expect(scenario.prompt).toContain(
      "ask for the confirmation code and the patient's full name and look it up with both",
    );
    expect(scenario.prompt).toContain("Never look up another phone number");
  });

  test("a withheld caller ID is not presented as the caller's number", async () => {
    const withheld = await dentalReceptionist.prepare(
      {
        callSid: "CA2",
        direction: "inbound",
        recorded: false,
        from: "anonymous",
        to: "+15550001111",
        startedAt: clock.now(),
      },
      { store: storage, clock, logger: silent },
    );
    expect(withheld.prompt).toContain("The caller's number is withheld");
    expect(withheld.prompt).not.toContain("anonymous");
  });
});

describe("check_available_slots", () => {
  test("with no date: the next open times, none in the past", async () => {
    const { result } = await call("check_available_slots", {});
    expect(result.available).toHaveLength(6);
    expect(result.available[0].time).toBe("Monday, March 2 at 10:30 AM");
    expect(result.more_available).toBe(true);
  });

  test("a slot starting now, or within the next 15 minutes, is not offered; every offered slot can be booked", async () => {
    // 10:00 in New York: slots start at 10:00 (now) and 10:30.
    for (const args of [{}, { date: "2026-03-02" }]) {
      const { result } = await call("check_available_slots", args);
      const times = result.available.map((slot: { time: string }) => slot.time);
      expect(times).not.toContain("Monday, March 2 at 10:00 AM");
      expect(times[0]).toBe("Monday, March 2 at 10:30 AM");
    }
    const [first] = (await call("check_available_slots", {})).result.available;
    const booked = await call("book_appointment", {
      slot_id: first.slot_id,
      patient_name: "Jamie Fox",
      reason: "toothache",
    });
    expect(booked.result).toMatchObject({ booked: true, time: first.time });
    clock.advance(20 * 60_000); // 10:20: the other 10:30 slot is ten minutes away.
    const later = (await call("check_available_slots", { date: "2026-03-02" })).result.available;
    expect(later[0].time).toBe("Monday, March 2 at 11:00 AM");
  });

  test("a date, a provider and the afternoon", async () => {
    const { result } = await call("check_available_slots", {
      date: "2026-03-04",
      provider: "Emily Rogers",
      part_of_day: "afternoon",
    });
    expect(result.available.map((slot: { time: string }) => slot.time)).toEqual([
      "Wednesday, March 4 at 1:00 PM",
      "Wednesday, March 4 at 2:00 PM",
      "Wednesday, March 4 at 3:00 PM",
    ]);
  });

  test("a closed day says so", async () => {
    const { result } = await call("check_available_slots", { date: "2026-03-08" });
    expect(result.available).toEqual([]);
    expect(result.note).toContain("Nothing open");
  });

  test("an unknown provider or a bad date is refused before the handler runs", async () => {
    expect((await call("check_available_slots", { provider: "Dr. Who" })).ok).toBe(false);
    expect((await call("check_available_slots", { date: "next Tuesday" })).content).toContain(
      "date",
    );
  });
});

describe("booking, look-up and cancellation", () => {
  async function firstSlot(date = "2026-03-03") {
    const { result } = await call("check_available_slots", { date });
    return result.available[0] as { slot_id: number; time: string; provider: string };
  }

  test("books with the caller's number and finds it again by number, and by code and name from another number", async () => {
    const slot = await firstSlot();
    const { result } = await call("book_appointment", {
      slot_id: slot.slot_id,
      patient_name: "Jamie Fox",
      reason: "toothache",
    });
    expect(result).toMatchObject({
      booked: true,
      patient_name: "Jamie Fox",
      time: slot.time,
      provider: slot.provider,
    });
    expect(store.appointments.booking(result.confirmation_id)?.phone).toBe(CALLER);
    const byPhone = (await call("check_appointment", {})).result;
    expect(byPhone.appointments.map((a: { confirmation_id: string }) => a.confirmation_id)).toEqual(
      [result.confirmation_id],
    );
    const byCode = (
      await call(
        "check_appointment",
        { confirmation_id: result.confirmation_id.toLowerCase(), patient_name: "Jamie Fox" },
        "+15550000000",
      )
    ).result;
    expect(byCode.appointments).toEqual([
      {
        confirmation_id: result.confirmation_id,
        patient_first_name: "Jamie",
        provider: slot.provider,
        time: slot.time,
      },
    ]);
    const slotsNow = (await call("check_available_slots", { date: "2026-03-03" })).result.available;
    expect(slotsNow.map((s: { slot_id: number }) => s.slot_id)).not.toContain(slot.slot_id);
  });

  test("a taken slot is refused with alternatives", async () => {
    const slot = await firstSlot();
    await call("book_appointment", {
      slot_id: slot.slot_id,
      patient_name: "First Patient",
      reason: "cleaning",
    });
    const { result } = await call("book_appointment", {
      slot_id: slot.slot_id,
      patient_name: "Second Patient",
      reason: "cleaning",
    });
    expect(result.booked).toBe(false);
    expect(result.alternatives).toHaveLength(3);
  });

  test("a slot in the past cannot be booked", async () => {
    const slot = await firstSlot("2026-03-02");
    clock.advance(7 * 24 * 3600_000);
    const { result } = await call("book_appointment", {
      slot_id: slot.slot_id,
      patient_name: "Late Larry",
      reason: "checkup",
    });
    expect(result.booked).toBe(false);
  });

  test("cancelling: the same caller may; another number needs the patient's name; the slot frees up", async () => {
    const slot = await firstSlot();
    const booked = (
      await call("book_appointment", {
        slot_id: slot.slot_id,
        patient_name: "Jamie Fox",
        reason: "checkup",
      })
    ).result;
    const stranger = (
      await call("cancel_appointment", { confirmation_id: booked.confirmation_id }, "+15550000000")
    ).result;
    expect(stranger.cancelled).toBe(false);
    const withName = (
      await call(
        "cancel_appointment",
        { confirmation_id: booked.confirmation_id, patient_name: "jamie fox" },
        "+15550000000",
      )
    ).result;
    expect(withName).toMatchObject({ cancelled: true, confirmation_id: booked.confirmation_id });
    expect(
      (await call("cancel_appointment", { confirmation_id: booked.confirmation_id })).result
        .cancelled,
    ).toBe(false);
    expect((await call("check_appointment", {})).result.appointments).toEqual([]);
    const again = await call("book_appointment", {
      slot_id: slot.slot_id,
      patient_name: "Next Patient",
      reason: "checkup",
    });
    expect(again.result.booked).toBe(true);
  });

  test("end_call asks the session to end", async () => {
    await call("end_call", { reason: "caller is done" });
    expect(ended).toEqual(["caller is done"]);
  });
});

describe("take_message", () => {
  test("writes the message on the call record, calling back the caller's own number by default", async () => {
    const { ok, result } = await call("take_message", {
      caller_name: "Jamie Fox",
      message: "Please call about the bill from March.",
    });
    expect(ok).toBe(true);
    expect(result).toContain("The message is recorded");
    expect(store.calls.get("CA1")).toMatchObject({
      outcome: "message_taken",
      message: {
        caller_name: "Jamie Fox",
        callback_number: CALLER,
        message: "Please call about the bill from March.",
        taken_at: NOW,
      },
    });
  });

  test("another callback number is kept; a withheld caller must give one", async () => {
    const withheld = await call(
      "take_message",
      { caller_name: "Sam Roe", message: "Call me back." },
      "anonymous",
    );
    expect(withheld.result).toContain("Nothing was recorded");
    expect(store.calls.get("CA1")?.message).toBeNull();
    await call(
      "take_message",
      { caller_name: "Sam Roe", message: "Call me back.", callback_number: "+15550009999" },
      "anonymous",
    );
    expect(store.calls.get("CA1")?.message?.callback_number).toBe("+15550009999");
  });

  test("a callback number that is not a phone number is refused, naming the field", async () => {
    const { ok, result } = await call("take_message", {
      caller_name: "Jamie Fox",
      message: "Hi",
      callback_number: "555-1234",
    });
    expect(ok).toBe(false);
    expect(String(result)).toContain("callback_number");
  });
});

describe("the caps, under concurrent calls", () => {
  test("two calls booking for one number at once cannot together pass its cap", async () => {
    const open = store.appointments.openSlots({
      calendar: "dental",
      from: "2026-03-03T00:00:00.000Z",
      to: "2026-03-10T00:00:00.000Z",
      limit: 10,
    });
    for (const existing of open.slice(0, 2))
      store.appointments.book({ slot_id: existing.id, name: "Earlier", phone: CALLER });
    store.calls.create({
      sid: "CA2",
      direction: "inbound",
      from_number: CALLER,
      to_number: "+15550001111",
      scenario: "dental-receptionist",
      status: "in-progress",
    });
    const tool = scenario.tools.find((candidate) => candidate.name === "book_appointment");
    const results = await Promise.all(
      ["CA1", "CA2"].map((callSid, index) =>
        tool?.run(
          { slot_id: open[2 + index]?.id, patient_name: "Jamie Fox", reason: "cleaning" },
          { ...context(), callSid },
        ),
      ),
    );
    expect(results.filter((result) => (result as { booked: boolean }).booked)).toHaveLength(1);
    expect(store.appointments.bookingsByPhone(CALLER)).toHaveLength(3);
  });
});
