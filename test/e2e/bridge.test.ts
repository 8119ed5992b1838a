/** Whole calls over real sockets: fake Twilio phone → WS /twilio → CallSession → real agent adapter → fake Voice Agent. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { PHRASES } from "../../src/call/session.ts";
import type { Scenario } from "../../src/scenarios/types.ts";
import { mulawTone } from "../fakes/mulaw.ts";
import { TEST_CALENDAR, testScenario } from "../fakes/test-scenario.ts";
import { type BridgeHarness, startBridgeHarness } from "../helpers/bridge-harness.ts";

let harness: BridgeHarness;
afterEach(async () => {
  await harness.stop();
});

const GREETING_BYTES = 400 * 8;

describe("a normal call", () => {
  beforeEach(async () => {
    harness = await startBridgeHarness();
  });

  test("the agent gets valid settings and its greeting reaches the phone", async () => {
    const phone = await harness.call();
    const agent = await harness.agent.nextSession();
    expect(agent.settings).toMatchObject({
      type: "Settings",
      tags: ["inbound", "test-desk"],
      agent: {
        listen: { provider: { type: "deepgram", version: "v2", model: "flux-general-en" } },
        think: { provider: { type: "open_ai", model: "gpt-4o-mini" } },
        speak: { provider: { type: "deepgram", model: "aura-2-thalia-en" } },
        greeting: "Thanks for calling the test desk.",
      },
    });
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, "greeting heard");
    expect(phone.receivedAudio().length).toBe(GREETING_BYTES);
    expect(phone.echoedMarks.length).toBeGreaterThan(0);
    const events = await harness.service.store.calls.events(phone.callSid);
    expect(events.find((event) => event.kind === "transcript")?.data).toEqual({
      role: "assistant",
      text: "Thanks for calling the test desk.",
    });
    expect(await harness.service.store.calls.get(phone.callSid)).toMatchObject({
      direction: "inbound",
      from_number: "+15557654321",
      scenario: "test-desk",
    });
  });

  test("every caller frame reaches the agent, unbatched and unchanged", async () => {
    const phone = await harness.call();
    const agent = await harness.agent.nextSession();
    await phone.waitFor(() => phone.received.length > 0, "session live (greeting started)");
    const audio = mulawTone(400, 300);
    await phone.streamAudio(audio, { realtime: false });
    await agent.waitFor(() => agent.audioBytes === audio.length, "all caller audio");
    expect(agent.audioFrames).toBe(20);
  });

  test("barge-in: clear reaches the phone before any further agent audio", async () => {
    const phone = await harness.call({ speed: 1 });
    const agent = await harness.agent.nextSession();
    await phone.waitFor(() => phone.received.length > 0, "greeting started");
    agent.userSays("Actually, wait");
    agent.say("Sure, go ahead.", 100);
    await phone.waitFor(
      () => phone.clears === 1 && phone.receivedAudio().length >= GREETING_BYTES + 800,
      "reply",
    );
    const events = phone.events();
    const clearAt = events.indexOf("clear");
    expect(events.slice(clearAt + 1)).toContain("media");
    expect(phone.droppedBytes).toBeGreaterThan(0);
    expect(phone.heardBytes).toBeLessThan(GREETING_BYTES);
    const bargeIns = (await harness.service.store.calls.events(phone.callSid)).filter(
      (event) => event.kind === "barge_in",
    );
    expect(bargeIns).toHaveLength(1);
  });

  test("a function call round-trips: the agent sees the result and the store has the booking", async () => {
    await harness.service.store.appointments.addSlots([
      {
        calendar: TEST_CALENDAR,
        provider: "Dr. Test",
        starts_at: "2026-03-03T09:00:00.000Z",
        ends_at: "2026-03-03T09:30:00.000Z",
      },
    ]);
    const phone = await harness.call();
    const agent = await harness.agent.nextSession();
    const slots = JSON.parse(
      await agent.callFunction("check_slots", { from: "2026-03-01", to: "2026-03-10" }),
    );
    expect(slots).toEqual([{ slot_id: 1, starts_at: "2026-03-03T09:00:00.000Z" }]);
    const booked = JSON.parse(await agent.callFunction("book", { slot_id: 1, name: "Jamie Fox" }));
    expect(booked).toMatchObject({ booked: true });
    const booking = await harness.service.store.appointments.booking(booked.confirmation);
    expect(booking).toMatchObject({
      name: "Jamie Fox",
      phone: "+15557654321",
      call_sid: phone.callSid,
    });
    const again = JSON.parse(
      await agent.callFunction("book", { slot_id: 1, name: "Someone Else" }),
    );
    expect(again).toEqual({ booked: false, reason: "slot_taken" });
    const calls = (await harness.service.store.calls.events(phone.callSid)).filter(
      (event) => event.kind === "function_call",
    );
    expect(calls.map((event) => event.data)).toMatchObject([
      { name: "check_slots", ok: true },
      { name: "book", ok: true, arguments: { slot_id: 1, name: "Jamie Fox" } },
      { name: "book", ok: true },
    ]);
  });

  test("bad function arguments come back as a sentence, the call goes on", async () => {
    const phone = await harness.call();
    const agent = await harness.agent.nextSession();
    const content = await agent.callFunction("book", { slot_id: "first", name: "" });
    expect(content).toContain("arguments for book were invalid");
    expect(phone.isClosed).toBe(false);
  });

  test("end_call hangs up after the goodbye has been heard", async () => {
    const phone = await harness.call();
    const agent = await harness.agent.nextSession();
    await agent.callFunction("end_call", { reason: "caller is done" });
    agent.say("Goodbye!", 300);
    await phone.closed;
    expect(phone.heardBytes).toBe(phone.receivedAudio().length);
    await agent.whenClosed;
    expect((await harness.service.store.calls.get(phone.callSid))?.end_reason).toBe(
      "agent_ended_call",
    );
  });

  test("the caller hanging up closes the agent and finalises the record", async () => {
    const phone = await harness.call();
    const agent = await harness.agent.nextSession();
    phone.hangUp();
    await agent.whenClosed;
    const record = await harness.service.store.calls.get(phone.callSid);
    expect(record?.end_reason).toBe("caller_hung_up");
    expect(record?.ended_at).not.toBeNull();
    expect(harness.service.calls.size).toBe(0);
  });

  test("malformed and unknown Twilio frames leave the call running", async () => {
    const phone = await harness.call();
    const agent = await harness.agent.nextSession();
    // Live first: caller audio before the agent is ready is dropped on purpose.
    await phone.waitFor(() => phone.heardBytes > 0, "the greeting");
    phone.sendRaw("{not json");
    phone.sendRaw("plain text");
    phone.sendJson({
      event: "media",
      streamSid: phone.streamSid,
      media: { payload: "***not base64***" },
    });
    phone.sendJson({ event: "teleport", streamSid: phone.streamSid });
    phone.sendJson({
      event: "media",
      streamSid: phone.streamSid,
      media: { payload: "A".repeat(40_000) },
    });
    phone.sendRaw(new Uint8Array([1, 2, 3]));
    phone.sendDtmf("5");
    phone.sendMedia(mulawTone(20));
    await agent.waitFor(() => agent.audioBytes === 160, "the good frame");
    expect(phone.isClosed).toBe(false);
    expect(harness.service.calls.size).toBe(1);
    expect(
      harness.logs.filter((line) => line.msg === "ignored malformed or unknown message"),
    ).toHaveLength(1);
  });
});

describe("silence", () => {
  test("prompt after the greeting has been heard, then goodbye, then hang-up after playback", async () => {
    harness = await startBridgeHarness({ SILENCE_PROMPT_MS: "150", SILENCE_HANGUP_MS: "150" });
    const phone = await harness.call();
    const agent = await harness.agent.nextSession();
    await agent.waitFor(
      () => agent.ofType("InjectAgentMessage").length === 1,
      "still-there prompt",
    );
    expect(agent.ofType("InjectAgentMessage")[0]?.message).toBe(PHRASES.stillThere);
    expect(phone.heardBytes).toBe(GREETING_BYTES);
    await agent.waitFor(() => agent.ofType("InjectAgentMessage").length === 2, "goodbye", 3_000);
    expect(agent.ofType("InjectAgentMessage")[1]?.message).toBe(PHRASES.silenceGoodbye);
    await phone.closed;
    expect(phone.heardBytes).toBe(phone.receivedAudio().length);
    expect((await harness.service.store.calls.get(phone.callSid))?.end_reason).toBe("silence");
  });

  test("keeps the agent socket alive while no audio flows", async () => {
    harness = await startBridgeHarness({ AGENT_KEEPALIVE_MS: "40" });
    await harness.call();
    const agent = await harness.agent.nextSession();
    await agent.waitFor(() => agent.ofType("KeepAlive").length >= 2, "keep-alives");
  });
});

describe("agent failures", () => {
  beforeEach(async () => {
    harness = await startBridgeHarness();
  });

  test("an agent Error mid-call: the apology is heard, then hang-up, reason stored", async () => {
    const phone = await harness.call();
    const agent = await harness.agent.nextSession();
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, "greeting heard");
    agent.error("INTERNAL_SERVER_ERROR", "the LLM is down");
    const { code } = await phone.closed;
    expect(code).toBe(1000);
    expect(phone.heardBytes).toBe(phone.receivedAudio().length);
    expect(phone.receivedAudio().length).toBeGreaterThan(GREETING_BYTES + 8_000);
    const record = await harness.service.store.calls.get(phone.callSid);
    expect(record?.end_reason).toBe("agent_error");
    const errors = (await harness.service.store.calls.events(phone.callSid)).filter(
      (event) => event.kind === "error",
    );
    expect(errors[0]?.data).toMatchObject({
      source: "agent",
      message: expect.stringContaining("the LLM is down"),
    });
  });

  test("the agent socket dropping mid-call twice is handled the same way (once is resumed)", async () => {
    const phone = await harness.call();
    const agent = await harness.agent.nextSession();
    agent.drop();
    (await harness.agent.nextSession()).drop();
    await phone.closed;
    expect(phone.clears).toBe(1);
    expect((await harness.service.store.calls.get(phone.callSid))?.end_reason).toBe("agent_error");
  });
});

describe("isolation", () => {
  test("faults in three calls leave a fourth, concurrent call untouched", async () => {
    harness = await startBridgeHarness();
    const pairs = [];
    for (let i = 0; i < 4; i++) {
      const phone = await harness.call({ customParameters: { from: `+1555000000${i}` } });
      pairs.push({ phone, agent: await harness.agent.nextSession() });
    }
    const [erroring, dropping, garbling, healthy] = pairs as [
      (typeof pairs)[number],
      (typeof pairs)[number],
      (typeof pairs)[number],
      (typeof pairs)[number],
    ];
    await healthy.phone.waitFor(() => healthy.phone.heardBytes === GREETING_BYTES, "greeting");

    erroring.agent.error("INTERNAL_SERVER_ERROR", "the LLM is down");
    dropping.agent.drop();
    (await harness.agent.nextSession()).drop(); // the resumed socket drops too
    garbling.phone.sendRaw("{not json");
    garbling.phone.sendRaw(new Uint8Array([1, 2, 3]));
    garbling.phone.sendJson({
      event: "media",
      streamSid: garbling.phone.streamSid,
      media: { payload: "A".repeat(40_000) },
    });
    garbling.phone.hangUp();
    await Promise.all([erroring.phone.closed, dropping.phone.closed, garbling.phone.closed]);

    const audio = mulawTone(200, 300);
    await healthy.phone.streamAudio(audio, { realtime: false });
    await healthy.agent.waitFor(
      () => healthy.agent.audioBytes === audio.length,
      "caller audio after the faults",
    );
    healthy.agent.say("Still here.", 100);
    await healthy.phone.waitFor(
      () => healthy.phone.heardBytes === GREETING_BYTES + 800,
      "agent audio after the faults",
    );
    expect(healthy.phone.isClosed).toBe(false);
    expect(harness.service.calls.size).toBe(1);
    const endOf = async (phone: { callSid: string }) =>
      (await harness.service.store.calls.get(phone.callSid))?.end_reason;
    expect(await endOf(healthy.phone)).toBeNull();
    expect(
      await Promise.all([erroring, dropping, garbling].map(({ phone }) => endOf(phone))),
    ).toEqual(["agent_error", "agent_error", "caller_hung_up"]);
  });

  test("a scenario that throws while setting a call up: that stream closes 1011, the next call works", async () => {
    const broken: Scenario = {
      ...testScenario,
      id: "broken",
      prepare: () => {
        throw new Error("scenario bug");
      },
    };
    harness = await startBridgeHarness({}, {}, [broken]);
    const failing = await harness.call({ customParameters: { scenario: "broken" } });
    expect(await failing.closed).toMatchObject({ code: 1011 });
    const record = await harness.service.store.calls.get(failing.callSid);
    expect(record?.end_reason).toBe("internal_error");
    expect(
      (await harness.service.store.calls.events(failing.callSid)).find(
        (event) => event.kind === "error",
      )?.data,
    ).toEqual({ source: "internal", message: "scenario bug" });
    expect(harness.logs.some((line) => line.msg === "could not set up the call")).toBe(true);

    const phone = await harness.call();
    await harness.agent.nextSession();
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, "greeting of the next call");
    expect(harness.service.calls.size).toBe(1);
  });
});

describe("stream authentication", () => {
  beforeEach(async () => {
    harness = await startBridgeHarness();
  });

  test("a stream without a token is closed with no agent connection", async () => {
    const phone = await harness.call({ customParameters: { token: "" } });
    const { code } = await phone.closed;
    expect(code).toBe(1008);
    expect(harness.agent.sessions).toHaveLength(0);
    expect(harness.service.bridge.refusedStreams).toBe(1);
  });

  test("a forged token is refused, and a used token cannot open a second stream", async () => {
    const forged = await harness.call({
      customParameters: { token: "Zm9yZ2VkLXRva2VuLXRoYXQtaXMtbG9uZw" },
    });
    expect((await forged.closed).code).toBe(1008);
    const phone = await harness.call();
    await harness.agent.nextSession();
    const replay = await harness.call({ callSid: phone.callSid });
    expect((await replay.closed).code).toBe(1008);
    expect(harness.agent.sessions).toHaveLength(1);
  });
});

describe("agent credentials", () => {
  test("a wrong Deepgram key: the caller hears the apology and the reason is stored", async () => {
    harness = await startBridgeHarness({ DEEPGRAM_API_KEY: "wrong-key" });
    const phone = await harness.call();
    await phone.closed;
    expect(harness.agent.rejectedUpgrades).toBe(1);
    expect(phone.heardBytes).toBeGreaterThan(8_000);
    expect((await harness.service.store.calls.get(phone.callSid))?.end_reason).toBe(
      "agent_unavailable",
    );
  });
});

describe("development streams", () => {
  test("with ALLOW_DEV_STREAMS a token-less stream is bridged, but never twice for one live call", async () => {
    harness = await startBridgeHarness({ ALLOW_DEV_STREAMS: "true" });
    const first = await harness.call({ customParameters: { token: "" } });
    await harness.agent.nextSession();
    const second = await harness.call({ callSid: first.callSid, customParameters: { token: "" } });
    expect((await second.closed).code).toBe(1008);
    expect(first.isClosed).toBe(false);
    expect(harness.agent.sessions).toHaveLength(1);
    expect(harness.logs.find((line) => line.msg === "media stream refused")).toMatchObject({
      reason: "a stream for this call is already live",
    });
  });
});
