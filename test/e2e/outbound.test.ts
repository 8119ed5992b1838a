/** Outbound calls end to end: POST /make-call → real twilio SDK → fake Twilio → stream + AMD → agent or voicemail. */
import { afterEach, describe, expect, spyOn, test } from "bun:test";
import { systemClock } from "../../src/clock.ts";
import { loadConfig } from "../../src/config.ts";
import { DEMO_LEAD } from "../../src/scenarios/insurance-followup/demo-lead.ts";
import { FakeTtsServer } from "../fakes/tts-server.ts";
import { readTwiml } from "../fakes/twilio-webhooks.ts";
import { json } from "../helpers/http.ts";
import {
  ACCOUNT_SID,
  FROM,
  type OutboundHarness,
  startOutboundHarness,
} from "../helpers/outbound-harness.ts";

const TO = "+15557654321";
const GREETING_BYTES = 300 * 8;
/**
 * Twilio's documented ranges of the AMD tuning parameters (Calls API and error 21234, "Invalid
 * Machine Detection configuration value"), written out here independently of the service's config.
 */
const TWILIO_AMD_RANGES = {
  MachineDetectionTimeout: [3, 59],
  MachineDetectionSpeechThreshold: [1000, 6000],
  MachineDetectionSpeechEndThreshold: [500, 5000],
  MachineDetectionSilenceTimeout: [2000, 10000],
} as const;
let harness: OutboundHarness;
afterEach(async () => {
  await harness.stop();
});

async function placeCall(body: unknown = { to: TO }) {
  const response = await harness.makeCall(body);
  expect(response.status).toBe(200);
  return (await json(response)) as { call_sid: string; status: string; lead_id: string };
}

describe("placing a call", () => {
  test("POST /make-call dials through the SDK with inline TwiML, async AMD and status callbacks", async () => {
    harness = await startOutboundHarness();
    const placed = await placeCall({
      to: TO,
      lead: { ...DEMO_LEAD, first_name: "Jordan", last_name: "Lee" },
    });
    expect(placed.status).toBe("initiated");
    expect(placed.call_sid).toMatch(/^CA[0-9a-f]{32}$/);
    const create = harness.twilio.requests.find((request) => request.path.endsWith("/Calls.json"));
    const base = harness.service.url;
    expect(create?.form).toMatchObject({
      To: TO,
      From: FROM,
      MachineDetection: "DetectMessageEnd",
      AsyncAmd: "true",
      AsyncAmdStatusCallback: `${base}/amd-result`,
      StatusCallback: `${base}/call-status`,
      StatusCallbackEvent: ["initiated", "ringing", "answered", "completed"],
      // Twilio's own defaults, sent explicitly so the local fallback is derived from what Twilio uses.
      MachineDetectionTimeout: "30",
      MachineDetectionSpeechThreshold: "2400",
      MachineDetectionSpeechEndThreshold: "1200",
      MachineDetectionSilenceTimeout: "5000",
    });
    const twiml = readTwiml(String(create?.form.Twiml));
    expect(twiml.url).toBe(`${base.replace("http", "ws")}/twilio`);
    expect(twiml.stream).toMatchObject({
      statusCallback: `${base}/stream-status`,
      statusCallbackMethod: "POST",
    });
    expect(Object.keys(twiml.parameters)).toEqual(["token"]);
    const lead = await json(await harness.get(`/leads/${placed.lead_id}`));
    expect(lead).toMatchObject({ first_name: "Jordan", last_name: "Lee", phone: TO });
    expect(await harness.service.store.calls.get(placed.call_sid)).toMatchObject({
      direction: "outbound",
      lead_id: placed.lead_id,
      status: "queued",
    });
  });

  test("the AMD tuning reaches Twilio with the configured values, within Twilio's documented ranges", async () => {
    harness = await startOutboundHarness({
      MACHINE_DETECTION_TIMEOUT_S: "45",
      MACHINE_DETECTION_SPEECH_THRESHOLD_MS: "3000",
      MACHINE_DETECTION_SPEECH_END_THRESHOLD_MS: "1500",
      MACHINE_DETECTION_SILENCE_TIMEOUT_MS: "4000",
    });
    const placed = await placeCall();
    const create = harness.twilio.requests.find((request) => request.path.endsWith("/Calls.json"));
    const sent = {
      MachineDetectionTimeout: "45",
      MachineDetectionSpeechThreshold: "3000",
      MachineDetectionSpeechEndThreshold: "1500",
      MachineDetectionSilenceTimeout: "4000",
    };
    expect(create?.form).toMatchObject({ MachineDetection: "DetectMessageEnd", ...sent });
    for (const [name, [low, high]] of Object.entries(TWILIO_AMD_RANGES)) {
      const value = Number(create?.form[name]);
      expect(Number.isInteger(value)).toBe(true);
      expect(value).toBeGreaterThanOrEqual(low);
      expect(value).toBeLessThanOrEqual(high);
    }
    // The fake accepted them as Twilio would (it refuses out-of-range values with 21234).
    expect(harness.twilio.calls.get(placed.call_sid)?.machineDetectionTuning).toEqual(sent);
  });

  test("errors: 401 without the secret, 400 naming the field, 404 unknown lead, 502 with Twilio's message, 429 at the limit", async () => {
    harness = await startOutboundHarness({ MAX_CONCURRENT_CALLS: "1" });
    expect((await harness.makeCall({ to: TO }, null)).status).toBe(401);
    const badNumber = await harness.makeCall({ to: "555-1234" });
    expect(badNumber.status).toBe(400);
    expect((await json(badNumber)).field).toBe("body.to");
    const badLead = await harness.makeCall({ to: TO, lead: { first_name: "A" } });
    expect((await json(badLead)).field).toBe("body.lead.last_name");
    const both = await harness.makeCall({ to: TO, lead: DEMO_LEAD, lead_id: "x" });
    expect(both.status).toBe(400);
    const unknown = await harness.makeCall({ to: TO, lead_id: "lead_nope" });
    expect(unknown.status).toBe(404);
    expect(await json(unknown)).toEqual({ error: "No lead lead_nope", code: "NOT_FOUND" });

    harness.twilio.failNextCreate = {
      status: 400,
      code: 21215,
      message: "Account not authorized to call +15557654321.",
    };
    const refused = await harness.makeCall({ to: TO });
    expect(refused.status).toBe(502);
    expect(await json(refused)).toEqual({
      error: "Twilio refused to place the call: Account not authorized to call +15557654321.",
      code: "TWILIO_ERROR",
    });
    expect(await harness.service.coordination.load()).toBe(0);

    await placeCall();
    const full = await harness.makeCall({ to: TO });
    expect(full.status).toBe(429);
    expect((await json(full)).code).toBe("TOO_MANY_CALLS");
  });

  test("a busy line is recorded as the outcome and frees its place", async () => {
    harness = await startOutboundHarness({ MAX_CONCURRENT_CALLS: "1" });
    const placed = await placeCall();
    expect((await harness.twilio.sendStatus(placed.call_sid, "ringing"))?.status).toBe(204);
    expect((await harness.twilio.sendStatus(placed.call_sid, "busy"))?.status).toBe(204);
    expect(await harness.service.store.calls.get(placed.call_sid)).toMatchObject({
      status: "busy",
      outcome: "busy",
    });
    await harness.twilio.sendStatus(placed.call_sid, "ringing");
    expect((await harness.service.store.calls.get(placed.call_sid))?.status).toBe("busy");
    // Every way a call ends unanswered has an outcome from the same vocabulary.
    for (const [status, outcome] of [
      ["no-answer", "no_answer"],
      ["failed", "failed"],
      ["canceled", "failed"],
    ] as const) {
      const next = await placeCall();
      await harness.twilio.sendStatus(next.call_sid, status);
      expect(await harness.service.store.calls.get(next.call_sid)).toMatchObject({
        status,
        outcome,
        outcome_detail: `Twilio: ${status}`,
      });
    }
    // Answered and completed before any stream (hung up during the first words): still an outcome.
    const brief = await placeCall();
    await harness.twilio.sendStatus(brief.call_sid, "in-progress");
    await harness.twilio.sendStatus(brief.call_sid, "completed");
    expect(await harness.service.store.calls.get(brief.call_sid)).toMatchObject({
      status: "completed",
      end_reason: "caller_hung_up",
      outcome: "caller_hung_up",
    });
  });

  test("with Twilio not configured: 503 naming the variables", async () => {
    harness = await startOutboundHarness({ TWILIO_AUTH_TOKEN: "", TWILIO_PHONE_NUMBER: "" });
    const response = await harness.makeCall({ to: TO });
    expect(response.status).toBe(503);
    expect((await json(response)).error).toBe(
      "Twilio is not configured: set TWILIO_AUTH_TOKEN, TWILIO_PHONE_NUMBER",
    );
  });
});

describe("a person answers", () => {
  test("the agent waits for the verdict, then books a consultation and records the outcome", async () => {
    harness = await startOutboundHarness();
    const placed = await placeCall();
    await harness.twilio.sendStatus(placed.call_sid, "ringing");
    const phone = await harness.twilio.answer(placed.call_sid);
    const agent = await harness.agent.nextSession();
    expect(agent.settings).toMatchObject({
      tags: ["outbound", "insurance-followup"],
      agent: {
        greeting:
          "Hi, this is Sarah, an AI assistant calling on behalf of Prestige Home Insurance. Am I speaking with Alex Mitchell?",
      },
    });
    expect(JSON.stringify(agent.settings)).toContain("742 Evergreen Terrace");
    phone.sendMedia(Buffer.alloc(160, 0x55));
    await Bun.sleep(50);
    expect(phone.received).toEqual([]);
    expect(agent.audioBytes).toBe(0);

    expect((await harness.twilio.sendAmd(placed.call_sid, "human")).status).toBe(204);
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, "greeting heard");

    const open = JSON.parse(await agent.callFunction("check_availability", {}));
    expect(open.available.length).toBeGreaterThan(0);
    const booked = JSON.parse(
      await agent.callFunction("book_appointment", { slot_id: open.available[0].slot_id }),
    );
    expect(booked).toMatchObject({ booked: true, time: open.available[0].time });
    const recorded = await agent.callFunction("update_lead", {
      call_outcome: "completed",
      disposition: "appointment_booked",
      appointment_id: booked.appointment_id,
      new_info: { roof_age_years: 12, claims_last_5_years: 0 },
      summary: "Verified address, booked a consultation.",
    });
    expect(recorded).toContain("Recorded");
    await agent.callFunction("end_call", { reason: "done" });
    agent.say("Thanks Alex, goodbye!", 200);
    await phone.closed;
    const hangUp = await harness.twilio.waitForRequest((request) =>
      request.path.endsWith(`/Calls/${placed.call_sid}.json`),
    );
    expect(hangUp.form).toEqual({ Status: "completed" });
    await harness.twilio.sendStatus(placed.call_sid, "completed", { CallDuration: "95" });

    const { call, lead, timeline } = await json(await harness.get(`/calls/${placed.call_sid}`));
    expect(lead).toMatchObject({ id: placed.lead_id, first_name: "Alex", last_name: "Mitchell" });
    expect(call).toMatchObject({
      answered_by: "human",
      outcome: "appointment_booked",
      outcome_detail: "Verified address, booked a consultation.",
      end_reason: "agent_ended_call",
      status: "completed",
    });
    const kinds = timeline.map((event: { kind: string }) => event.kind);
    expect(kinds).toContain("amd");
    expect(kinds.filter((kind: string) => kind === "function_call")).toHaveLength(4);
    expect(await harness.service.store.appointments.booking(booked.appointment_id)).toMatchObject({
      lead_id: placed.lead_id,
      phone: TO,
      calendar: "insurance-consultation",
    });
    expect(harness.logs.find((line) => line.msg === "lead update")).toMatchObject({
      disposition: "appointment_booked",
    });
  });

  test("an AMD verdict that arrives before the stream starts is not lost", async () => {
    harness = await startOutboundHarness();
    const placed = await placeCall();
    expect((await harness.twilio.sendAmd(placed.call_sid, "human")).status).toBe(204);
    expect((await harness.service.store.calls.get(placed.call_sid))?.answered_by).toBe("human");
    const phone = await harness.twilio.answer(placed.call_sid);
    await phone.waitFor(
      () => phone.heardBytes === GREETING_BYTES,
      "greeting heard without waiting for a timeout",
      2_000,
    );
  });
});

describe("a machine answers", () => {
  test("the personalised voicemail is streamed from TTS and the call hangs up after it has played", async () => {
    harness = await startOutboundHarness();
    const placed = await placeCall();
    const phone = await harness.twilio.answer(placed.call_sid);
    const agent = await harness.agent.nextSession();
    await harness.twilio.sendAmd(placed.call_sid, "machine_end_beep");
    await phone.closed;
    await agent.whenClosed;
    const request = harness.tts.requests[0];
    expect(request).toMatchObject({
      authorized: true,
      query: {
        model: "aura-2-thalia-en",
        encoding: "mulaw",
        sample_rate: "8000",
        container: "none",
        // The voicemail names the lead: kept out of Deepgram's model improvement, like the calls.
        mip_opt_out: "true",
      },
    });
    expect(request?.text).toStartWith(
      "Hi Alex, this is Sarah calling on behalf of Prestige Home Insurance",
    );
    expect(request?.text).toContain("call us back");
    expect(phone.receivedAudio().length).toBe(FakeTtsServer.audioBytes(request?.text ?? ""));
    expect(phone.heardBytes).toBe(phone.receivedAudio().length);
    expect(await harness.service.store.calls.get(placed.call_sid)).toMatchObject({
      answered_by: "machine_end_beep",
      outcome: "no_answer_voicemail_left",
      end_reason: "voicemail_left",
    });
  });

  test("a late machine verdict, mid-conversation, still gets the voicemail", async () => {
    // AMD_VERDICT_TIMEOUT_MS unset: the local fallback is derived from MACHINE_DETECTION_TIMEOUT_S.
    const env = { MACHINE_DETECTION_TIMEOUT_S: "47", AMD_VERDICT_TIMEOUT_MS: "" };
    const fallbackMs = loadConfig(env).calls.amdVerdictTimeoutMs;
    expect(fallbackMs).toBeGreaterThan(47_000);
    // Twilio's verdict is late (its callback delayed past the fallback): rather than wait the
    // fallback's ~50 s of wall-clock time, the system clock fires that one timer after 50 ms.
    const setTimeout = systemClock.setTimeout;
    const armed: number[] = [];
    const clock = spyOn(systemClock, "setTimeout").mockImplementation((callback, ms) => {
      if (ms === fallbackMs) armed.push(ms);
      return setTimeout(callback, ms === fallbackMs ? 50 : ms);
    });
    try {
      harness = await startOutboundHarness(env);
      const placed = await placeCall();
      const create = harness.twilio.requests.find((request) =>
        request.path.endsWith("/Calls.json"),
      );
      expect(create?.form.MachineDetectionTimeout).toBe("47");
      const phone = await harness.twilio.answer(placed.call_sid, { speed: 1 });
      const agent = await harness.agent.nextSession();
      await phone.waitFor(
        () => phone.received.length > 0,
        "greeting started after the verdict timeout",
      );
      expect(armed).toEqual([fallbackMs]);
      await harness.twilio.sendAmd(placed.call_sid, "machine_end_other");
      await phone.closed;
      await agent.whenClosed;
      expect(phone.clears).toBe(1);
      expect(harness.tts.requests).toHaveLength(1);
      expect(await harness.service.store.calls.get(placed.call_sid)).toMatchObject({
        outcome: "no_answer_voicemail_left",
      });
    } finally {
      clock.mockRestore();
    }
  }, 20_000);

  test("a TTS failure hangs up and the outcome says why", async () => {
    harness = await startOutboundHarness();
    harness.tts.failNext = 500;
    const placed = await placeCall();
    const phone = await harness.twilio.answer(placed.call_sid);
    await harness.agent.nextSession();
    await harness.twilio.sendAmd(placed.call_sid, "machine_end_silence");
    await phone.closed;
    const call = await harness.service.store.calls.get(placed.call_sid);
    expect(call).toMatchObject({ outcome: "voicemail_failed", end_reason: "voicemail_failed" });
    expect(call?.outcome_detail).toContain("The fake failed as asked");
  });
});

describe("refusals", () => {
  test("unsigned callbacks change nothing; a stream with a wrong token gets no agent", async () => {
    harness = await startOutboundHarness();
    const placed = await placeCall();
    const unsigned = await fetch(`${harness.service.url}/amd-result`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        CallSid: placed.call_sid,
        AccountSid: ACCOUNT_SID,
        AnsweredBy: "machine_end_beep",
      }),
    });
    expect(unsigned.status).toBe(403);
    const status = await fetch(`${harness.service.url}/call-status`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": "forged",
      },
      body: new URLSearchParams({ CallSid: placed.call_sid, CallStatus: "completed" }),
    });
    expect(status.status).toBe(403);
    expect(await harness.service.store.calls.get(placed.call_sid)).toMatchObject({
      answered_by: null,
      status: "queued",
    });

    const call = harness.twilio.calls.get(placed.call_sid);
    if (!call) throw new Error("no call");
    call.twiml = call.twiml.replace(/name="token" value="[^"]*"/, 'name="token" value="Zm9yZ2Vk"');
    const phone = await harness.twilio.answer(placed.call_sid);
    expect((await phone.closed).code).toBe(1008);
    expect(harness.agent.sessions).toHaveLength(0);
  });
});

describe("stream signatures", () => {
  test("with TWILIO_VALIDATE_STREAM_SIGNATURES the upgrade must be signed too", async () => {
    harness = await startOutboundHarness({ TWILIO_VALIDATE_STREAM_SIGNATURES: "true" });
    const unsigned = await placeCall();
    // Refused at the upgrade (403), before it costs a socket or a place among pending streams.
    await expect(
      harness.twilio.answer(unsigned.call_sid, { headers: { "x-twilio-signature": "" } }),
    ).rejects.toThrow("could not connect");
    expect(harness.service.bridge.refusedStreams).toBe(1);
    expect(harness.agent.sessions).toHaveLength(0);
    const signed = await placeCall();
    const phone = await harness.twilio.answer(signed.call_sid);
    await harness.agent.nextSession();
    expect(phone.isClosed).toBe(false);
  });
});
