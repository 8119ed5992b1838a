/**
 * Campaigns end to end with an injected clock and the fake Twilio: 100 leads in three time zones
 * over a weekend and a daylight-saving change, each answering its own way; what the fake Twilio's
 * call log shows is checked against the windows, the limits and the retry policy.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UNKNOWN_AFTER_MS } from "../../src/campaigns/dialer.ts";
import {
  isoWeekday,
  localDate,
  localMinutes,
  zonedToUtc,
} from "../../src/scenarios/shared/time.ts";
import type { Campaign, CampaignLeadDetail, CampaignSummary } from "../../src/store/campaigns.ts";
import type { FakeCall } from "../fakes/twilio-rest-server.ts";
import { type CampaignHarness, startCampaignHarness } from "../helpers/campaign-harness.ts";

const ZONES = ["America/New_York", "America/Chicago", "America/Los_Angeles"] as const;
const WINDOW = { days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "20:00" };
const STEP_MS = 15_000;
/** How long an answered or ringing call lasts before it ends. */
const CALL_MS = 30_000;

let harness: CampaignHarness | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

const phoneOf = (index: number) => `+1555200${String(index).padStart(4, "0")}`;

async function json<T>(response: Response, status = 200): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as T;
}

/** Stores leads and answers their ids, in order. */
async function importLeads(
  h: CampaignHarness,
  leads: { phone: string; timezone?: string }[],
): Promise<string[]> {
  const result = await json<{ stored: { id: string }[] }>(
    await h.request(
      "POST",
      "/leads/import",
      leads.map((lead, index) => ({ first_name: "Lead", last_name: `${index}`, ...lead })),
    ),
  );
  expect(result.stored).toHaveLength(leads.length);
  return result.stored.map((row) => row.id);
}

async function createCampaign(h: CampaignHarness, body: Record<string, unknown>) {
  return json<{ campaign: Campaign; leads: number; skipped: unknown[] }>(
    await h.request("POST", "/campaigns", {
      name: "December leads",
      timezone: "America/Chicago",
      window: WINDOW,
      ...body,
    }),
    201,
  );
}

const progressOf = async (h: CampaignHarness, id: string) =>
  json<Campaign & { progress: CampaignSummary }>(await h.request("GET", `/campaigns/${id}`));

/** Whether `at` is inside Mon–Fri 09:00–20:00 in `zone`. */
function insideWindow(at: number, zone: string): boolean {
  const instant = new Date(at);
  const minutes = localMinutes(instant, zone);
  return isoWeekday(localDate(instant, zone)) <= 5 && minutes >= 540 && minutes < 1200;
}

/** The most calls in progress at once (from each call's create to its end), by the call log. */
function mostAtOnce(calls: FakeCall[]): number {
  return Math.max(
    0,
    ...calls.map(
      (call) =>
        calls.filter(
          (other) =>
            other.createdAt <= call.createdAt && (other.endedAt ?? Infinity) > call.createdAt,
        ).length,
    ),
  );
}

/** The most calls created within any 60 s. */
function mostPerMinute(calls: FakeCall[]): number {
  return Math.max(
    0,
    ...calls.map(
      (call) =>
        calls.filter(
          (other) => other.createdAt <= call.createdAt && other.createdAt > call.createdAt - 60_000,
        ).length,
    ),
  );
}

/**
 * Runs the campaign until it completes: a dialer round every step while calls are in progress,
 * otherwise a jump to the next due attempt. `answer` says how each call ends (by its number and
 * which call to that number it is), 30 s after it was placed.
 */
async function runToCompletion(
  h: CampaignHarness,
  campaignId: string,
  answer: (call: FakeCall, nth: number) => Promise<{ outcome: string } | { status: string }>,
  { limitMs = 6 * 86_400_000 } = {},
): Promise<void> {
  const started = h.clock.now().getTime();
  const ends: { sid: string; at: number; how: { outcome: string } | { status: string } }[] = [];
  const perNumber = new Map<string, number>();
  for (;;) {
    const now = h.clock.now().getTime();
    for (const due of ends.filter((end) => end.at <= now)) {
      await h.end(due.sid, due.how);
      ends.splice(ends.indexOf(due), 1);
    }
    const placed = await h.round();
    for (const call of placed) {
      const nth = (perNumber.get(call.to) ?? 0) + 1;
      perNumber.set(call.to, nth);
      ends.push({ sid: call.sid, at: call.createdAt + CALL_MS, how: await answer(call, nth) });
    }
    const { state, progress } = await progressOf(h, campaignId);
    if (state === "completed") return;
    if (now - started > limitMs)
      throw new Error(`campaign not completed: ${JSON.stringify(progress)}`);
    const next = progress.next_attempts[0]?.at;
    const busy = ends.length > 0 || placed.length > 0 || progress.leads.calling > 0;
    const wait = busy || !next ? STEP_MS : Math.max(STEP_MS, Date.parse(next) - now);
    h.clock.advance(wait);
  }
}

describe("a campaign of 100 leads in three zones", () => {
  test("is dialled inside each lead's window, within its limits, retried per its policy, and completes", async () => {
    // Friday 2026-03-06 08:30 in New York; the clocks go forward on Sunday 2026-03-08.
    const h = await startCampaignHarness("2026-03-06T13:30:00.000Z");
    harness = h;
    const leads = Array.from({ length: 100 }, (_, index) => ({
      phone: phoneOf(index),
      // Every tenth-and-a-half lead names no zone: the campaign's (Chicago) applies.
      ...(index % 7 === 6 ? {} : { timezone: ZONES[index % 3] }),
    }));
    const zoneOf = (phone: string) => {
      const lead = leads.find((each) => each.phone === phone);
      return lead?.timezone ?? "America/Chicago";
    };
    const ids = await importLeads(h, leads);
    // Lead 7, 17, … are on the do-not-call list before the campaign starts.
    const listed = leads.filter((_, index) => index % 10 === 7).map((lead) => lead.phone);
    await json(await h.request("POST", "/dnc", { numbers: listed, reason: "asked by email" }));

    const { campaign, leads: count } = await createCampaign(h, {
      lead_ids: ids,
      from: "+15005550006",
      max_concurrent: 5,
      max_per_minute: 10,
      max_attempts: 3,
      retry_after_minutes: { no_answer: 120, busy: 30, failed: 60, no_answer_voicemail_left: 1440 },
    });
    expect(count).toBe(100);
    const callbackAt = new Map<string, number>();

    await runToCompletion(h, campaign.id, async (call, nth) => {
      const fate = Number(call.to.slice(-1));
      switch (fate) {
        case 0:
          return { outcome: "appointment_booked" };
        case 1:
          return { status: "no-answer" };
        case 2:
          return nth === 1 ? { status: "busy" } : { outcome: "appointment_booked" };
        case 3:
          return nth === 1
            ? { outcome: "no_answer_voicemail_left" }
            : { outcome: "not_interested" };
        case 4:
          return { outcome: "not_interested" };
        case 5: {
          if (nth > 1) return { outcome: "appointment_booked" };
          // "Call me Monday at half past three": what schedule_callback stores for the call.
          const at = zonedToUtc("2026-03-09", 15 * 60 + 30, zoneOf(call.to));
          callbackAt.set(call.to, at.getTime());
          await h.service.store.campaigns.requestCallback(
            call.sid,
            at.toISOString(),
            h.clock.now().toISOString(),
          );
          return { outcome: "callback_requested" };
        }
        case 6:
          return { outcome: "do_not_call" };
        case 8:
          return { outcome: "no_decision" };
        default:
          // Picked up and hung up at once (no disposition), then the wrong person.
          return nth === 1 ? { status: "completed" } : { outcome: "wrong_person" };
      }
    });

    const calls = [...h.twilio.calls.values()];
    const toNumber = (phone: string) => calls.filter((call) => call.to === phone);
    // The call log: every call inside its lead's window (the weekend and the DST change included),
    // never more than 5 at once nor 10 a minute, all from the campaign's number.
    for (const call of calls)
      expect(
        insideWindow(call.createdAt, zoneOf(call.to)),
        `${call.to} at ${new Date(call.createdAt).toISOString()}`,
      ).toBe(true);
    expect(mostAtOnce(calls)).toBeLessThanOrEqual(5);
    expect(mostAtOnce(calls)).toBe(5);
    expect(mostPerMinute(calls)).toBeLessThanOrEqual(10);
    expect(new Set(calls.map((call) => call.from))).toEqual(new Set(["+15005550006"]));

    const expected: Record<number, number> = {
      0: 1,
      1: 3,
      2: 2,
      3: 2,
      4: 1,
      5: 2,
      6: 1,
      7: 0,
      8: 1,
      9: 2,
    };
    const gapAtLeast: Record<number, number> = { 1: 120, 2: 30, 3: 1440, 9: 60 };
    for (const [index, lead] of leads.entries()) {
      const fate = index % 10;
      const made = toNumber(lead.phone).map((call) => call.createdAt);
      expect(made, `lead ${index}`).toHaveLength(expected[fate] as number);
      for (let nth = 1; nth < made.length; nth++) {
        const gap = (made[nth] as number) - (made[nth - 1] as number);
        if (fate === 5) {
          // The callback: at the asked local time (or the round right after it).
          const asked = callbackAt.get(lead.phone) as number;
          expect(made[nth] as number).toBeGreaterThanOrEqual(asked);
          expect(made[nth] as number).toBeLessThan(asked + STEP_MS);
        } else {
          expect(gap, `lead ${index} attempt ${nth + 1}`).toBeGreaterThanOrEqual(
            (gapAtLeast[fate] as number) * 60_000,
          );
        }
      }
    }
    // A voicemail's retry a day later lands after the weekend, on Monday, in the window.
    const voicemailRetry = toNumber(phoneOf(3))[1] as FakeCall;
    expect(localDate(new Date(voicemailRetry.createdAt), zoneOf(phoneOf(3)))).toBe("2026-03-09");

    const { state, progress } = await progressOf(h, campaign.id);
    expect(state).toBe("completed");
    expect(progress.leads).toEqual({ pending: 0, calling: 0, done: 100, unknown: 0, cancelled: 0 });
    expect(progress.results).toEqual({
      appointment_booked: 30,
      max_attempts: 10,
      not_interested: 20,
      do_not_call: 20,
      no_decision: 10,
      wrong_person: 10,
    });
    // Each lead's attempts and their calls.
    const page = await json<{ leads: CampaignLeadDetail[] }>(
      await h.request("GET", `/campaigns/${campaign.id}/leads?limit=200`),
    );
    const noAnswer = page.leads.find((lead) => lead.phone === phoneOf(1)) as CampaignLeadDetail;
    expect(
      noAnswer.attempts_made.map((attempt) => [
        attempt.number,
        attempt.state,
        attempt.outcome,
        attempt.call?.status,
      ]),
    ).toEqual([
      [1, "ended", "no_answer", "no-answer"],
      [2, "ended", "no_answer", "no-answer"],
      [3, "ended", "no_answer", "no-answer"],
    ]);
    const skipped = page.leads.find((lead) => lead.phone === phoneOf(7)) as CampaignLeadDetail;
    expect(skipped).toMatchObject({ state: "done", result: "do_not_call" });
    expect(skipped.attempts_made.map((attempt) => [attempt.state, attempt.call_sid])).toEqual([
      ["skipped", null],
    ]);
    // The agent's do_not_call disposition put nobody on the list here (the test set the outcome),
    // but /make-call refuses the listed numbers like the campaign did.
    const refused = await h.request("POST", "/make-call", { to: phoneOf(7) });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { code: string }).code).toBe("DO_NOT_CALL");
  }, 120_000);
});

const EVERY_DAY = {
  days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
  start: "00:00",
  end: "23:59",
};

describe("campaign control", () => {
  test("pause stops new attempts, resume goes on, cancel calls no one again; wrong moves are 409s", async () => {
    const h = await startCampaignHarness("2026-03-02T15:00:00.000Z");
    harness = h;
    const ids = await importLeads(
      h,
      Array.from({ length: 4 }, (_, index) => ({ phone: phoneOf(index) })),
    );
    const { campaign } = await createCampaign(h, {
      lead_ids: ids,
      window: EVERY_DAY,
      max_concurrent: 1,
    });
    const move = (action: string) => h.request("POST", `/campaigns/${campaign.id}/${action}`);
    const [first] = await h.round();
    expect((await json<Campaign>(await move("pause"))).state).toBe("paused");
    expect((await json<{ code: string }>(await move("pause"), 409)).code).toBe("CAMPAIGN_STATE");
    // The call under way goes on and is settled; no new one starts while paused.
    await h.end((first as FakeCall).sid, { status: "no-answer" });
    h.clock.advance(3 * 3_600_000);
    expect(await h.round()).toEqual([]);
    expect((await progressOf(h, campaign.id)).progress.leads).toMatchObject({
      pending: 4,
      calling: 0,
    });
    expect((await json<Campaign>(await move("resume"))).state).toBe("active");
    const [second] = await h.round();
    expect(second).toBeDefined();
    expect((await json<Campaign>(await move("cancel"))).state).toBe("cancelled");
    await h.end((second as FakeCall).sid, { status: "no-answer" });
    h.clock.advance(3 * 3_600_000);
    expect(await h.round()).toEqual([]);
    const { state, progress } = await progressOf(h, campaign.id);
    expect(state).toBe("cancelled");
    expect(progress.leads).toEqual({ pending: 0, calling: 0, done: 0, unknown: 0, cancelled: 4 });
    expect(progress.attempts.total).toBe(2);
    expect((await json<{ code: string }>(await move("resume"), 409)).code).toBe("CAMPAIGN_STATE");
    expect((await h.request("POST", "/campaigns/cmp_missing/pause")).status).toBe(404);
    const listed = await json<{ campaigns: Campaign[] }>(await h.request("GET", "/campaigns"));
    expect(listed.campaigns.map((each) => [each.id, each.state])).toEqual([
      [campaign.id, "cancelled"],
    ]);
  });

  test("campaigns leave CAMPAIGN_INBOUND_HEADROOM of MAX_CONCURRENT_CALLS free", async () => {
    const h = await startCampaignHarness("2026-03-02T15:00:00.000Z", { MAX_CONCURRENT_CALLS: "4" });
    harness = h;
    const ids = await importLeads(
      h,
      Array.from({ length: 6 }, (_, index) => ({ phone: phoneOf(index) })),
    );
    await createCampaign(h, { lead_ids: ids, window: EVERY_DAY, max_concurrent: 5 });
    expect(await h.round()).toHaveLength(2);
    expect(await h.round()).toHaveLength(0);
    // The two kept free are there for others: two more calls, then the limit.
    expect((await h.request("POST", "/make-call", { to: "+15553000001" })).status).toBe(200);
    expect((await h.request("POST", "/make-call", { to: "+15553000002" })).status).toBe(200);
    expect((await h.request("POST", "/make-call", { to: "+15553000003" })).status).toBe(429);
  });

  test("Twilio's refusal is a failed attempt, tried again; a failure that may have dialled is unknown", async () => {
    const h = await startCampaignHarness("2026-03-02T15:00:00.000Z");
    harness = h;
    const ids = await importLeads(h, [{ phone: phoneOf(1) }, { phone: phoneOf(2) }]);
    const { campaign } = await createCampaign(h, {
      lead_ids: ids,
      window: EVERY_DAY,
      max_concurrent: 1,
    });
    h.twilio.failNextCreate = { status: 400, code: 21215, message: "Geo permission" };
    expect(await h.round()).toEqual([]);
    // Twilio answered 500: it may or may not have created the call.
    h.twilio.failNextCreate = { status: 500, code: 20500, message: "Internal Server Error" };
    expect(await h.round()).toEqual([]);
    h.clock.advance(UNKNOWN_AFTER_MS + STEP_MS);
    expect(await h.round()).toEqual([]);
    const { leads } = await json<{ leads: CampaignLeadDetail[] }>(
      await h.request("GET", `/campaigns/${campaign.id}/leads`),
    );
    const [refused, ambiguous] = [phoneOf(1), phoneOf(2)].map((phone) =>
      leads.find((lead) => lead.phone === phone),
    ) as [CampaignLeadDetail, CampaignLeadDetail];
    expect(refused).toMatchObject({ state: "pending", attempts: 1 });
    expect(refused.attempts_made[0]).toMatchObject({ state: "failed" });
    expect(refused.attempts_made[0]?.error).toContain("Geo permission");
    expect(Date.parse(refused.next_attempt_at ?? "")).toBe(Date.parse("2026-03-02T16:00:00.000Z"));
    expect(ambiguous).toMatchObject({ state: "unknown", result: "unknown" });
    // The refused lead is tried again after the failed delay; the unknown one never.
    h.clock.advance(3_600_000);
    expect((await h.round()).map((call) => call.to)).toEqual([phoneOf(1)]);
  });

  test("a number listed while the campaign runs is not called", async () => {
    const h = await startCampaignHarness("2026-03-02T15:00:00.000Z");
    harness = h;
    const ids = await importLeads(h, [{ phone: phoneOf(1) }, { phone: phoneOf(2) }]);
    const { campaign } = await createCampaign(h, {
      lead_ids: ids,
      window: EVERY_DAY,
      max_concurrent: 1,
    });
    const [first] = await h.round();
    await json(await h.request("POST", "/dnc", { numbers: [phoneOf(2)] }));
    await h.end((first as FakeCall).sid, { status: "no-answer" });
    expect(await h.round()).toEqual([]);
    const { progress } = await progressOf(h, campaign.id);
    expect(progress.results).toEqual({ do_not_call: 1 });
    expect(progress.attempts).toMatchObject({ skipped: 1, ended: 1 });
  });

  test("bad campaigns are refused naming the field", async () => {
    const h = await startCampaignHarness("2026-03-02T15:00:00.000Z");
    harness = h;
    const [id] = await importLeads(h, [{ phone: phoneOf(1) }]);
    const noPhone = await h.service.store.leads.create({ first_name: "No", last_name: "Phone" });
    const refused = async (body: Record<string, unknown>) => {
      const response = await h.request("POST", "/campaigns", {
        name: "Bad",
        timezone: "America/Chicago",
        window: WINDOW,
        lead_ids: [id],
        ...body,
      });
      expect(response.status).toBe(400);
      return ((await response.json()) as { error: string }).error;
    };
    expect(await refused({ window: { ...WINDOW, start: "20:00", end: "09:00" } })).toStartWith(
      "body.window.end:",
    );
    expect(await refused({ timezone: "Mars/Olympus" })).toStartWith("body.timezone:");
    expect(await refused({ leads: "all_new" })).toStartWith("body.lead_ids:");
    expect(await refused({ lead_ids: [noPhone.id, "lead_missing"] })).toContain("no lead to call");
    expect(await refused({ window: { ...WINDOW, days: ["someday"] } })).toStartWith(
      "body.window.days",
    );
    expect(await refused({ max_per_minute: 0 })).toStartWith("body.max_per_minute:");
    // A lead still to be called by one campaign is skipped by the next.
    const first = await createCampaign(h, { lead_ids: [id, noPhone.id] });
    expect(first.skipped).toEqual([
      { lead_id: noPhone.id, reason: "the lead has no phone number" },
    ]);
    expect(await refused({})).toContain(`still to be called by campaign ${first.campaign.id}`);
    const unauthorized = await fetch(`${h.service.url}/campaigns`);
    expect(unauthorized.status).toBe(401);
  });
});

describe("a restart mid-campaign", () => {
  test("neither loses nor repeats an attempt; one cut off before its SID was stored is unknown, never retried", async () => {
    const folder = mkdtempSync(join(tmpdir(), "voice-agent-campaign-"));
    try {
      const h = await startCampaignHarness("2026-03-02T15:00:00.000Z", {
        DATABASE_PATH: join(folder, "db.sqlite"),
      });
      harness = h;
      const ids = await importLeads(
        h,
        Array.from({ length: 5 }, (_, index) => ({ phone: phoneOf(index) })),
      );
      const { campaign } = await createCampaign(h, {
        lead_ids: ids,
        window: EVERY_DAY,
        max_concurrent: 3,
        max_attempts: 2,
      });
      // Another process claimed the first lead, asked Twilio, and died before storing the call SID.
      // (One that died before asking would have its claim released: see the store's contract.)
      const now = h.clock.now().toISOString();
      const [cutOff] = await h.service.store.campaigns.claim({
        campaign: (await h.service.store.campaigns.get(campaign.id)) as Campaign,
        now,
        limit: 1,
        instance: "instance_dead",
        opening: () => now,
      });
      expect(cutOff?.phone).toBe(phoneOf(0));
      expect(await h.service.store.campaigns.requested(cutOff?.id ?? "", now)).toBe(true);
      const [a, b] = (await h.round()) as [FakeCall, FakeCall];
      expect([a.to, b.to]).toEqual([phoneOf(1), phoneOf(2)]);
      await h.end(a.sid, { outcome: "appointment_booked" });
      await h.stopService();
      h.clock.advance(STEP_MS);
      await h.restart();
      // b was ringing when the service stopped: its record was ended at the restart, so it is tried
      // again later like a failure; the last two leads are called now, beside the cut-off claim.
      const afterRestart = await h.round();
      expect(afterRestart.map((call) => call.to)).toEqual([phoneOf(3), phoneOf(4)]);
      h.clock.advance(UNKNOWN_AFTER_MS);
      for (const call of afterRestart) await h.end(call.sid, { outcome: "not_interested" });
      await h.round();
      expect(
        h.logs.some(
          (line) => String(line.msg).includes("marked unknown") && line.leadId === cutOff?.lead_id,
        ),
      ).toBe(true);
      await runToCompletion(h, campaign.id, async () => ({ status: "no-answer" }));

      const calls = [...h.twilio.calls.values()];
      const made = (index: number) => calls.filter((call) => call.to === phoneOf(index)).length;
      // The cut-off lead never again; a booked once; b twice (the limit); the others once.
      expect([0, 1, 2, 3, 4].map(made)).toEqual([0, 1, 2, 1, 1]);
      const { leads } = await json<{ leads: CampaignLeadDetail[] }>(
        await h.request("GET", `/campaigns/${campaign.id}/leads`),
      );
      const attempts = leads.flatMap((lead) => lead.attempts_made);
      // Every call on Twilio's log is one attempt, and every attempt with a SID one call.
      expect(
        attempts
          .filter((attempt) => attempt.call_sid)
          .map((attempt) => attempt.call_sid)
          .sort(),
      ).toEqual(calls.map((call) => call.sid).sort());
      expect(leads.find((lead) => lead.lead_id === cutOff?.lead_id)).toMatchObject({
        state: "unknown",
        result: "unknown",
      });
      const interrupted = leads.find((lead) => lead.phone === phoneOf(2));
      expect(interrupted?.attempts_made.map((attempt) => attempt.outcome)).toEqual([
        "service_shutdown",
        "no_answer",
      ]);
      const { progress } = await progressOf(h, campaign.id);
      expect(progress.leads).toMatchObject({ unknown: 1, pending: 0, calling: 0 });
      expect(progress.attempts.unknown).toBe(1);
    } finally {
      await harness?.stop();
      harness = undefined;
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
