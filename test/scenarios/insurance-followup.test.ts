import { beforeEach, describe, expect, test } from "bun:test";
import { runTool } from "../../src/call/tools.ts";
import { createLogger } from "../../src/log.ts";
import { insuranceFollowUp } from "../../src/scenarios/insurance-followup/index.ts";
import type { PreparedScenario } from "../../src/scenarios/types.ts";
import { openStore, type Store } from "../../src/store/index.ts";
import type { Storage } from "../../src/store/port.ts";
import { sqliteStorage } from "../../src/store/sqlite-storage.ts";
import { ManualClock } from "../fakes/clock.ts";

// Monday 2026-03-02, 9:00 in Chicago.
const NOW = "2026-03-02T15:00:00.000Z";
const CALLEE = "+15557654321";
const lines: Record<string, unknown>[] = [];
const logger = createLogger({ level: "info", write: (line) => lines.push(JSON.parse(line)) });

/** The SQLite store itself, for setting up and checking rows; the scenario sees it as `storage`. */
let store: Store;
let storage: Storage;
let clock: ManualClock;
let scenario: PreparedScenario;
let leadId: string;

beforeEach(async () => {
  clock = new ManualClock(NOW);
  store = openStore(":memory:", clock);
  storage = sqliteStorage(store);
  await insuranceFollowUp.seed?.({ store: storage, clock, logger });
  leadId = store.leads.create({
    first_name: "Jordan",
    last_name: "Lee",
    property_address: "1 Elm St",
    year_built: 2001,
  }).id;
  store.calls.create({
    sid: "CA1",
    direction: "outbound",
    from_number: "+15550001111",
    to_number: CALLEE,
    scenario: "insurance-followup",
    status: "in-progress",
    lead_id: leadId,
  });
  scenario = await insuranceFollowUp.prepare(
    {
      callSid: "CA1",
      direction: "outbound",
      recorded: false,
      from: "+15550001111",
      to: CALLEE,
      startedAt: clock.now(),
      leadId,
    },
    { store: storage, clock, logger },
  );
});

async function call(name: string, args: unknown) {
  const tool = scenario.tools.find((candidate) => candidate.name === name);
  const context = {
    callSid: "CA1",
    customerNumber: CALLEE,
    now: clock.now(),
    endCall: () => {},
    transfer: () => {},
  };
  const outcome = await runTool(tool, name, JSON.stringify(args), context, clock, 1_000);
  return {
    ...outcome,
    result: outcome.content.startsWith("{") ? JSON.parse(outcome.content) : outcome.content,
  };
}

describe("prepared for a lead", () => {
  test("greeting names the lead and the company; the prompt carries the lead, the date and the rules", () => {
    expect(scenario.greeting).toBe(
      "Hi, this is Sarah, an AI assistant calling on behalf of Prestige Home Insurance. Am I speaking with Jordan Lee?",
    );
    for (const text of [
      "1 Elm St",
      "Year built: 2001",
      "Today is Monday, March 2, 2026",
      "not a licensed insurance agent",
      "roof",
      "five years",
      "Until the person has confirmed they are the lead named above",
      '- Property address: "1 Elm St"',
    ]) {
      expect(scenario.prompt).toContain(text);
    }
    expect(scenario.prompt).not.toContain("Email:");
    expect(scenario.voicemail).toStartWith(
      "Hi Jordan, this is Sarah calling on behalf of Prestige Home Insurance",
    );
  });

  test("an unknown lead id falls back to the demo lead", async () => {
    const demo = await insuranceFollowUp.prepare(
      {
        callSid: "CA2",
        direction: "outbound",
        recorded: false,
        from: "+1",
        to: CALLEE,
        startedAt: clock.now(),
      },
      { store: storage, clock, logger },
    );
    expect(demo.greeting).toContain("Alex Mitchell");
  });
});

describe("tools", () => {
  test("check_availability offers three distinct upcoming times with licensed agents", async () => {
    const { result } = await call("check_availability", {});
    expect(result.available).toHaveLength(3);
    expect(result.available[0]).toMatchObject({ time: "Monday, March 2 at 10:00 AM" });
    expect(new Set(result.available.map((slot: { time: string }) => slot.time)).size).toBe(3);
    const afternoon = (
      await call("check_availability", { day: "2026-03-03", part_of_day: "afternoon" })
    ).result;
    expect(afternoon.available[0].time).toBe("Tuesday, March 3 at 1:00 PM");
    const weekend = (await call("check_availability", { day: "2026-03-07" })).result;
    expect(weekend.available).toEqual([]);
  });

  test("book_appointment books for the lead", async () => {
    const [first] = (await call("check_availability", { day: "2026-03-03" })).result.available;
    const booked = (await call("book_appointment", { slot_id: first.slot_id })).result;
    expect(booked).toMatchObject({ booked: true, time: first.time });
    expect(store.appointments.booking(booked.appointment_id)).toMatchObject({
      lead_id: leadId,
      name: "Jordan Lee",
      phone: CALLEE,
    });
  });

  test("a time someone else has just taken comes back with alternatives", async () => {
    const [first] = (await call("check_availability", { day: "2026-03-03" })).result.available;
    const other = store.leads.create({ first_name: "Morgan", last_name: "Diaz" });
    expect(
      store.appointments.book({ slot_id: first.slot_id, name: "Morgan Diaz", lead_id: other.id })
        .ok,
    ).toBe(true);
    const taken = (await call("book_appointment", { slot_id: first.slot_id })).result;
    expect(taken.booked).toBe(false);
    expect(taken.alternatives.length).toBeGreaterThan(0);
    expect(store.appointments.bookingsByPhone(CALLEE)).toEqual([]);
  });

  test("update_lead stores the disposition and summary on the call and logs the block", async () => {
    const { result } = await call("update_lead", {
      call_outcome: "completed",
      disposition: "callback_requested",
      summary: "Asked to be called back next week.",
      new_info: { roof_age_years: 8 },
    });
    expect(result).toContain("Recorded");
    expect(store.calls.get("CA1")).toMatchObject({
      outcome: "callback_requested",
      outcome_detail: "Asked to be called back next week.",
    });
    expect(lines.find((line) => line.msg === "lead update")).toMatchObject({
      disposition: "callback_requested",
      leadId,
    });
  });

  test("a lead who asks not to be called again goes on the do-not-call list", async () => {
    expect(store.dnc.get(CALLEE)).toBeUndefined();
    await call("update_lead", {
      call_outcome: "completed",
      disposition: "do_not_call",
      summary: "Asked never to be called again.",
    });
    expect(store.dnc.get(CALLEE)).toMatchObject({
      number: CALLEE,
      source: "agent",
      reason: "asked on call CA1",
    });
  });

  test("update_lead refuses an unknown disposition", async () => {
    const { ok, content } = await call("update_lead", {
      call_outcome: "completed",
      disposition: "maybe",
      summary: "x",
    });
    expect(ok).toBe(false);
    expect(content).toContain("disposition");
  });
});
