#!/usr/bin/env bun
/**
 * Bridge benchmark: N concurrent simulated calls at real-time cadence (one 20 ms frame per call every
 * 20 ms, as Twilio sends, spread over the period as independent calls are) through the real server,
 * in its own process, to the fake Voice Agent, which echoes the audio back so both directions carry
 * traffic (with marks). Prints per-frame added latency (phone send → agent receive) p50/p99, frame
 * loss, server CPU and RSS per call, and barge-in latency under load (agent sends
 * UserStartedSpeaking → phone receives clear; with --capture also on the wire, the server alone).
 * Results go in docs/PERFORMANCE.md.
 *
 *   bun run scripts/bench-bridge.ts --calls 500 --seconds 20 [--binary dist/voice-agent] [--pin]
 *     [--capture] [--barge-ins K] [--cpu-prof DIR]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { mulawTone } from "../test/fakes/mulaw.ts";
import { FakeTwilioCall } from "../test/fakes/twilio-media-client.ts";
import { type FakeAgentSession, FakeVoiceAgentServer } from "../test/fakes/voice-agent-server.ts";
import { NO_DEEPGRAM_REST } from "../test/helpers/context.ts";
import { listeningUrl } from "../test/helpers/listening.ts";
import { captureLoopback, type WireCapture } from "./lib/wire-capture.ts";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "100" },
    seconds: { type: "string", default: "10" },
    binary: { type: "string" },
    /** Barge-ins spread over the run while every call streams, one per call at most. */
    "barge-ins": { type: "string", default: "500" },
    /**
     * The server on CPU 0 and this process (every phone and the agent) on CPU 1, so that the load
     * generator does not take turns with the server on its core (needs `taskset`).
     */
    pin: { type: "boolean", default: false },
    /**
     * Also time each barge-in on the wire with tcpdump: `UserStartedSpeaking` reaching the server's
     * socket → `clear` leaving it, the server's own share without the load generator's (needs root).
     */
    capture: { type: "boolean", default: false },
    /** Write the server's CPU profile (markdown) into this folder; source runs only. */
    "cpu-prof": { type: "string" },
  },
});
const CALLS = Number(values.calls);
const SECONDS = Number(values.seconds);
const FRAME = mulawTone(20, 300);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** User and system CPU time of a process in clock ticks, and its resident set in KiB. */
function usage(pid: number): { userTicks: number; systemTicks: number; rssKiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return { userTicks: Number(fields[11]), systemTicks: Number(fields[12]), rssKiB: Number(rss) };
}
const TICKS_PER_SECOND =
  Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

const agent = FakeVoiceAgentServer.start({
  apiKey: "bench-key",
  echo: true,
  greetingMs: 100,
  chunkMs: 20,
});
const dir = mkdtempSync(join(tmpdir(), "bench-bridge-"));
const profile = values["cpu-prof"] ? ["--cpu-prof-md", `--cpu-prof-dir=${values["cpu-prof"]}`] : [];
const command = [
  ...(values.pin ? ["taskset", "--cpu-list", "0"] : []),
  ...(values.binary ? [values.binary] : [process.execPath, ...profile, "run", "src/main.ts"]),
];
if (values.pin) {
  const pinned = Bun.spawnSync([
    "taskset",
    "--all-tasks",
    "--cpu-list",
    "--pid",
    "1",
    `${process.pid}`,
  ]);
  if (!pinned.success) throw new Error(`--pin: taskset failed: ${pinned.stderr.toString().trim()}`);
}
const server = Bun.spawn(command, {
  env: {
    PATH: process.env.PATH ?? "",
    SERVER_HOST: "127.0.0.1",
    SERVER_PORT: "0",
    DATABASE_PATH: join(dir, "bench.db"),
    ALLOW_DEV_STREAMS: "true",
    DEEPGRAM_API_KEY: "bench-key",
    DEEPGRAM_API_URL: NO_DEEPGRAM_REST,
    DEEPGRAM_AGENT_URL: agent.url,
    SILENCE_PROMPT_MS: "600000",
    LOG_LEVEL: "info",
    SHUTDOWN_DRAIN_MS: "1000",
  },
  stdout: "pipe",
  stderr: "inherit",
});
const base = await listeningUrl(server.stdout, async () => `exit code ${await server.exited}`);
await Bun.sleep(500);
const idle = usage(server.pid);

console.log(
  `bench: ${CALLS} calls, ${SECONDS} s at real-time cadence, server pid ${server.pid} (${command.join(" ")})`,
);
const phones: FakeTwilioCall[] = [];
for (let i = 0; i < CALLS; i++) {
  phones.push(
    await FakeTwilioCall.connect({
      url: `${base.replace("http", "ws")}/twilio`,
      customParameters: { from: `+1555${String(i).padStart(7, "0")}` },
      keepMessages: false,
    }),
  );
}
const sessions = new Map<string, FakeAgentSession>();
for (let i = 0; i < CALLS; i++) {
  const session = await agent.nextSession(30_000);
  const agentSettings = session.settings?.agent as { think?: { prompt?: string } } | undefined;
  const from = /The caller's number is (\+\d+)/.exec(agentSettings?.think?.prompt ?? "")?.[1];
  sessions.set(from ?? "", session);
}
await Promise.all(
  phones.map((phone) => phone.waitFor(() => phone.mediaReceived > 0, "greeting", 30_000)),
);
const pairs = phones.map((phone, i) => ({
  phone,
  agent: sessions.get(`+1555${String(i).padStart(7, "0")}`) as FakeAgentSession,
}));
for (const { agent: session } of pairs) session.audioArrivals.length = 0;
for (const { phone } of pairs) phone.sentMediaAt.length = 0;
console.log(`all ${CALLS} calls live; streaming`);

// WebSocket frames under 126 bytes that a server sends carry a 2-byte header and no mask.
const USER_STARTED_SPEAKING_BYTES = JSON.stringify({ type: "UserStartedSpeaking" }).length + 2;
const CLEAR_BYTES =
  `{"event":"clear","streamSid":${JSON.stringify(phones[0]?.streamSid)}}`.length + 2;
const capture: WireCapture | undefined = values.capture
  ? await captureLoopback([
      { sourcePort: Number(new URL(agent.url).port), payloadBytes: USER_STARTED_SPEAKING_BYTES },
      { sourcePort: Number(new URL(base).port), payloadBytes: CLEAR_BYTES },
    ])
  : undefined;

const started = usage(server.pid);
const benchCpuStart = process.cpuUsage();
const startedAt = performance.now();
let lateTicks = 0;
let nextTick = startedAt;
const bargeIns = Math.min(Number(values["barge-ins"]), CALLS);
// Real calls start at random moments, so their frames are spread over each 20 ms period: each call
// gets a fixed slot in one of GROUPS sub-ticks rather than all sending in one burst.
const GROUPS = 10;
let tick = 0;
// Barge-ins happen while every call streams: one call at a time, evenly spaced over the run.
const bargeInEvery = Math.max(1, Math.floor((SECONDS * 1000) / (20 / GROUPS) / (bargeIns + 1)));
const bargeInsSent: { phone: FakeTwilioCall; sentAt: number; clearsBefore: number }[] = [];
while (performance.now() - startedAt < SECONDS * 1000) {
  nextTick += 20 / GROUPS;
  const group = tick++ % GROUPS;
  for (let i = group; i < pairs.length; i += GROUPS) pairs[i]?.phone.sendMedia(FRAME);
  if (tick % bargeInEvery === 0 && bargeInsSent.length < bargeIns) {
    const { phone, agent: session } = pairs[bargeInsSent.length] as (typeof pairs)[number];
    bargeInsSent.push({ phone, sentAt: performance.now(), clearsBefore: phone.clears });
    session.userStartedSpeaking();
  }
  const delay = nextTick - performance.now();
  if (delay > 0) await Bun.sleep(delay);
  else lateTicks++;
}
const loaded = usage(server.pid);
const elapsed = (performance.now() - startedAt) / 1000;
const benchCpu = process.cpuUsage(benchCpuStart);
const benchCpuPercent = ((benchCpu.user + benchCpu.system) / 1e6 / elapsed) * 100;

await Bun.sleep(500);
const bargeInLatencies = bargeInsSent
  .filter(({ phone, clearsBefore }) => phone.clears > clearsBefore)
  .map(({ phone, sentAt }) => phone.lastClearAt - sentAt);
// On the wire each barge-in is one UserStartedSpeaking segment followed by one clear segment; they
// are tens of milliseconds apart, so each clear answers the UserStartedSpeaking just before it.
const wireBargeIns: number[] = [];
if (capture) {
  let heardAt: number | undefined;
  for (const packet of await capture.stop()) {
    if (packet.payloadBytes === USER_STARTED_SPEAKING_BYTES) heardAt = packet.at;
    else if (heardAt !== undefined) {
      wireBargeIns.push((packet.at - heardAt) * 1000);
      heardAt = undefined;
    }
  }
  wireBargeIns.sort((a, b) => a - b);
}

const latencies: number[] = [];
let sent = 0;
let received = 0;
for (const { phone, agent: session } of pairs) {
  sent += phone.sentMediaAt.length;
  received += session.audioArrivals.length;
  const n = Math.min(phone.sentMediaAt.length, session.audioArrivals.length);
  for (let k = 0; k < n; k++)
    latencies.push((session.audioArrivals[k] ?? 0) - (phone.sentMediaAt[k] ?? 0));
}
latencies.sort((a, b) => a - b);
bargeInLatencies.sort((a, b) => a - b);
const userSeconds = (loaded.userTicks - started.userTicks) / TICKS_PER_SECOND;
const systemSeconds = (loaded.systemTicks - started.systemTicks) / TICKS_PER_SECOND;
const cpuSeconds = userSeconds + systemSeconds;
const ms = (value: number) => `${value.toFixed(2)} ms`;

console.log(`
calls                      ${CALLS}
duration                   ${elapsed.toFixed(1)} s (${lateTicks} late sender ticks)
frames sent → agent        ${sent} → ${received} (loss ${sent - received}, ${(((sent - received) / sent) * 100).toFixed(3)} %)
frames/s through server    ${(received / elapsed).toFixed(0)} in + ${(received / elapsed).toFixed(0)} echoed out
added latency p50 / p99    ${ms(percentile(latencies, 50))} / ${ms(percentile(latencies, 99))} (max ${ms(latencies.at(-1) ?? Number.NaN)})
server CPU                 ${((cpuSeconds / elapsed) * 100).toFixed(1)} % of one core (user ${((userSeconds / elapsed) * 100).toFixed(1)} %, kernel ${((systemSeconds / elapsed) * 100).toFixed(1)} %; ${((cpuSeconds / elapsed / CALLS) * 100).toFixed(3)} % per call)
bench (fakes) CPU          ${benchCpuPercent.toFixed(1)} % of one core (every phone and the agent, in this process${values.pin ? "; server on CPU 0, bench on CPU 1" : ", sharing the machine's cores with the server"})
server RSS                 idle ${(idle.rssKiB / 1024).toFixed(1)} MiB, loaded ${(loaded.rssKiB / 1024).toFixed(1)} MiB (${((loaded.rssKiB - idle.rssKiB) / CALLS).toFixed(1)} KiB per call)
barge-in → clear p50 / p99 ${ms(percentile(bargeInLatencies, 50))} / ${ms(percentile(bargeInLatencies, 99))} (max ${ms(bargeInLatencies.at(-1) ?? Number.NaN)}) over ${bargeInLatencies.length} of ${bargeInsSent.length} under load (fake agent send → fake phone receive)${
  capture
    ? `
  server alone (wire)      ${ms(percentile(wireBargeIns, 50))} / ${ms(percentile(wireBargeIns, 99))} (max ${ms(wireBargeIns.at(-1) ?? Number.NaN)}) over ${wireBargeIns.length} (UserStartedSpeaking reaches the server's socket → clear leaves it, tcpdump)`
    : ""
}
`);

for (const phone of phones) phone.hangUp();
await Bun.sleep(500);
server.kill("SIGTERM");
await server.exited;
agent.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
