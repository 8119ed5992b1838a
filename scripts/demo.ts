#!/usr/bin/env bun
/**
 * `bun run demo`: the whole outbound flow in seconds, SIMULATED. Starts the real service with the
 * fakes from test/fakes/ standing in for Twilio (REST, callbacks, the phone), Deepgram's Voice Agent
 * (scripted as the insurance follow-up conversation) and Deepgram TTS; places one call that a person
 * answers and one that goes to voicemail, then prints what the service stored.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { startService } from "../src/service.ts";
import { FakeTtsServer } from "../test/fakes/tts-server.ts";
import type { FakeTwilioCall } from "../test/fakes/twilio-media-client.ts";
import { FakeTwilioRest } from "../test/fakes/twilio-rest-server.ts";
import { freePort } from "../test/fakes/twilio-webhooks.ts";
import { type FakeAgentSession, FakeVoiceAgentServer } from "../test/fakes/voice-agent-server.ts";

const ACCOUNT_SID = `AC${"d".repeat(32)}`;
const AUTH_TOKEN = "demo-auth-token";
const SECRET = "demo-endpoint-secret";
const KEY = "demo-deepgram-key";
/** Playback speed of the simulated phone: the demo runs faster than real time. */
const SPEED = 8;

console.log(
  "SIMULATED CALLS: no phone, Twilio or Deepgram is contacted. Local fakes (test/fakes/) play their parts.\n",
);

const dir = mkdtempSync(join(tmpdir(), "voice-agent-demo-"));
const twilio = FakeTwilioRest.start(ACCOUNT_SID, AUTH_TOKEN);
const agentServer = FakeVoiceAgentServer.start({ apiKey: KEY, greetingMs: 1500 });
const tts = FakeTtsServer.start(KEY);
const port = freePort();
const config = loadConfig({
  SERVER_HOST: "127.0.0.1",
  SERVER_PORT: String(port),
  SERVER_EXTERNAL_URL: `http://127.0.0.1:${port}`,
  ENDPOINT_SECRET: SECRET,
  DATABASE_PATH: join(dir, "demo.db"),
  DEEPGRAM_API_KEY: KEY,
  DEEPGRAM_AGENT_URL: agentServer.url,
  DEEPGRAM_API_URL: tts.url,
  TWILIO_ACCOUNT_SID: ACCOUNT_SID,
  TWILIO_AUTH_TOKEN: AUTH_TOKEN,
  TWILIO_PHONE_NUMBER: "+15550001111",
  TWILIO_API_URL: twilio.url,
  HANGUP_SETTLE_MS: "200",
  SHUTDOWN_DRAIN_MS: "100",
});
const service = await startService(config, createLogger({ level: "error" }));
const headers = { authorization: `Bearer ${SECRET}`, "content-type": "application/json" };

async function makeCall(): Promise<string> {
  const response = await fetch(`${service.url}/make-call`, {
    method: "POST",
    headers,
    body: JSON.stringify({ to: "+15551234567" }),
  });
  const placed = (await response.json()) as { call_sid: string; lead_id: string };
  console.log(
    `POST /make-call → ${response.status} call ${placed.call_sid}, demo lead ${placed.lead_id}`,
  );
  return placed.call_sid;
}

const heard = (phone: FakeTwilioCall) =>
  phone.waitFor(
    () => phone.heardBytes + phone.droppedBytes === phone.receivedAudio().length,
    "playback",
    30_000,
  );
const words = (text: string) => text.split(/\s+/).length * 60;

/** The agent says `text`; resolves once the caller has heard all of it. */
async function agentSays(agent: FakeAgentSession, phone: FakeTwilioCall, text: string) {
  const expected = phone.receivedAudio().length + words(text) * 8;
  agent.say(text, words(text));
  await phone.waitFor(() => phone.receivedAudio().length >= expected, "audio");
  await heard(phone);
}

async function callerSays(agent: FakeAgentSession, text: string) {
  agent.userSays(text);
  await Bun.sleep(100);
}

async function printCall(callSid: string) {
  const response = await fetch(`${service.url}/calls/${callSid}`, { headers });
  const { call, timeline } = (await response.json()) as {
    call: Record<string, string | null>;
    timeline: { kind: string; data: Record<string, unknown> }[];
  };
  console.log(`\nGET /calls/${callSid}: the stored timeline`);
  for (const { kind, data } of timeline) {
    if (kind === "transcript")
      console.log(`  ${data.role === "user" ? "caller" : "agent "}: ${data.text}`);
    else if (kind === "function_call")
      console.log(`    ↳ ${data.name}(${JSON.stringify(data.arguments)}) → ${data.result}`);
    else console.log(`  [${kind}] ${JSON.stringify(data)}`);
  }
  console.log(
    `  outcome: ${call.outcome} (${call.outcome_detail}); answered by: ${call.answered_by}; ended: ${call.end_reason}\n`,
  );
}

// Call 1: a person answers.
console.log("== Call 1: a person answers");
const first = await makeCall();
await twilio.sendStatus(first, "ringing");
const phone = await twilio.answer(first, { speed: SPEED });
const agent = await agentServer.nextSession();
await twilio.sendAmd(first, "human");
await phone.waitFor(() => phone.receivedAudio().length > 0, "greeting");
await heard(phone);
await callerSays(agent, "Yes, this is Alex.");
await agentSays(
  agent,
  phone,
  "Great, thanks Alex. I have your quote request for 742 Evergreen Terrace, with coverage from April 15. Is that still right?",
);
await callerSays(agent, "Yes, that's right.");
await agentSays(
  agent,
  phone,
  "Two quick questions for the agent: about how old is the roof, and any insurance claims in the last five years?",
);
await callerSays(agent, "The roof is about twelve years old, and no claims.");
await agentSays(
  agent,
  phone,
  "Thank you. Would you like a short call with a licensed agent to go over your quote?",
);
await callerSays(agent, "Sure, a morning works best.");
const open = JSON.parse(await agent.callFunction("check_availability", { part_of_day: "morning" }));
const [slot] = open.available as { slot_id: number; time: string; licensed_agent: string }[];
if (!slot) throw new Error("no consultation slots");
await agentSays(
  agent,
  phone,
  `I can offer ${slot.time} with ${slot.licensed_agent}. Does that work?`,
);
await callerSays(agent, "Perfect.");
const booked = JSON.parse(await agent.callFunction("book_appointment", { slot_id: slot.slot_id }));
await agent.callFunction("update_lead", {
  call_outcome: "completed",
  disposition: "appointment_booked",
  appointment_id: booked.appointment_id,
  verified_info: { property_address: "742 Evergreen Terrace", coverage_start: "2026-04-15" },
  new_info: { roof_age_years: 12, claims_last_5_years: 0 },
  summary: "Verified the request; roof 12 years, no claims; consultation booked.",
});
await agent.callFunction("end_call", { reason: "appointment booked" });
agent.say(`You're all set for ${booked.time}. Thanks Alex, have a great day. Goodbye!`, 900);
await phone.closed;
await twilio.sendStatus(first, "completed", { CallDuration: "94" });
await printCall(first);

// Call 2: an answering machine.
console.log("== Call 2: an answering machine picks up");
const second = await makeCall();
const machine = await twilio.answer(second, { speed: SPEED });
await agentServer.nextSession();
await twilio.sendAmd(second, "machine_end_beep");
await machine.closed;
await twilio.sendStatus(second, "completed", { CallDuration: "31" });
console.log(`voicemail spoken (Deepgram TTS, simulated): "${tts.requests.at(-1)?.text}"`);
await printCall(second);

await service.shutdown("demo over");
twilio.stop();
agentServer.stop();
tts.stop();
rmSync(dir, { recursive: true, force: true });
console.log("Done. Everything above was simulated; see README.md to place real calls.");
process.exit(0);
