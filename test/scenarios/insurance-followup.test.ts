import { beforeEach, describe, expect, test } from "bun:test";
import { runTool } from "../../src/call/tools.ts";
import { DEFAULT_RETRY } from "../../src/campaigns/schedule.ts";
import { createLogger } from "../../src/log.ts";
import { insuranceFollowUp } from "../../src/scenarios/insurance-followup/index.ts";
import type { PreparedScenario } from "../../src/scenarios/types.ts";
import type { Campaign } from "../../src/store/campaigns.ts";
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
    onWithdraw: () => {},
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

describe("schedule_callback, on a campaign's call", () => {
  const NEW_YORK = "America/New_York";
  /** Prepares CA1 as a campaign attempt at a lead in New York (the office is in Chicago). */
  async function asCampaignCall(): Promise<PreparedScenario> {
    const created = store.campaigns.create(
      {
        name: "March",
        scenario: "insurance-followup",
        from: "+15550001111",
        timezone: "America/Chicago",
        window: { days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "20:00" },
        max_concurrent: 1,
        max_per_minute: 1,
        max_attempts: 3,
        retry_after_minutes: DEFAULT_RETRY,
        retry_no_decision: false,
      },
      [{ lead_id: leadId, phone: CALLEE, timezone: NEW_YORK }],
      NOW,
    );
    const campaign = created?.campaign as Campaign;
    const [attempt] = store.campaigns.claim({
      campaign,
      now: NOW,
      limit: 1,
      instance: "test",
      opening: () => NOW,
    });
    store.campaigns.placed(attempt?.id ?? "", "CA1", NOW);
    return insuranceFollowUp.prepare(
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
  }
  const callbackAt = () =>
    store.campaigns.leads(store.campaigns.list(1, 0)[0]?.id ?? "", 1, 0)[0]?.callback_at;

  test("is offered only on a campaign's call, deferred to the end of the turn, with the lead's local time in the prompt", async () => {
    expect(scenario.tools.map((tool) => tool.name)).not.toContain("schedule_callback");
    expect(scenario.prompt).not.toContain("schedule_callback");
    scenario = await asCampaignCall();
    const tool = scenario.tools.find((each) => each.name === "schedule_callback");
    expect(tool?.deferUntilEndOfTurn).toBe(true);
    expect(tool?.description).toContain(NEW_YORK);
    // 15:00 UTC is 10:00 in New York.
    expect(scenario.prompt).toContain(
      "it is Monday, March 2 at 10:00 AM for them now, America/New_York",
    );
  });

  test("keeps the asked local time in the lead's zone, daylight saving included", async () => {
    scenario = await asCampaignCall();
    const tomorrow = await call("schedule_callback", { date: "2026-03-03", time: "15:00" });
    expect(tomorrow.result).toEqual({ scheduled: true, time: "Tuesday, March 3 at 3:00 PM" });
    expect(callbackAt()).toBe("2026-03-03T20:00:00.000Z");
    // The clocks go forward on March 8: 3 PM in New York is 19:00 UTC after it.
    await call("schedule_callback", { date: "2026-03-09", time: "15:00" });
    expect(callbackAt()).toBe("2026-03-09T19:00:00.000Z");
  });

  test("withdrawn by the agent after it ran, the callback is taken back", async () => {
    scenario = await asCampaignCall();
    const undo: (() => unknown)[] = [];
    const tool = scenario.tools.find((each) => each.name === "schedule_callback");
    const context = {
      callSid: "CA1",
      customerNumber: CALLEE,
      now: clock.now(),
      endCall: () => {},
      transfer: () => {},
      onWithdraw: (step: () => unknown) => undo.push(step),
    };
    const args = JSON.stringify({ date: "2026-03-03", time: "15:00" });
    await runTool(tool, "schedule_callback", args, context, clock, 1_000);
    expect(callbackAt()).toBe("2026-03-03T20:00:00.000Z");
    for (const step of undo) await step();
    expect(callbackAt()).toBeNull();
  });

  test("a time outside the calling hours moves to the next opening, and the agent is told", async () => {
    scenario = await asCampaignCall();
    const late = await call("schedule_callback", { date: "2026-03-06", time: "21:30" });
    expect(late.result).toMatchObject({ scheduled: true, time: "Monday, March 9 at 9:00 AM" });
    expect(late.result.note).toContain("outside our calling hours");
    expect(callbackAt()).toBe("2026-03-09T13:00:00.000Z");
  });

  test("refuses a past, too near, impossible or too distant time, and schedules nothing", async () => {
    scenario = await asCampaignCall();
    for (const [args, words] of [
      [{ date: "2026-03-02", time: "09:00" }, "too soon"],
      [{ date: "2026-03-02", time: "10:05" }, "too soon"],
      [{ date: "2026-02-30", time: "15:00" }, "does not exist"],
      [{ date: "2026-06-01", time: "15:00" }, "more than 30 days"],
    ] as const) {
      expect((await call("schedule_callback", args)).result).toContain(words);
    }
    expect((await call("schedule_callback", { date: "tomorrow", time: "3pm" })).content).toContain(
      "date",
    );
    expect(callbackAt()).toBeNull();
  });
});
