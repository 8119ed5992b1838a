/**
 * Fuzzed WebSocket streams over real sockets (the real service, the fake Voice Agent): strangers send
 * thousands of random and mutated Twilio frames to `WS /twilio` while a well-behaved call runs, and
 * agents send fuzzed server messages into calls; the service stays up, no stranger is bridged, and
 * the well-behaved calls complete normally.
 */

import { afterEach, expect, test } from "bun:test";
import fc from "fast-check";
import { MAX_WS_MESSAGE_BYTES } from "../../src/app.ts";
import { decodeAgentMessage } from "../../src/protocol/deepgram-agent.ts";
import { decodeTwilio } from "../../src/protocol/twilio-media.ts";
import {
  MAX_PRESTART_MESSAGE_BYTES,
  MAX_PRESTART_MESSAGES,
} from "../../src/routes/media-stream.ts";
import { mulawTone } from "../fakes/mulaw.ts";
import { testScenario } from "../fakes/test-scenario.ts";
import { FakeTwilioCall } from "../fakes/twilio-media-client.ts";
import type { FakeAgentSession } from "../fakes/voice-agent-server.ts";
import { type BridgeHarness, startBridgeHarness } from "../helpers/bridge-harness.ts";
import { grantStream } from "../helpers/test-service.ts";
import { agentText, bigFrame, strangerFrame } from "./arbitraries.ts";

let harness: BridgeHarness;
afterEach(async () => {
  await harness.stop();
});

/** Fixed seeds: the same frames on every run, so a failure can be replayed. */
const SEED = 20_260_301;
const GREETING_BYTES = 400 * 8;
/** Strangers at a time: the service may cap unauthenticated streams per address (about ten). */
const STRANGERS = 5;
const FRAMES_PER_STRANGER = 600;
/** The service's WebSocket message limit: bigger frames close the socket with 1009. */
const MAX_MESSAGE_BYTES = MAX_WS_MESSAGE_BYTES;
/** Close code of a stream refused because too many are waiting for their start. */
const TRY_AGAIN_LATER = 1013;

type Frame = string | Uint8Array;

/** The text the server receives: lone surrogates become U+FFFD on the wire. */
const onTheWire = (frame: string) => Buffer.from(frame, "utf8").toString("utf8");
const sizeOf = (frame: Frame) =>
  typeof frame === "string" ? Buffer.byteLength(frame, "utf8") : frame.byteLength;
/** What the service will make of `frame` before any `start` has been accepted. */
const decodedOnServer = (frame: Frame) =>
  typeof frame === "string" ? decodeTwilio(onTheWire(frame)).event : "ignored";

interface StrangerStats {
  frames: number;
  sockets: number;
  connectFailures: number;
  /** Well-formed `start`s sent (each must be refused). */
  starts: number;
  /** Close code after each of those starts. */
  afterStart: number[];
  /** Close code after each frame over the size limit. */
  afterTooBig: number[];
  /** Close code after each frame over the limits before a start (size or count). */
  afterPrestartLimit: number[];
  /** Every close the server initiated. */
  serverCloses: number[];
}

interface Stranger {
  socket: WebSocket;
  closed: Promise<number>;
  isOpen: boolean;
  isClosed: boolean;
  closingByUs: boolean;
}

async function openStranger(url: string, stats: StrangerStats): Promise<Stranger | undefined> {
  const socket = new WebSocket(url);
  const closed = Promise.withResolvers<number>();
  const stranger: Stranger = {
    socket,
    closed: closed.promise,
    isOpen: false,
    isClosed: false,
    closingByUs: false,
  };
  socket.onclose = (event) => {
    stranger.isClosed = true;
    // A refused upgrade (e.g. 429) is a connect failure, not a close.
    if (stranger.isOpen && !stranger.closingByUs) stats.serverCloses.push(event.code);
    closed.resolve(event.code);
  };
  const opened = await new Promise<boolean>((resolve) => {
    socket.onopen = () => {
      stranger.isOpen = true;
      resolve(true);
    };
    socket.onerror = () => resolve(false);
    closed.promise.then(() => resolve(false));
  });
  if (opened) stats.sockets += 1;
  else stats.connectFailures += 1;
  return opened ? stranger : undefined;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    Bun.sleep(ms).then(() => {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }),
  ]);
}

/**
 * Sends `frames` from one stranger, one socket at a time: a new socket whenever the server closed
 * the last (after every well-formed `start`, which it must refuse, and whenever else it likes). A
 * socket the service closes with 1013 (too many streams waiting to start) took nothing: a `start` or
 * an oversized frame sent on it is sent again on the next socket.
 */
async function runStranger(url: string, frames: Frame[], stats: StrangerStats): Promise<void> {
  let current: Stranger | undefined;
  /** Frames sent on the current socket: a stream may send only a few before its start. */
  let sentOnSocket = 0;
  const socket = async (): Promise<Stranger> => {
    for (let attempt = 0; attempt < 50; attempt++) {
      if (current && !current.isClosed) return current;
      current = await openStranger(url, stats);
      sentOnSocket = 0;
      if (!current) await Bun.sleep(20);
    }
    throw new Error(
      `a stranger could not connect 50 times in a row (a per-address limit on /twilio? ${stats.sockets} sockets so far)`,
    );
  };
  for (const [index, frame] of frames.entries()) {
    const tooBig = sizeOf(frame) > MAX_MESSAGE_BYTES;
    const start = !tooBig && decodedOnServer(frame) === "start";
    for (let attempt = 0; ; attempt++) {
      const stranger = await socket();
      stranger.socket.send(frame);
      stats.frames += 1;
      sentOnSocket += 1;
      const overPrestartLimit =
        !tooBig &&
        (sizeOf(frame) > MAX_PRESTART_MESSAGE_BYTES || sentOnSocket > MAX_PRESTART_MESSAGES);
      if (!tooBig && !start && !overPrestartLimit) break;
      const code = await within(stranger.closed, 3_000, "close after a start or a frame too big");
      if (code === TRY_AGAIN_LATER && attempt < 50) {
        await Bun.sleep(10);
        continue;
      }
      if (tooBig) stats.afterTooBig.push(code);
      else if (overPrestartLimit) stats.afterPrestartLimit.push(code);
      else {
        stats.starts += 1;
        stats.afterStart.push(code);
      }
      break;
    }
    // Let the service keep up rather than queue everything in the socket.
    if (index % 25 === 0) await Bun.sleep(1);
  }
  if (current && !current.isClosed) {
    current.closingByUs = true;
    current.socket.close(1000, "stranger done");
    await within(current.closed, 3_000, "the stranger's own close");
  }
}

/** The fake agent's socket, to send text that is not a well-formed message (test-only access). */
function rawAgentSocket(session: FakeAgentSession): { send(data: string): unknown } {
  return (session as unknown as { socket: { send(data: string): unknown } }).socket;
}

async function health(): Promise<number> {
  return (await fetch(`${harness.service.url}/health`)).status;
}

const errorLogs = () => harness.logs.filter((line) => line.level === "error");

test("thousands of fuzzed frames from strangers: nobody bridged, the concurrent call unaffected", async () => {
  harness = await startBridgeHarness();
  const { service } = harness;

  // A call about to connect: strangers aim wrong tokens at its SID; its own token must survive.
  const pendingSid = `CA${"7".repeat(32)}`;
  const pendingToken = await grantStream(
    service,
    pendingSid,
    { scenario: testScenario.id, direction: "inbound", from: "+15557654321", to: "+15550001111" },
    { answered: true },
  );

  const phone = await harness.call();
  const agent = await harness.agent.nextSession();
  await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, "greeting heard");

  const targets = [phone.callSid, pendingSid];
  const frameLists: Frame[][] = Array.from({ length: STRANGERS }, (_, i) =>
    fc.sample(strangerFrame(targets), { numRuns: FRAMES_PER_STRANGER, seed: SEED + i }),
  );
  // Big frames: under the 64 KiB limit (JSON and not, still over the limit before a start), and over it.
  frameLists[0]?.splice(100, 0, bigFrame(60_000, "media"), bigFrame(64_000, "mark"));
  frameLists[1]?.splice(200, 0, bigFrame(50_000, "garbage"), bigFrame(1_100_000, "media"));
  // Garbage on the good call's own socket: anything that is not media, a mark or a stop.
  const ownGarbage = fc
    .sample(strangerFrame(targets), { numRuns: 2_000, seed: SEED - 1 })
    .filter(
      (frame) =>
        sizeOf(frame) <= MAX_MESSAGE_BYTES &&
        !["media", "mark", "stop", "dtmf"].includes(decodedOnServer(frame)),
    );

  const stats: StrangerStats = {
    frames: 0,
    sockets: 0,
    connectFailures: 0,
    starts: 0,
    afterStart: [],
    afterTooBig: [],
    afterPrestartLimit: [],
    serverCloses: [],
  };
  const refusedBefore = service.bridge.refusedStreams;
  let strangersDone = false;
  const strangers = Promise.all(
    frameLists.map((frames) => runStranger(harness.streamUrl, frames, stats)),
  ).finally(() => {
    strangersDone = true;
  });

  // The good call keeps talking both ways for as long as the strangers keep sending.
  let sent = 0;
  let said = 0;
  let rounds = 0;
  let garbageSent = 0;
  const healthStatuses: number[] = [];
  while ((rounds < 3 || !strangersDone) && rounds < 400) {
    const audio = mulawTone(100, 300 + 40 * (rounds % 10));
    await phone.streamAudio(audio, { realtime: false });
    sent += audio.length;
    await agent.waitFor(() => agent.audioBytes === sent, `caller audio of round ${rounds}`);
    agent.say(`Round ${rounds}.`, 100);
    said += 800;
    await phone.waitFor(
      () => phone.heardBytes === GREETING_BYTES + said,
      `agent audio of round ${rounds}`,
    );
    for (let i = 0; i < 25 && garbageSent < ownGarbage.length; i++) {
      phone.sendRaw(ownGarbage[garbageSent++] as Frame);
    }
    healthStatuses.push(await health());
    rounds += 1;
  }
  await strangers;

  // Strangers: thousands of frames, every start refused, nothing bridged, nothing recorded.
  expect(stats.frames).toBeGreaterThanOrEqual(STRANGERS * FRAMES_PER_STRANGER);
  expect(stats.starts).toBeGreaterThan(50);
  expect(new Set(stats.afterStart)).toEqual(new Set([1008]));
  const tooBig = frameLists.flat().filter((frame) => sizeOf(frame) > MAX_MESSAGE_BYTES).length;
  expect(tooBig).toBeGreaterThan(0);
  expect(stats.afterTooBig).toEqual(Array(tooBig).fill(1009));
  expect(stats.afterPrestartLimit.length).toBeGreaterThan(0);
  expect(new Set(stats.afterPrestartLimit)).toEqual(new Set([1008]));
  expect(stats.serverCloses).not.toContain(1011);
  expect(
    stats.serverCloses.filter((code) => ![1008, 1009, TRY_AGAIN_LATER].includes(code)),
  ).toEqual([]);
  expect(service.bridge.refusedStreams - refusedBefore).toBeGreaterThanOrEqual(stats.starts);
  expect(harness.agent.sessions).toHaveLength(1);
  expect(service.calls.size).toBe(1);
  expect((await service.store.calls.list({ limit: 1_000 })).map((call) => call.sid)).toEqual([
    phone.callSid,
  ]);

  // The good call: every frame it sent reached its agent, and only those; all agent audio heard.
  expect(agent.audioBytes).toBe(sent);
  expect(phone.heardBytes).toBe(GREETING_BYTES + said);
  expect(phone.clears).toBe(0);
  expect(phone.echoedMarks.length).toBeGreaterThan(rounds);
  expect(phone.isClosed).toBe(false);
  phone.hangUp();
  await agent.whenClosed;
  const record = await service.store.calls.get(phone.callSid);
  expect(record?.end_reason).toBe("caller_hung_up");
  expect(record?.ended_at).not.toBeNull();
  const events = await service.store.calls.events(phone.callSid);
  expect(events.filter((event) => event.kind === "error")).toEqual([]);
  expect(events.filter((event) => event.kind === "transcript").length).toBeGreaterThan(rounds);

  // The pending call's token survived every wrong one aimed at its SID.
  const pending = await FakeTwilioCall.connect({
    url: harness.streamUrl,
    speed: 20,
    callSid: pendingSid,
    customParameters: { token: pendingToken, from: "+15557654321", to: "+15550001111" },
  });
  const pendingAgent = await harness.agent.nextSession();
  await pending.waitFor(() => pending.heardBytes === GREETING_BYTES, "pending call's greeting");
  pending.hangUp();
  await pendingAgent.whenClosed;
  expect((await service.store.calls.get(pendingSid))?.end_reason).toBe("caller_hung_up");

  // The service: healthy throughout, nothing logged as an error.
  expect(new Set(healthStatuses)).toEqual(new Set([200]));
  expect(await health()).toBe(200);
  expect(errorLogs()).toEqual([]);
  expect(service.calls.size).toBe(0);
}, 30_000);

test("fuzzed agent messages into two calls: both handle them, a third, concurrent call is untouched", async () => {
  harness = await startBridgeHarness();
  type Pair = { phone: FakeTwilioCall; agent: FakeAgentSession };
  const pairs: Pair[] = [];
  for (let i = 0; i < 3; i++) {
    const phone = await harness.call({ customParameters: { from: `+1555000000${i}` } });
    pairs.push({ phone, agent: await harness.agent.nextSession() });
  }
  const [calm, stormy, chaotic] = pairs as [Pair, Pair, Pair];
  await Promise.all(
    pairs.map(({ phone }) => phone.waitFor(() => phone.heardBytes === GREETING_BYTES, "greeting")),
  );

  const texts = fc.sample(agentText, { numRuns: 3_000, seed: SEED });
  // Messages that act on a call by design (end it, barge in, run tools) go only to the chaotic one.
  const ACTING = new Set(["Error", "UserStartedSpeaking", "AgentAudioDone", "FunctionCallRequest"]);
  const harmless = texts.filter((text) => !ACTING.has(decodeAgentMessage(text).type));
  expect(harmless.length).toBeGreaterThan(1_500);

  const stormySocket = rawAgentSocket(stormy.agent);
  const chaoticSocket = rawAgentSocket(chaotic.agent);
  for (const text of harmless) stormySocket.send(text);
  // The chaotic call gets everything: first all but the fatal Errors (barge-ins, tool calls with odd
  // arguments, audio-done at odd times, …), then the fuzzed Errors, the first of which ends it.
  const fatal = texts.filter((text) => decodeAgentMessage(text).type === "Error");
  for (const text of texts) if (!fatal.includes(text)) chaoticSocket.send(text);

  // Both well-behaved ends still talk: caller audio reaches the agent, agent audio is heard.
  // (On the stormy socket this turn comes after every fuzzed message, so all were handled first.)
  const turn = async ({ phone, agent }: Pair, name: string) => {
    const audio = mulawTone(200, 350);
    await phone.streamAudio(audio, { realtime: false });
    await agent.waitFor(() => agent.audioBytes === audio.length, `${name}: caller audio`);
    agent.say("Still here.", 100);
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES + 800, `${name}: agent audio`);
  };
  await Promise.all([turn(calm, "calm"), turn(stormy, "stormy")]);
  expect(harness.logs.some((line) => line.msg === "ignored malformed or unknown message")).toBe(
    true,
  );

  // The chaotic call handled all that (its tools ran) and still plays agent audio, unless a fuzzed
  // end_call ended it; then its fuzzed Errors end it with the apology.
  const before = chaotic.phone.mediaReceived;
  chaotic.agent.say("Marker.", 100);
  await Promise.race([
    chaotic.phone.closed,
    chaotic.phone.waitFor(() => chaotic.phone.mediaReceived > before, "chaotic call: the marker"),
  ]);
  const chaoticEvents = () => harness.service.store.calls.events(chaotic.phone.callSid);
  expect((await chaoticEvents()).some((event) => event.kind === "function_call")).toBe(true);
  expect(fatal.length).toBeGreaterThan(0);
  for (const text of fatal) if (!chaotic.agent.closed) chaoticSocket.send(text);
  await within(chaotic.phone.closed, 5_000, "the chaotic call to end");
  expect(await health()).toBe(200);

  for (const { phone } of pairs) if (!phone.isClosed) phone.hangUp();
  await Promise.all(pairs.map(({ agent }) => agent.whenClosed));
  const endOf = (phone: FakeTwilioCall) => harness.service.store.calls.get(phone.callSid);
  for (const { phone } of [calm, stormy]) {
    expect((await endOf(phone))?.end_reason).toBe("caller_hung_up");
    expect(
      (await harness.service.store.calls.events(phone.callSid)).filter((e) => e.kind === "error"),
    ).toEqual([]);
  }
  expect(["agent_error", "agent_ended_call"]).toContain(
    (await endOf(chaotic.phone))?.end_reason as string,
  );
  expect(
    (await chaoticEvents()).filter((event) => event.data && "source" in event.data),
  ).not.toContainEqual(
    expect.objectContaining({ data: expect.objectContaining({ source: "internal" }) }),
  );
  expect(errorLogs()).toEqual([]);
  expect(harness.agent.sessions).toHaveLength(3);
  expect(harness.service.calls.size).toBe(0);
}, 30_000);
