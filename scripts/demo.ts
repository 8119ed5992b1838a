#!/usr/bin/env bun
/**
 * `bun run demo`: the whole outbound flow in seconds, SIMULATED. Starts the real service with the
 * fakes from test/fakes/ standing in for Twilio (REST, callbacks, the phone), Deepgram's Voice Agent
 * (scripted as the insurance follow-up conversation) and Deepgram TTS; places one call that a person
 * answers and one that goes to voicemail, then prints what the service stored.
 */
import { CallSession } from "../src/call/session.ts";
import type { FakeTwilioCall } from "../test/fakes/twilio-media-client.ts";
import type { FakeAgentSession } from "../test/fakes/voice-agent-server.ts";
import { startOutboundHarness } from "../test/helpers/outbound-harness.ts";

/** Playback speed of the simulated phone: the demo runs faster than real time. */
const SPEED = 8;

console.log(
  "SIMULATED CALLS: no phone, Twilio or Deepgram is contacted. Local fakes (test/fakes/) play their parts.\n",
);

const world = await startOutboundHarness({ HANGUP_SETTLE_MS: "200" }, { greetingMs: 1500 });
const { twilio, tts, agent: agentServer } = world;

async function makeCall(): Promise<string> {
  const response = await world.makeCall({ to: "+15551234567" });
  const placed = (await response.json()) as { call_sid: string; lead_id: string };
  console.log(
    `POST /make-call → ${response.status} call ${placed.call_sid}, demo lead ${placed.lead_id}`,
  );
  return placed.call_sid;
}

/** The phone has played everything, and the service has seen the marks saying so. */
async function heard(phone: FakeTwilioCall) {
  await phone.waitFor(
    () => phone.heardBytes + phone.droppedBytes === phone.receivedAudio().length,
    "playback",
    30_000,
  );
  // The last mark echo may still be on its way: a caller who spoke now would barge in on nothing.
  const session = world.service.calls.get(phone.callSid);
  while (session instanceof CallSession && session.queuedMs > 0) await Bun.sleep(1);
}
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
  const response = await world.get(`/calls/${callSid}`);
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

await world.stop();
console.log("Done. Everything above was simulated; see README.md to place real calls.");
process.exit(0);
