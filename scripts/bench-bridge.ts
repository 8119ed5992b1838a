#!/usr/bin/env bun
/**
 * Bridge benchmark: N concurrent simulated calls at real-time cadence (one 20 ms frame per call every
 * 20 ms, as Twilio sends, spread over the period as independent calls are) through the real server, in its own process, to the fake Voice Agent, which
 * echoes the audio back so both directions carry traffic (with marks). Prints per-frame added latency
 * (phone send → agent receive) p50/p99, frame loss, server CPU and RSS per call, and barge-in latency
 * (agent sends UserStartedSpeaking → phone receives clear). Results go in docs/PERFORMANCE.md.
 *
 *   bun run scripts/bench-bridge.ts --calls 500 --seconds 20 [--binary dist/voice-agent] [--cpu-prof DIR]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { mulawTone } from "../test/fakes/mulaw.ts";
import { FakeTwilioCall } from "../test/fakes/twilio-media-client.ts";
import { type FakeAgentSession, FakeVoiceAgentServer } from "../test/fakes/voice-agent-server.ts";
import { listeningUrl } from "../test/helpers/listening.ts";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "100" },
    seconds: { type: "string", default: "10" },
    binary: { type: "string" },
    "barge-ins": { type: "string", default: "50" },
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

/** utime+stime of a process in clock ticks, and its resident set in KiB. */
function usage(pid: number): { ticks: number; rssKiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return { ticks, rssKiB: Number(rss) };
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
const command = values.binary
  ? [values.binary]
  : [process.execPath, ...profile, "run", "src/main.ts"];
const server = Bun.spawn(command, {
  env: {
    PATH: process.env.PATH ?? "",
    SERVER_HOST: "127.0.0.1",
    SERVER_PORT: "0",
    DATABASE_PATH: join(dir, "bench.db"),
    ALLOW_DEV_STREAMS: "true",
    DEEPGRAM_API_KEY: "bench-key",
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

const started = usage(server.pid);
const benchCpuStart = process.cpuUsage();
const startedAt = performance.now();
let lateTicks = 0;
let nextTick = startedAt;
const bargeInLatencies: number[] = [];
const bargeIns = Math.min(Number(values["barge-ins"]), CALLS);
// Real calls start at random moments, so their frames are spread over each 20 ms period: each call
// gets a fixed slot in one of GROUPS sub-ticks rather than all sending in one burst.
const GROUPS = 10;
let tick = 0;
while (performance.now() - startedAt < SECONDS * 1000) {
  nextTick += 20 / GROUPS;
  const group = tick++ % GROUPS;
  for (let i = group; i < pairs.length; i += GROUPS) pairs[i]?.phone.sendMedia(FRAME);
  const delay = nextTick - performance.now();
  if (delay > 0) await Bun.sleep(delay);
  else lateTicks++;
}
const loaded = usage(server.pid);
const elapsed = (performance.now() - startedAt) / 1000;
const benchCpu = process.cpuUsage(benchCpuStart);
const benchCpuPercent = ((benchCpu.user + benchCpu.system) / 1e6 / elapsed) * 100;

for (let i = 0; i < bargeIns; i++) {
  const { phone, agent: session } = pairs[i] as (typeof pairs)[number];
  const clears = phone.clears;
  const sentAt = performance.now();
  session.userStartedSpeaking();
  await phone.waitFor(() => phone.clears > clears, "clear", 5_000);
  bargeInLatencies.push(phone.lastClearAt - sentAt);
}
await Bun.sleep(500);

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
const cpuSeconds = (loaded.ticks - started.ticks) / TICKS_PER_SECOND;
const ms = (value: number) => `${value.toFixed(2)} ms`;

console.log(`
calls                      ${CALLS}
duration                   ${elapsed.toFixed(1)} s (${lateTicks} late sender ticks)
frames sent → agent        ${sent} → ${received} (loss ${sent - received}, ${(((sent - received) / sent) * 100).toFixed(3)} %)
frames/s through server    ${(received / elapsed).toFixed(0)} in + ${(received / elapsed).toFixed(0)} echoed out
added latency p50 / p99    ${ms(percentile(latencies, 50))} / ${ms(percentile(latencies, 99))} (max ${ms(latencies.at(-1) ?? Number.NaN)})
server CPU                 ${((cpuSeconds / elapsed) * 100).toFixed(1)} % of one core (${((cpuSeconds / elapsed / CALLS) * 100).toFixed(3)} % per call)
bench (fakes) CPU          ${benchCpuPercent.toFixed(1)} % of one core (phones and agent share this process and the machine's 2 cores)
server RSS                 idle ${(idle.rssKiB / 1024).toFixed(1)} MiB, loaded ${(loaded.rssKiB / 1024).toFixed(1)} MiB (${((loaded.rssKiB - idle.rssKiB) / CALLS).toFixed(1)} KiB per call)
barge-in → clear p50 / p99 ${ms(percentile(bargeInLatencies, 50))} / ${ms(percentile(bargeInLatencies, 99))} over ${bargeInLatencies.length} (fake agent send → fake phone receive)
`);

for (const phone of phones) phone.hangUp();
await Bun.sleep(500);
server.kill("SIGTERM");
await server.exited;
agent.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
