/** Inbound calls end to end: signed Twilio webhook → TwiML → media stream → dental receptionist → SQLite. */
import { afterEach, describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { BUSY_MESSAGE } from "../../src/routes/twilio-webhooks.ts";
import type { Service } from "../../src/service.ts";
import { freePort, openStream, postSigned, readTwiml } from "../fakes/twilio-webhooks.ts";
import { FakeVoiceAgentServer } from "../fakes/voice-agent-server.ts";
import { json } from "../helpers/http.ts";
import {
  AUTH_TOKEN,
  CALLER,
  OFFICE_NUMBER,
  SECRET,
  signedServiceEnv,
} from "../helpers/signed-service.ts";
import { startTestService } from "../helpers/test-service.ts";

let service: Service;
let agent: FakeVoiceAgentServer;
let publicUrl: string;

async function start(env: Record<string, string> = {}) {
  agent = FakeVoiceAgentServer.start({ apiKey: "dg-key", greetingMs: 200 });
  const port = freePort();
  publicUrl = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    ...signedServiceEnv(port, agent.url),
    DATABASE_PATH: ":memory:",
    INBOUND_DISCLOSURE: "This call may be recorded.",
    HANGUP_SETTLE_MS: "30",
    SHUTDOWN_DRAIN_MS: "50",
    ...env,
  });
  service = await startTestService(config, createLogger({ level: "error", write: () => {} }));
}

const incoming = (callSid: string, overrides: Partial<Parameters<typeof postSigned>[0]> = {}) =>
  postSigned({
    serverUrl: service.url,
    publicUrl,
    path: "/incoming-call",
    params: {
      CallSid: callSid,
      AccountSid: `AC${"1".repeat(32)}`,
      From: CALLER,
      To: OFFICE_NUMBER,
      CallStatus: "ringing",
    },
    authToken: AUTH_TOKEN,
    ...overrides,
  });

describe("POST /incoming-call", () => {
  afterEach(async () => {
    await service.shutdown("test over");
    agent.stop();
  });

  test("a signed webhook opens a session in which the receptionist books, finds and cancels", async () => {
    await start();
    const response = await incoming("CA100");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toStartWith("text/xml");
    const xml = await response.text();
    const instruction = readTwiml(xml);
    expect(instruction.say).toEqual(["This call may be recorded."]);
    expect(instruction.url).toBe(`${publicUrl.replace("http", "ws")}/twilio`);
    // Twilio reports the stream's life (and a stream it could not open) to /stream-status.
    expect(instruction.stream).toMatchObject({
      statusCallback: `${publicUrl}/stream-status`,
      statusCallbackMethod: "POST",
    });
    // Only the token: scenario, direction and numbers are what the service granted, not parameters.
    expect(Object.keys(instruction.parameters)).toEqual(["token"]);
    expect(instruction.parameters.token?.length).toBeGreaterThan(20);

    const phone = await openStream(xml, "CA100");
    const session = await agent.nextSession();
    expect(session.settings).toMatchObject({ tags: ["inbound", "dental-receptionist"] });
    expect(JSON.stringify(session.settings)).toContain(`The caller's number is ${CALLER}`);
    await phone.waitFor(() => phone.heardBytes === 200 * 8, "greeting heard");
    for (let frame = 0; frame < 5; frame += 1) phone.sendMedia(new Uint8Array(160).fill(0xff));
    await session.waitFor(() => session.audioFrames === 5, "the caller's frames reach the agent");

    const open = JSON.parse(await session.callFunction("check_available_slots", {}));
    const slot = open.available[0];
    const booked = JSON.parse(
      await session.callFunction("book_appointment", {
        slot_id: slot.slot_id,
        patient_name: "Jamie Fox",
        reason: "cleaning",
      }),
    );
    expect(booked).toMatchObject({ booked: true, time: slot.time });
    const found = JSON.parse(await session.callFunction("check_appointment", {}));
    expect(found.appointments.map((a: { confirmation_id: string }) => a.confirmation_id)).toEqual([
      booked.confirmation_id,
    ]);
    const cancelled = JSON.parse(
      await session.callFunction("cancel_appointment", { confirmation_id: booked.confirmation_id }),
    );
    expect(cancelled.cancelled).toBe(true);
    expect(await service.store.appointments.booking(booked.confirmation_id)).toMatchObject({
      status: "cancelled",
      phone: CALLER,
      call_sid: "CA100",
    });

    await session.callFunction("end_call", { reason: "done" });
    session.say("Goodbye!", 100);
    await phone.closed;

    const detail = await json(
      await fetch(`${service.url}/calls/CA100`, { headers: { authorization: `Bearer ${SECRET}` } }),
    );
    expect(detail.call).toMatchObject({
      direction: "inbound",
      from_number: CALLER,
      scenario: "dental-receptionist",
      end_reason: "agent_ended_call",
      // Booked, then cancelled: the receptionist's last disposition stands.
      outcome: "appointment_cancelled",
      // Sent after the agent was ready, every frame was forwarded; none held back.
      caller_audio: {
        received: 5,
        forwarded: 5,
        held_back: { before_agent_ready: 0, awaiting_verdict: 0, agent_reconnecting: 0, ending: 0 },
      },
    });
    const functions = detail.timeline.filter(
      (event: { kind: string }) => event.kind === "function_call",
    );
    expect(functions.map((event: { data: { name: string } }) => event.data.name)).toEqual([
      "check_available_slots",
      "book_appointment",
      "check_appointment",
      "cancel_appointment",
      "end_call",
    ]);
  });

  test("unsigned, wrongly signed, or signed for another URL: 403 and nothing recorded", async () => {
    await start();
    const unsigned = await incoming("CA201", { signature: null });
    expect(unsigned.status).toBe(403);
    expect(await json(unsigned)).toEqual({
      error: "Missing X-Twilio-Signature",
      code: "INVALID_SIGNATURE",
    });
    expect((await incoming("CA202", { signature: "bm90LXRoZS1zaWduYXR1cmU=" })).status).toBe(403);
    expect((await incoming("CA203", { publicUrl: "https://attacker.example" })).status).toBe(403);
    expect((await incoming("CA204", { authToken: "another-token" })).status).toBe(403);
    for (const sid of ["CA201", "CA202", "CA203", "CA204"])
      expect(await service.store.calls.get(sid)).toBeUndefined();
    expect(await service.coordination.load()).toBe(0);
  });

  test("a signed request with a bad field is 400 naming it", async () => {
    await start();
    const response = await incoming("not-a-call-sid");
    expect(response.status).toBe(400);
    expect((await json(response)).error).toStartWith("body.CallSid:");
  });

  test("over the concurrency limit: a polite busy message and a hang-up", async () => {
    await start({ MAX_CONCURRENT_CALLS: "1" });
    expect(readTwiml(await (await incoming("CA301")).text()).url).not.toBe("");
    const busy = readTwiml(await (await incoming("CA302")).text());
    expect(busy).toMatchObject({ url: "", say: [BUSY_MESSAGE], hangup: true });
    expect(await service.store.calls.get("CA302")).toMatchObject({
      outcome: "busy",
      outcome_detail: "turned away: every line is in use",
      end_reason: "over_capacity",
    });
  });

  test("numbers not in INBOUND_SCENARIOS get the default scenario", async () => {
    await start({ INBOUND_SCENARIOS: "+15559990000=dental-receptionist" });
    const xml = await (await incoming("CA401")).text();
    expect((await service.store.calls.get("CA401"))?.scenario).toBe("dental-receptionist");
    await openStream(xml, "CA401");
    const session = await agent.nextSession();
    expect(session.settings).toMatchObject({ tags: ["inbound", "dental-receptionist"] });
  });

  test("with Twilio not configured: 503 naming what to set", async () => {
    await start({ TWILIO_AUTH_TOKEN: "" });
    const response = await incoming("CA501");
    expect(response.status).toBe(503);
    expect((await json(response)).error).toBe("Twilio is not configured: set TWILIO_AUTH_TOKEN");
  });
});

test("a scenario named in the configuration must exist", async () => {
  const config = loadConfig({
    DATABASE_PATH: ":memory:",
    SERVER_PORT: "0",
    INBOUND_SCENARIOS: "+15550001111=pizza-shop",
  });
  await expect(
    startTestService(config, createLogger({ level: "error", write: () => {} })),
  ).rejects.toThrow(
    "INBOUND_SCENARIOS: +15550001111 names unknown scenario pizza-shop (known: dental-receptionist, insurance-followup)",
  );
});
