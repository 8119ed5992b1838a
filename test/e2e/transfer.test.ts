/**
 * Transfers to a person end to end over real sockets: the fake Twilio rings the service (signed
 * webhook, media stream), the fake agent asks for `transfer_call`, the service redirects the live
 * call through the twilio SDK to the fake's REST API, which stops the stream as Twilio does; the
 * test then plays the dial: the whisper for the person, and the `<Dial action>` result, answered or
 * not (then the caller is back with the agent on a new stream).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { TRANSFER_UNANSWERED } from "../../src/call/bridge.ts";
import { PHRASES } from "../../src/call/session.ts";
import { isoWeekday, localDate } from "../../src/scenarios/shared/time.ts";
import type { CallEvent } from "../../src/store/calls.ts";
import type { FakeTwilioCall } from "../fakes/twilio-media-client.ts";
import { FakeTwilioRest } from "../fakes/twilio-rest-server.ts";
import { readTwiml } from "../fakes/twilio-webhooks.ts";
import type { FakeAgentSession } from "../fakes/voice-agent-server.ts";
import { eventually } from "../helpers/eventually.ts";
import { json } from "../helpers/http.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  CALLER,
  OFFICE_NUMBER,
  type SignedService,
  startSignedService,
} from "../helpers/signed-service.ts";

const PERSON = "+15551230000";
const SUMMARY = "Jamie Fox wants to move a root canal. They asked for a person.";

let running: SignedService;
let twilio: FakeTwilioRest;

async function start(env: Record<string, string> = {}) {
  twilio = FakeTwilioRest.start(ACCOUNT_SID, AUTH_TOKEN);
  running = await startSignedService({
    TWILIO_API_URL: twilio.url,
    TRANSFER_NUMBER: PERSON,
    ...env,
  });
}

afterEach(async () => {
  await running.stop();
  twilio.stop();
});

/** A caller rings the office; resolves once the greeting has been heard. */
async function ring(): Promise<{ sid: string; phone: FakeTwilioCall; agent: FakeAgentSession }> {
  const { stream } = await twilio.ring({
    voiceUrl: `${running.publicUrl}/incoming-call`,
    from: CALLER,
    to: OFFICE_NUMBER,
  });
  if (!stream) throw new Error("no stream opened");
  const agent = await running.agent.nextSession();
  await stream.waitFor(() => stream.heardBytes >= 100 * 8, "greeting heard");
  return { sid: stream.callSid, phone: stream, agent };
}

/** The agent asks for the transfer; resolves once the fake Twilio was told to dial. */
async function transfer(sid: string, agent: FakeAgentSession): Promise<string> {
  const answer = await agent.callFunction("transfer_call", {
    reason: "wants a person",
    summary: SUMMARY,
  });
  await twilio.waitForRequest(
    (request) => request.path.endsWith(`/Calls/${sid}.json`) && "Twiml" in request.form,
    "the redirect",
  );
  return answer;
}

/** The functions the agent was given in its settings. */
const offered = (agent: FakeAgentSession) =>
  (
    agent.settings as { agent: { think: { functions: { name: string }[] } } } | undefined
  )?.agent.think.functions.map((fn) => fn.name) ?? [];

const record = async (sid: string) => json(await running.authed(`/calls/${sid}`));
const transferStages = (timeline: CallEvent[]) =>
  timeline
    .filter((event) => event.kind === "transfer")
    .map((event) => (event.data as { stage: string }).stage);

describe("transfer_call", () => {
  test("answered: handoff line heard, then the dial; the person hears the briefing; the record ends transferred", async () => {
    await start();
    const { sid, phone, agent } = await ring();
    expect(offered(agent)).toContain("transfer_call");
    agent.userSays("Can I talk to a real person?");
    const answer = await transfer(sid, agent);
    expect(answer).toContain("being transferred");
    // The service said the handoff line and redirected only once the phone had played it.
    const injected = agent.ofType("InjectAgentMessage").map((message) => message.message);
    expect(injected).toContain(PHRASES.handoff);
    expect(phone.echoedMarks.length).toBeGreaterThan(0);

    const dial = twilio.dialOf(sid);
    expect(dial).toEqual({
      to: PERSON,
      callerId: OFFICE_NUMBER,
      timeout: "25",
      action: `${running.publicUrl}/transfer-result`,
      whisper: `${running.publicUrl}/transfer-whisper?call=${sid}`,
    });
    // Twilio stopped the stream; the first leg's agent socket is closed with it.
    await phone.closed;
    await agent.whenClosed;

    const whisper = await twilio.whisper(sid);
    expect(whisper.status).toBe(200);
    expect(readTwiml(await whisper.text()).say).toEqual([
      `A caller is being transferred to you by the AI assistant. Its summary: ${SUMMARY} Connecting you now.`,
    ]);

    const result = await twilio.dialResult(sid, "completed", { duration: 42 });
    expect(result.response.status).toBe(200);
    expect(readTwiml(result.xml)).toMatchObject({ hangup: true, url: "" });

    const detail = await record(sid);
    expect(detail.call).toMatchObject({
      status: "completed",
      outcome: "transferred",
      end_reason: "transferred",
      transfer: {
        to: PERSON,
        reason: "wants a person",
        summary: SUMMARY,
        result: "answered",
        talk_seconds: 42,
      },
    });
    expect(transferStages(detail.timeline)).toEqual(["dialling", "handed_off", "result"]);
    // A replay of the result is refused and opens nothing.
    expect((await twilio.dialResult(sid, "no-answer")).response.status).toBe(409);
  });

  test("not answered: the caller is back with the agent, which is told so and takes a message", async () => {
    await start();
    const { sid, phone, agent } = await ring();
    agent.userSays("I need to speak with someone about my bill.");
    for (let frame = 0; frame < 3; frame++) phone.sendMedia(new Uint8Array(160).fill(0xff));
    await agent.waitFor(() => agent.audioFrames === 3, "caller frames forwarded");
    await transfer(sid, agent);
    await phone.closed;
    await agent.whenClosed;

    const result = await twilio.dialResult(sid, "no-answer");
    expect(result.response.status).toBe(200);
    const back = result.stream;
    if (!back) throw new Error("no stream back to the agent");
    const resumed = await running.agent.nextSession();
    const settings = resumed.settings?.agent as {
      greeting: string;
      think: { prompt: string; functions: { name: string }[] };
      context?: { messages: { role?: string; content?: string }[] };
    };
    expect(settings.greeting).toBe(TRANSFER_UNANSWERED);
    expect(settings.think.prompt).toContain("it did not connect (no-answer)");
    expect(settings.think.functions.map((fn) => fn.name)).not.toContain("transfer_call");
    expect(settings.context?.messages).toContainEqual(
      expect.objectContaining({
        role: "user",
        content: "I need to speak with someone about my bill.",
      }),
    );
    await back.waitFor(() => back.heardBytes > 0, "the agent is heard again");
    back.sendMedia(new Uint8Array(160).fill(0xff));
    await resumed.waitFor(() => resumed.audioFrames === 1, "caller frame forwarded again");

    const taken = await resumed.callFunction("take_message", {
      caller_name: "Jamie Fox",
      message: "Please call me about my bill.",
    });
    expect(taken).toContain("recorded");
    await resumed.sayGoodbyeAndEnd("words first", 100);
    await back.closed;

    const detail = await record(sid);
    expect(detail.call).toMatchObject({
      status: "completed",
      outcome: "message_taken",
      end_reason: "agent_ended_call",
      transfer: { to: PERSON, result: "no-answer" },
      message: { caller_name: "Jamie Fox", callback_number: CALLER },
    });
    // Both streams' frames are counted.
    expect(detail.call.caller_audio.forwarded).toBe(4);
    expect(transferStages(detail.timeline)).toEqual(["dialling", "handed_off", "result"]);
  });

  test("the caller hangs up while it rings: no stream back, the record ends", async () => {
    await start();
    const { sid, phone, agent } = await ring();
    await transfer(sid, agent);
    await phone.closed;
    const result = await twilio.dialResult(sid, "canceled", { callStatus: "completed" });
    expect(readTwiml(result.xml)).toMatchObject({ hangup: true, url: "" });
    expect(result.stream).toBeUndefined();
    expect((await record(sid)).call).toMatchObject({
      status: "completed",
      end_reason: "caller_hung_up",
      transfer: { result: "canceled" },
    });
  });

  test("Twilio's final status before the dial's result: the record still ends as transferred", async () => {
    await start();
    const { sid, phone, agent } = await ring();
    await transfer(sid, agent);
    await phone.closed;
    const status = await running.signed("/call-status", { CallSid: sid, CallStatus: "completed" });
    expect(status.status).toBe(204);
    await twilio.dialResult(sid, "completed", { duration: 7, callStatus: "completed" });
    expect((await record(sid)).call).toMatchObject({
      outcome: "transferred",
      end_reason: "transferred",
      transfer: { result: "answered", talk_seconds: 7 },
    });
  });

  test("the caller gone when Twilio refuses the redirect: the record ends, not held again", async () => {
    await start();
    const { sid, phone, agent } = await ring();
    twilio.failNextRedirect = { status: 400, code: 21220, message: "Call is not in-progress." };
    // The caller hangs up just as the handoff line has been heard.
    const heard = phone.waitFor(() => phone.echoedMarks.length > 2, "handoff heard");
    void agent.callFunction("transfer_call", { reason: "wants a person", summary: SUMMARY });
    await heard;
    phone.hangUp();
    await eventually(async () => (await record(sid)).call.ended_at !== null, "the record ended");
    expect((await record(sid)).call.end_reason).toBe("caller_hung_up");
  });

  test("keypad 0 asks the agent to transfer", async () => {
    await start();
    const { sid, phone, agent } = await ring();
    phone.sendDtmf("0");
    await agent.waitFor(() => agent.ofType("InjectUserMessage").length === 1, "the key passed on");
    expect(agent.ofType("InjectUserMessage")[0]?.content).toBe(
      "The caller pressed 0 on the keypad to speak with a person: transfer the call.",
    );
    await transfer(sid, agent);
    await phone.closed;
    expect(twilio.dialOf(sid).to).toBe(PERSON);
  });

  test("outside TRANSFER_HOURS: no one is available, no dial, the call goes on", async () => {
    const tomorrow = (isoWeekday(localDate(new Date(), "America/New_York")) % 7) + 1;
    const day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][tomorrow - 1];
    await start({ TRANSFER_HOURS: `dental-receptionist=${day} 08:00-17:00` });
    const { phone, agent } = await ring();
    const answer = await agent.callFunction("transfer_call", {
      reason: "wants a person",
      summary: SUMMARY,
    });
    expect(answer).toStartWith(
      `No one is available to take the call right now (the team answers ${day} 08:00-17:00, America/New_York time).`,
    );
    expect(answer).toContain("take_message");
    expect(twilio.requests.filter((request) => "Twiml" in request.form)).toEqual([]);
    expect(phone.isClosed).toBe(false);
  });

  test("TRANSFER_NUMBERS picks the scenario's own target", async () => {
    await start({ TRANSFER_NUMBERS: "dental-receptionist=+15559998888" });
    const { sid, agent } = await ring();
    await transfer(sid, agent);
    expect(twilio.dialOf(sid).to).toBe("+15559998888");
  });

  test("no target configured: the tool is not offered and the key is an ordinary key", async () => {
    await start({ TRANSFER_NUMBER: "" });
    const { phone, agent } = await ring();
    expect(offered(agent)).not.toContain("transfer_call");
    phone.sendDtmf("0");
    await agent.waitFor(() => agent.ofType("InjectUserMessage").length === 1, "the key passed on");
    expect(agent.ofType("InjectUserMessage")[0]?.content).toBe(
      "The caller pressed 0 on the keypad.",
    );
  });

  test("Twilio refuses the redirect: the agent says so and offers a message; the call goes on", async () => {
    await start();
    twilio.failNextRedirect = { status: 400, code: 21220, message: "Call is not in-progress." };
    const { sid, phone, agent } = await ring();
    await transfer(sid, agent);
    await agent.waitFor(
      () =>
        agent
          .ofType("InjectAgentMessage")
          .some((message) => message.message === PHRASES.transferNotStarted),
      "the agent told to say the transfer did not start",
    );
    expect(phone.isClosed).toBe(false);
    const detail = await record(sid);
    expect(detail.call).toMatchObject({ status: "in-progress", transfer: { result: "failed" } });
    expect(detail.call.owner).not.toBeNull();
    expect(transferStages(detail.timeline)).toEqual(["dialling", "failed"]);
  });
});
