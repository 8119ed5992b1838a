/**
 * A campaign's call end to end on real sockets, with the system clock: the dialer places it, a
 * person answers, the agent (the fake Voice Agent) schedules a callback with `schedule_callback`
 * in the lead's own zone and records `callback_requested`; once the call has ended, the lead's
 * next attempt is at that local time.
 */
import { afterEach, expect, test } from "bun:test";
import { localDate, zonedToUtc } from "../../src/scenarios/shared/time.ts";
import type { Campaign, CampaignLeadDetail } from "../../src/store/campaigns.ts";
import { eventually } from "../helpers/eventually.ts";
import { json } from "../helpers/http.ts";
import { type OutboundHarness, SECRET, startOutboundHarness } from "../helpers/outbound-harness.ts";

const GREETING_BYTES = 300 * 8;
const LEAD_ZONE = "America/New_York";

let harness: OutboundHarness | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

const post = (h: OutboundHarness, path: string, body: unknown) =>
  fetch(`${h.service.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });

test("a callback the lead asks for on a campaign call is the lead's next attempt, at that local time", async () => {
  const h = await startOutboundHarness();
  harness = h;
  const lead = await json(
    await post(h, "/leads", {
      first_name: "Grace",
      last_name: "Hopper",
      phone: "+15557654321",
      timezone: LEAD_ZONE,
    }),
  );
  const { campaign } = (await json(
    await post(h, "/campaigns", {
      name: "Callbacks",
      lead_ids: [lead.id],
      timezone: "America/Chicago",
      window: {
        days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        start: "00:00",
        end: "23:59",
      },
    }),
  )) as { campaign: Campaign };
  // The dialer's own round (once a second) places the call.
  const create = await h.twilio.waitForRequest(
    (request) => request.path.endsWith("/Calls.json"),
    "the campaign's call",
  );
  expect(create.form.To).toBe("+15557654321");
  const call = h.twilio.lastCall();
  const phone = await h.twilio.answer(call.sid);
  const agent = await h.agent.nextSession();
  const functions = (
    agent.settings as {
      agent: { think: { functions: { name: string; defer_until_eot?: boolean }[] } };
    }
  ).agent.think.functions;
  expect(functions.find((fn) => fn.name === "schedule_callback")?.defer_until_eot).toBe(true);
  expect(JSON.stringify(agent.settings)).toContain(`for them now, ${LEAD_ZONE}`);
  await h.twilio.sendAmd(call.sid, "human");
  await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, "greeting heard");

  // "Call me tomorrow at three."
  const tomorrow = localDate(new Date(Date.now() + 86_400_000), LEAD_ZONE);
  const scheduled = JSON.parse(
    await agent.callFunction("schedule_callback", { date: tomorrow, time: "15:00" }),
  );
  expect(scheduled).toMatchObject({ scheduled: true });
  expect(scheduled.time).toContain("3:00 PM");
  await agent.callFunction("update_lead", {
    call_outcome: "partial",
    disposition: "callback_requested",
    summary: "Asked to be called tomorrow at three.",
  });
  await agent.callFunction("end_call", { reason: "callback scheduled" });
  agent.say("Talk to you tomorrow, goodbye!", 200);
  await phone.closed;
  await h.twilio.sendStatus(call.sid, "completed", { CallDuration: "40" });

  const asked = zonedToUtc(tomorrow, 15 * 60, LEAD_ZONE).toISOString();
  const settled = await eventually(async () => {
    const { leads } = (await json(await h.get(`/campaigns/${campaign.id}/leads`))) as {
      leads: CampaignLeadDetail[];
    };
    return leads[0]?.state === "pending" ? leads[0] : undefined;
  }, "the attempt settled");
  expect(settled).toMatchObject({
    next_attempt_at: asked,
    last_outcome: "callback_requested",
    attempts: 1,
  });
  expect(settled.attempts_made[0]).toMatchObject({ state: "ended", call_sid: call.sid });
}, 20_000);
