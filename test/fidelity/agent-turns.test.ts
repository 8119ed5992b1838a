/**
 * Fidelity issue points 1–3 end to end, over real sockets with the fake Voice Agent behaving as the
 * live one does (protocols.md section F): speculative and deferred function calls around a caller's
 * turn, injections while the caller is mid-turn, and LatencyReports in the call's record.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { PHRASES } from "../../src/call/session.ts";
import { mulawTone } from "../fakes/mulaw.ts";
import { TEST_CALENDAR } from "../fakes/test-scenario.ts";
import { type BridgeHarness, startBridgeHarness } from "../helpers/bridge-harness.ts";
import { eventually } from "../helpers/eventually.ts";

let harness: BridgeHarness;
afterEach(() => harness.stop());

const GREETING_BYTES = 400 * 8;

async function liveCall(env: Record<string, string> = {}) {
  harness = await startBridgeHarness(env);
  const phone = await harness.call();
  const agent = await harness.agent.nextSession();
  await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, "the greeting heard");
  return { phone, agent };
}

/** A slot in the test calendar an hour from now. */
async function addSlot(): Promise<number> {
  const start = new Date(Date.now() + 3600_000);
  await harness.service.store.appointments.addSlots([
    {
      calendar: TEST_CALENDAR,
      provider: "Dr Test",
      starts_at: start.toISOString(),
      ends_at: new Date(start.getTime() + 1800_000).toISOString(),
    },
  ]);
  const [slot] = await harness.service.store.appointments.openSlots({
    calendar: TEST_CALENDAR,
    from: new Date().toISOString(),
    to: new Date(Date.now() + 86_400_000).toISOString(),
    limit: 1,
  });
  return slot?.id ?? 0;
}

describe("1. function calls around the caller's turn", () => {
  test("irreversible functions are declared defer_until_eot in the settings, lookups are not", async () => {
    const { agent } = await liveCall();
    const settings = agent.settings as {
      agent: { think: { functions: Record<string, unknown>[] } };
    };
    const functions = settings.agent.think.functions;
    const deferred = Object.fromEntries(functions.map((fn) => [fn.name, fn.defer_until_eot]));
    expect(deferred).toEqual({ check_slots: undefined, book: true, end_call: true });
  });

  test("an end_call guessed while the caller is still talking does not hang up on them", async () => {
    const { phone, agent } = await liveCall();
    agent.userStartedSpeaking();
    agent.callFunction("end_call", { reason: "the caller said goodbye" });
    agent.userStartedSpeaking(); // the caller goes on: "…goodbye to my old dentist, I mean"
    agent.userEndsTurn("Goodbye to my old dentist, I mean. Can I book?");
    agent.say("Of course, let me look.", 200);
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES + 1600, "the agent's reply");
    expect(agent.ofType("FunctionCallResponse")).toEqual([]);
    expect(agent.discardedCalls).toBe(1);
    expect(harness.service.calls.size).toBe(1);
    expect(phone.isClosed).toBe(false);
  });

  test("a booking guessed while the caller is still talking is never written", async () => {
    const { agent } = await liveCall();
    const slotId = await addSlot();
    agent.userStartedSpeaking();
    agent.callFunction("book", { slot_id: slotId, name: "Jamie" });
    agent.userStartedSpeaking(); // "…no, wait, not that one"
    agent.userEndsTurn("No, wait, not that one.");
    agent.say("Which one would you like?", 200);
    await agent.waitFor(() => agent.messages.length > 0 || agent.discardedCalls === 1, "discard");
    expect(agent.discardedCalls).toBe(1);
    expect(await harness.service.store.appointments.slot(slotId)).toBeDefined();
    const open = await harness.service.store.appointments.openSlots({
      calendar: TEST_CALENDAR,
      from: new Date().toISOString(),
      to: new Date(Date.now() + 86_400_000).toISOString(),
      limit: 5,
    });
    expect(open.map((slot) => slot.id)).toContain(slotId);
  });

  test("once the turn is confirmed the held booking runs and is answered", async () => {
    const { agent } = await liveCall();
    const slotId = await addSlot();
    agent.userStartedSpeaking();
    const answer = agent.callFunction("book", { slot_id: slotId, name: "Jamie" });
    agent.userEndsTurn("The ten o'clock, please.");
    expect(JSON.parse(await answer)).toMatchObject({ booked: true });
  });

  test("a lookup cancelled by the caller's next words is on the timeline", async () => {
    const { phone, agent } = await liveCall();
    agent.userStartedSpeaking();
    agent.callFunction("check_slots", {
      from: new Date().toISOString(),
      to: new Date(Date.now() + 86_400_000).toISOString(),
    });
    agent.userStartedSpeaking();
    agent.userEndsTurn("Actually, never mind.");
    await eventually(
      async () =>
        (await harness.service.store.calls.events(phone.callSid)).find(
          (event) => event.kind === "function_call_cancelled",
        ),
      "the cancel on the timeline",
    );
    const cancelled = (await harness.service.store.calls.events(phone.callSid)).filter(
      (event) => event.kind === "function_call_cancelled",
    );
    expect(cancelled[0]?.data).toMatchObject({ name: "check_slots" });
  });
});

describe("2. words the call must not end without", () => {
  test("the time limit's goodbye while the caller is mid-turn is queued and heard before the hang-up", async () => {
    const { phone, agent } = await liveCall({ MAX_CALL_DURATION_MS: "600" });
    agent.userStartedSpeaking();
    await agent.waitFor(() => agent.ofType("InjectAgentMessage").length === 1, "the goodbye");
    expect(agent.ofType("InjectAgentMessage")[0]).toMatchObject({
      message: PHRASES.timeLimit,
      behavior: "queue",
    });
    expect(agent.ofType("InjectionRefused")).toEqual([]);
    agent.userEndsTurn("…and that's all.");
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES + 300 * 8, "the goodbye heard");
    await phone.closed;
    const record = await eventually(
      async () => (await harness.service.store.calls.get(phone.callSid))?.ended_at && phone.callSid,
      "the end recorded",
    );
    expect((await harness.service.store.calls.get(record))?.end_reason).toBe("max_duration");
  });

  test("'Are you still there?' is only a suggestion: refused while the caller talks, nothing more happens", async () => {
    const { phone, agent } = await liveCall({
      SILENCE_PROMPT_MS: "100",
      SILENCE_HANGUP_MS: "60000",
    });
    await agent.waitFor(() => agent.ofType("InjectAgentMessage").length === 1, "the prompt");
    expect(agent.ofType("InjectAgentMessage")[0]).toMatchObject({ behavior: "default" });
    expect(phone.isClosed).toBe(false);
  });
});

describe("3. LatencyReport", () => {
  test("each turn's figures are on the timeline and summed up on the call record", async () => {
    const { phone, agent } = await liveCall();
    for (const words of ["I'd like an appointment.", "Tuesday works.", "Thanks!"]) {
      await phone.streamAudio(mulawTone(60), { realtime: false });
      agent.userSays(words);
      agent.say("Sure.", 100);
    }
    await eventually(
      async () =>
        (await harness.service.store.calls.events(phone.callSid)).filter(
          (e) => e.kind === "latency",
        ).length === 3,
      "three latency reports",
    );
    const response = await fetch(`${harness.service.url}/calls/${phone.callSid}`);
    const body = (await response.json()) as {
      latency: { turns: number; p50_ms: number; p95_ms: number };
      timeline: { kind: string; data: Record<string, number> }[];
    };
    expect(body.latency).toEqual({ turns: 3, p50_ms: 580, p95_ms: 580 });
    expect(body.timeline.find((event) => event.kind === "latency")?.data).toEqual({
      total_ms: 580,
      tts_ms: 110,
      ttt_token_ms: 210,
      ttt_text_ms: 320,
    });
    expect(
      harness.logs.filter((line) => line.msg === "ignored malformed or unknown message"),
    ).toEqual([]);
  });
});

describe("live features", () => {
  test("a keypad press on the phone reaches the agent as words, and the agent answers", async () => {
    const { phone, agent } = await liveCall();
    phone.sendDtmf("1");
    await agent.waitFor(() => agent.ofType("InjectUserMessage").length === 1, "the digit");
    expect(agent.ofType("InjectUserMessage")[0]?.content).toBe(
      "The caller pressed 1 on the keypad.",
    );
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES + 200 * 8, "the agent's answer");
    const kinds = (await harness.service.store.calls.events(phone.callSid)).map(
      (event) => event.kind,
    );
    expect(kinds).toContain("dtmf");
  });

  test("Deepgram's request id from Welcome is kept on the call record and its timeline", async () => {
    const { phone } = await liveCall();
    const connected = (await harness.service.store.calls.events(phone.callSid)).find(
      (event) => event.kind === "agent_connected",
    );
    // (Bun 1.4.5's toMatchObject with expect.any writes the matcher into the received object.)
    const requestId = connected?.kind === "agent_connected" ? connected.data.request_id : null;
    expect(typeof requestId).toBe("string");
    expect((await harness.service.store.calls.get(phone.callSid))?.agent_request_id).toBe(
      requestId,
    );
    const record = await (await fetch(`${harness.service.url}/calls/${phone.callSid}`)).json();
    expect((record as { call: { agent_request_id: string | null } }).call.agent_request_id).toBe(
      requestId,
    );
  });
});

describe("an agent socket that drops mid-call", () => {
  test("is replaced once, resuming the conversation so far; a second drop gets the apology", async () => {
    const { phone, agent } = await liveCall();
    agent.userSays("Do you have anything on Tuesday?");
    await agent.callFunction("check_slots", {
      from: new Date().toISOString(),
      to: new Date(Date.now() + 86_400_000).toISOString(),
    });
    agent.say("Let me see.", 100);
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES + 800, "the agent's words");
    agent.drop();

    const resumed = await harness.agent.nextSession();
    const settings = resumed.settings as {
      agent: { greeting?: string; context?: { messages: Record<string, unknown>[] } };
    };
    expect(settings.agent.greeting).toBeUndefined();
    const messages = settings.agent.context?.messages ?? [];
    expect(messages).toContainEqual({
      type: "History",
      role: "user",
      content: "Do you have anything on Tuesday?",
    });
    expect(messages).toContainEqual({ type: "History", role: "assistant", content: "Let me see." });
    expect(
      messages.find((item) => Array.isArray(item.function_calls))?.function_calls,
    ).toMatchObject([{ name: "check_slots", client_side: true }]);

    resumed.say("Tuesday at ten is open.", 100);
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES + 1600, "the resumed agent");
    expect(phone.isClosed).toBe(false);
    const kinds = async () =>
      (await harness.service.store.calls.events(phone.callSid)).map((e) => e.kind);
    expect(await kinds()).toContain("agent_reconnected");
    expect(await kinds()).not.toContain("error");

    resumed.drop();
    await phone.closed;
    const record = await eventually(
      async () => (await harness.service.store.calls.get(phone.callSid))?.end_reason,
      "the end recorded",
    );
    expect(record).toBe("agent_error");
  });
});

test("before the time limit the agent gets its whole think settings back with the wrap-up added", async () => {
  const { agent } = await liveCall({ MAX_CALL_DURATION_MS: "2000" });
  await agent.waitFor(() => agent.ofType("UpdateThink").length === 1, "the wrap-up", 3_000);
  const original = (agent.settings as { agent: { think: Record<string, unknown> } }).agent.think;
  const think = agent.ofType("UpdateThink")[0]?.think as Record<string, unknown>;
  expect(think.provider).toEqual(original.provider);
  expect(think.functions).toEqual(original.functions);
  expect(String(think.prompt)).toBe(`${original.prompt}\n\n${PHRASES.wrapUp}`);
});
