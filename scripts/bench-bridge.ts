#!/usr/bin/env bun
/**
 * Bridge benchmark: N concurrent simulated calls at real-time cadence (one 20 ms frame per call every
 * 20 ms, as Twilio sends, from the call's `start` on, spread over the period as independent calls
 * are) through the real server, in its own process, to the fake Voice Agent, which echoes the audio
 * back so both directions carry traffic (with marks). Prints per-frame added latency (phone send →
 * agent receive) p50/p99, server CPU and RSS per call, barge-in latency under load (agent sends
 * UserStartedSpeaking → phone receives clear; one call at a time, then every call at once; with
 * --capture also on the wire, the server alone), the hang-up after the agent's last words (last
 * mark echoed → stream closed, goodbye before or after the end_call request), and what became of
 * every caller frame (sent, received by the agent, held back by design, unintended loss). With
 * --reference, a minimal bridge (scripts/lib/reference-bridge.ts) carries the identical load in the
 * same invocation and every figure is also given as service / reference. With --recording the
 * service records every call (RECORDING=local) and the run it is compared with is the same service
 * without recording, instead of the reference bridge. Results go in docs/PERFORMANCE.md.
 *
 *   bun run scripts/bench-bridge.ts --calls 500 --seconds 20 [--binary dist/voice-agent] [--pin]
 *     [--reference | --recording] [--repeat N] [--capture] [--barge-ins K] [--cpu-prof DIR]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { mulawTone } from "../test/fakes/mulaw.ts";
import { FakeTwilioCall } from "../test/fakes/twilio-media-client.ts";
import { freePort } from "../test/fakes/twilio-webhooks.ts";
import { type FakeAgentSession, FakeVoiceAgentServer } from "../test/fakes/voice-agent-server.ts";
import { NO_DEEPGRAM_REST } from "../test/helpers/context.ts";
import { listeningUrl } from "../test/helpers/listening.ts";
import {
  type BridgeCallerAudio,
  describeCallerAudio,
  heldBackTotal,
  readPostgresCallerAudio,
  readReferenceCallerAudio,
  readServiceCallerAudio,
} from "./lib/caller-audio.ts";
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
    /** Write each server's CPU profile (markdown, named by pid) into this folder; source runs only. */
    "cpu-prof": { type: "string" },
    /** Also run the minimal reference bridge under the identical load; figures as ratios to it. */
    reference: { type: "boolean", default: false },
    /**
     * The service records every call; the baseline run (in place of the reference bridge) is the
     * same service without recording, so each figure is recording on / recording off.
     */
    recording: { type: "boolean", default: false },
    /** Runs of each bridge; with --reference the order alternates from one repeat to the next. */
    repeat: { type: "string", default: "1" },
    /**
     * Run the service as `--workers N` (a supervisor and N workers on one port); CPU and memory are
     * the whole process tree's. Leave --pin off: the workers would share one core.
     */
    workers: { type: "string", default: "1" },
    /**
     * Run the service as N instances on PostgreSQL + Redis (TEST_DATABASE_URL's server, a fresh
     * database; TEST_REDIS_URL, a fresh key prefix), the calls spread over them as a balancer
     * would; CPU and memory are all instances' together.
     */
    fleet: { type: "string", default: "1" },
  },
});
const CALLS = Number(values.calls);
const SECONDS = Number(values.seconds);
const REPEAT = Number(values.repeat);
const WORKERS = Number(values.workers);
const FLEET = Number(values.fleet);
if (!Number.isInteger(FLEET) || FLEET < 1) throw new Error("--fleet must be a positive integer");
if (FLEET > 1 && WORKERS > 1) throw new Error("--fleet and --workers: one or the other");
if (values.reference && values.recording)
  throw new Error("--reference and --recording: one or the other (each names the baseline)");
if (!Number.isInteger(WORKERS) || WORKERS < 1)
  throw new Error("--workers must be a positive integer");
if (!Number.isInteger(CALLS) || CALLS < 1) throw new Error("--calls must be a positive integer");
if (!(SECONDS > 0)) throw new Error("--seconds must be positive");
if (!Number.isInteger(REPEAT) || REPEAT < 1) throw new Error("--repeat must be a positive integer");
const FRAME = mulawTone(20, 300);
/** Calls send in GROUPS sub-ticks of each 20 ms period, each call in a fixed one. */
const GROUPS = 10;
/** The agent's goodbye before the service hangs up. */
const GOODBYE_MS = 600;
/** Between the caller's last frame and the agent's goodbye: the caller's own frames have drained. */
const PAUSE_BEFORE_GOODBYE_MS = 200;
/** The service hangs up within HANGUP_SAFETY_MS (15 s) whatever happens; wait a little longer. */
const HANG_UP_WAIT_MS = 20_000;
const ORDERS = ["words first", "request first"] as const;
type Order = (typeof ORDERS)[number];
type Kind = "service" | "reference";
/** Whether a run of `kind` is the service (with --recording, both are). */
const runsService = (kind: Kind) => kind === "service" || values.recording === true;
/** What the service is compared with. */
const BASELINE = values.recording ? "service without recording" : "reference bridge";

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

interface Distribution {
  p50: number;
  p99: number;
  max: number;
  count: number;
}

function distribution(samples: number[]): Distribution {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
    count: sorted.length,
  };
}

/** User and system CPU time of a process in clock ticks, and its resident set in KiB. */
function ownUsage(pid: number): { userTicks: number; systemTicks: number; rssKiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return { userTicks: Number(fields[11]), systemTicks: Number(fields[12]), rssKiB: Number(rss) };
}

/** The pids of a process's children (its workers, with --workers). */
function children(pid: number): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid;
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

/** `ownUsage` of a process and its children, added up. */
function usage(pid: number): { userTicks: number; systemTicks: number; rssKiB: number } {
  return [pid, ...children(pid)].map(ownUsage).reduce((total, one) => ({
    userTicks: total.userTicks + one.userTicks,
    systemTicks: total.systemTicks + one.systemTicks,
    rssKiB: total.rssKiB + one.rssKiB,
  }));
}
const TICKS_PER_SECOND =
  Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/**
 * The phones' clock: every 20 ms each phone that has started (and is not quiet or closed) sends one
 * frame, the phones spread over GROUPS sub-ticks. Runs from the first call's `start` to the end.
 */
class Cadence {
  /** Frames sent by each phone since its `start`. */
  readonly sent: number[] = [];
  /** Ticks whose time had already passed when they came round. */
  lateTicks = 0;
  /** Runs after each tick's frames were sent. */
  onTick: (() => void) | undefined;
  readonly #phones: FakeTwilioCall[];
  readonly #quiet = new Set<number>();
  #running = true;
  readonly #done: Promise<void>;

  constructor(phones: FakeTwilioCall[]) {
    this.#phones = phones;
    this.#done = this.#run();
  }

  /** Phone `index` stops sending (the caller has finished and listens). */
  quiet(index: number): void {
    this.#quiet.add(index);
  }

  /** Stops every phone; resolves when the clock has stopped. */
  stop(): Promise<void> {
    this.#running = false;
    return this.#done;
  }

  async #run(): Promise<void> {
    let next = performance.now();
    for (let tick = 0; this.#running; tick++) {
      next += 20 / GROUPS;
      const phones = this.#phones;
      for (let i = tick % GROUPS; i < phones.length; i += GROUPS) {
        const phone = phones[i] as FakeTwilioCall;
        if (phone.isClosed || this.#quiet.has(i)) continue;
        phone.sendMedia(FRAME);
        this.sent[i] = (this.sent[i] ?? 0) + 1;
      }
      this.onTick?.();
      const delay = next - performance.now();
      if (delay > 0) await Bun.sleep(delay);
      else this.lateTicks++;
    }
  }
}

interface HangUps {
  /** Last mark echoed by the phone → the service closed the stream, in ms. */
  latency: Distribution;
  /** Closed while goodbye audio was still queued on the phone. */
  cutOff: number;
  /** Still open HANG_UP_WAIT_MS after the goodbye. */
  notHungUp: number;
  of: number;
}

interface RunResult {
  kind: Kind;
  elapsedS: number;
  lateTicks: number;
  userS: number;
  systemS: number;
  benchCpuPercent: number;
  idleKiB: number;
  loadedKiB: number;
  framesSteady: number;
  latency: Distribution;
  /** Calls whose latency pairs were skipped: frames were lost after the greeting. */
  unpaired: number;
  bargeIn: Distribution & { of: number };
  burst: Distribution & { of: number };
  wire: Distribution | undefined;
  hangUps: Record<Order, HangUps> | undefined;
  phonesSent: number;
  agentReceived: number;
  callerAudio: BridgeCallerAudio | undefined;
}

const cpuMsPerCallSecond = (r: RunResult) => ((r.userS + r.systemS) * 1000) / r.elapsedS / CALLS;
const kibPerCall = (r: RunResult) => (r.loadedKiB - r.idleKiB) / CALLS;

const workDir = mkdtempSync(join(tmpdir(), "bench-bridge-"));
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
const onCpu0 = values.pin ? ["taskset", "--cpu-list", "0"] : [];
const profile = values["cpu-prof"] ? ["--cpu-prof-md", `--cpu-prof-dir=${values["cpu-prof"]}`] : [];
const serviceCommand = [
  ...onCpu0,
  ...(values.binary ? [values.binary] : [process.execPath, ...profile, "run", "src/main.ts"]),
  ...(WORKERS > 1 ? ["--workers", String(WORKERS)] : []),
];
/** Compiled like the service when it is (`--binary`), from source otherwise. */
function referenceCommand(): string[] {
  const source = join(import.meta.dir, "lib", "reference-bridge.ts");
  if (!values.binary) return [...onCpu0, process.execPath, ...profile, "run", source];
  const outfile = join(workDir, "reference-bridge");
  const built = Bun.spawnSync([
    process.execPath,
    "build",
    "--compile",
    "--minify",
    source,
    "--outfile",
    outfile,
  ]);
  if (!built.success) throw new Error(`reference build failed: ${built.stderr.toString()}`);
  return [...onCpu0, outfile];
}
const commands: Record<Kind, string[]> = {
  service: serviceCommand,
  reference: values.recording ? serviceCommand : values.reference ? referenceCommand() : [],
};

/** One run of the whole load against one bridge. */
async function run(kind: Kind, databasePath: string): Promise<RunResult> {
  const agent = FakeVoiceAgentServer.start({
    apiKey: "bench-key",
    echo: true,
    greetingMs: 100,
    chunkMs: 20,
  });
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    SERVER_HOST: "127.0.0.1",
    // Workers share a port they are given (with 0 each would pick its own).
    SERVER_PORT: runsService(kind) && WORKERS > 1 ? String(freePort()) : "0",
    DEEPGRAM_API_KEY: "bench-key",
    DEEPGRAM_AGENT_URL: agent.url,
    ...(kind === "service" && values.recording
      ? {
          RECORDING: "local",
          RECORDINGS_DIR: `${databasePath}.recordings`,
          INBOUND_DISCLOSURE: "This call is recorded.",
        }
      : {}),
    ...(runsService(kind)
      ? {
          DATABASE_PATH: databasePath,
          ALLOW_DEV_STREAMS: "true",
          DEEPGRAM_API_URL: NO_DEEPGRAM_REST,
          SILENCE_PROMPT_MS: "600000",
          LOG_LEVEL: "info",
          SHUTDOWN_DRAIN_MS: "1000",
        }
      : {}),
  };
  const fleet = runsService(kind) && FLEET > 1 ? await openFleetStores() : undefined;
  const servers = Array.from({ length: fleet ? FLEET : 1 }, () =>
    Bun.spawn(commands[kind], {
      env: { ...env, ...fleet?.env, ...(fleet ? { SERVER_PORT: String(freePort()) } : {}) },
      stdout: "pipe",
      stderr: "inherit",
    }),
  );
  const server = servers[0] as (typeof servers)[number];
  const bases = await Promise.all(
    servers.map((one) => listeningUrl(one.stdout, async () => `exit code ${await one.exited}`)),
  );
  const base = bases[0] as string;
  // With --workers, until every worker listens (the first one's line gave the URL).
  while (runsService(kind) && WORKERS > 1 && children(server.pid).length < WORKERS)
    await Bun.sleep(50);
  await Bun.sleep(WORKERS > 1 || fleet ? 1_500 : 500);
  /** The whole service's use: every instance, each with its workers. */
  const usageOfAll = () =>
    servers
      .map((one) => usage(one.pid))
      .reduce((total, one) => ({
        userTicks: total.userTicks + one.userTicks,
        systemTicks: total.systemTicks + one.systemTicks,
        rssKiB: total.rssKiB + one.rssKiB,
      }));
  const idle = usageOfAll();
  console.log(
    `\n── ${kind}: ${CALLS} calls, ${SECONDS} s at real-time cadence, pid ${servers.map((one) => one.pid).join(", ")} (${commands[kind].join(" ")})`,
  );

  // Every phone streams from its `start` on, as Twilio does: the frames before the agent is ready
  // are part of the account.
  const phones: FakeTwilioCall[] = [];
  const cadence = new Cadence(phones);
  for (let i = 0; i < CALLS; i++) {
    phones.push(
      await FakeTwilioCall.connect({
        // Spread over the instances as a round-robin balancer would.
        url: `${(bases[i % bases.length] as string).replace("http", "ws")}/twilio`,
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
  // Latency is the steady state's: from here on. A frame or two per call is in flight at this
  // moment; they are paired off at the end (arrivals − sends since here).
  for (const { agent: session, phone } of pairs) {
    session.audioArrivals.length = 0;
    phone.sentMediaAt.length = 0;
  }
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

  // Steady state: every call streams; barge-ins one call at a time, evenly spaced over the run.
  const started = usageOfAll();
  const benchCpuStart = process.cpuUsage();
  const startedAt = performance.now();
  const lateBefore = cadence.lateTicks;
  const bargeIns = Math.min(Number(values["barge-ins"]), CALLS);
  const bargeInEvery = Math.max(1, Math.floor((SECONDS * 1000) / (20 / GROUPS) / (bargeIns + 1)));
  const bargeInsSent: { phone: FakeTwilioCall; sentAt: number; clearsBefore: number }[] = [];
  let tick = 0;
  cadence.onTick = () => {
    if (++tick % bargeInEvery !== 0 || bargeInsSent.length >= bargeIns) return;
    const { phone, agent: session } = pairs[bargeInsSent.length] as (typeof pairs)[number];
    bargeInsSent.push({ phone, sentAt: performance.now(), clearsBefore: phone.clears });
    session.userStartedSpeaking();
  };
  await Bun.sleep(SECONDS * 1000);
  cadence.onTick = undefined;
  const loaded = usageOfAll();
  const elapsedS = (performance.now() - startedAt) / 1000;
  const benchCpu = process.cpuUsage(benchCpuStart);
  const lateTicks = cadence.lateTicks - lateBefore;
  const steadySent = phones.map((phone) => phone.sentMediaAt.length);
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
  }
  await Bun.sleep(500);
  const answered = bargeInsSent.filter(({ phone, clearsBefore }) => phone.clears > clearsBefore);
  const bargeIn = {
    ...distribution(answered.map(({ phone, sentAt }) => phone.lastClearAt - sentAt)),
    of: bargeInsSent.length,
  };

  // Burst: every call barges in at once, still streaming.
  const burstSent = pairs.map(({ phone, agent: session }) => {
    const sent = { phone, sentAt: performance.now(), clearsBefore: phone.clears };
    session.userStartedSpeaking();
    return sent;
  });
  await Bun.sleep(1000);
  const burstAnswered = burstSent.filter(({ phone, clearsBefore }) => phone.clears > clearsBefore);
  const burst = {
    ...distribution(burstAnswered.map(({ phone, sentAt }) => phone.lastClearAt - sentAt)),
    of: burstSent.length,
  };

  // The end. The service: each call's caller stops and says goodbye, the agent answers with its
  // goodbye and end_call (half words first, half the request first), and the service hangs up once
  // the goodbye has been heard; spread over a second, as independent calls end. The reference
  // bridge has no end_call: its callers hang up.
  let hangUps: Record<Order, HangUps> | undefined;
  if (runsService(kind)) {
    pairs.forEach(({ agent: session }, i) => {
      setTimeout(
        () => {
          cadence.quiet(i);
          // A real agent does not echo: caller frames still in flight (a loaded host) must not
          // become agent audio after its goodbye, which would rightly keep the call up.
          session.echoing = false;
          session.userEndsTurn("That's all, thank you.");
          setTimeout(
            () => void session.sayGoodbyeAndEnd(ORDERS[i % 2] as Order, GOODBYE_MS),
            PAUSE_BEFORE_GOODBYE_MS,
          );
        },
        (i * 1000) / CALLS,
      );
    });
    await Promise.race([
      Promise.all(phones.map((phone) => phone.closed)),
      Bun.sleep(1000 + PAUSE_BEFORE_GOODBYE_MS + HANG_UP_WAIT_MS),
    ]);
    hangUps = Object.fromEntries(
      ORDERS.map((order, o) => {
        const mine = phones.filter((_, i) => i % 2 === o);
        const heard = mine.filter((phone) => phone.isClosed && phone.queuedMsAtClose === 0);
        return [
          order,
          {
            latency: distribution(heard.map((phone) => phone.closedAt - phone.lastMarkEchoAt)),
            cutOff: mine.filter((phone) => phone.isClosed && phone.queuedMsAtClose > 0).length,
            notHungUp: mine.filter((phone) => !phone.isClosed).length,
            of: mine.length,
          },
        ];
      }),
    ) as Record<Order, HangUps>;
  }
  await cadence.stop();
  await Bun.sleep(500);
  for (const phone of phones) if (!phone.isClosed) phone.hangUp();
  await Bun.sleep(500);

  const latencies: number[] = [];
  let unpaired = 0;
  pairs.forEach(({ phone, agent: session }, i) => {
    const inFlight = session.audioArrivals.length - phone.sentMediaAt.length;
    if (inFlight < 0) {
      unpaired++;
      return;
    }
    for (let k = 0; k < (steadySent[i] ?? 0); k++)
      latencies.push((session.audioArrivals[k + inFlight] ?? 0) - (phone.sentMediaAt[k] ?? 0));
  });

  // The reference answers its counters while running; the service writes them as each call ends,
  // all of them on disk once it has shut down cleanly.
  const referenceAudio = runsService(kind)
    ? undefined
    : await readReferenceCallerAudio(base, CALLS);
  for (const one of servers) one.kill("SIGTERM");
  await Promise.all(servers.map((one) => one.exited));
  const result: RunResult = {
    kind,
    elapsedS,
    lateTicks,
    userS: (loaded.userTicks - started.userTicks) / TICKS_PER_SECOND,
    systemS: (loaded.systemTicks - started.systemTicks) / TICKS_PER_SECOND,
    benchCpuPercent: ((benchCpu.user + benchCpu.system) / 1e6 / elapsedS) * 100,
    idleKiB: idle.rssKiB,
    loadedKiB: loaded.rssKiB,
    framesSteady: steadySent.reduce((sum, n) => sum + n, 0),
    latency: distribution(latencies),
    unpaired,
    bargeIn,
    burst,
    wire: capture ? distribution(wireBargeIns) : undefined,
    hangUps,
    phonesSent: cadence.sent.reduce((sum, n) => sum + n, 0),
    agentReceived: agent.sessions.reduce((sum, session) => sum + session.audioFrames, 0),
    callerAudio:
      referenceAudio ?? (fleet ? await fleet.callerAudio() : readServiceCallerAudio(databasePath)),
  };
  await fleet?.close();
  agent.stop();
  return result;
}

/** A fresh PostgreSQL database and Redis key prefix for one fleet run, and their clean-up. */
async function openFleetStores() {
  // Loaded only for --fleet: they look for the servers as they load.
  const { freshDatabase } = await import("../test/helpers/postgres.ts");
  const { freshPrefix, TEST_REDIS_URL } = await import("../test/helpers/redis.ts");
  const database = await freshDatabase();
  const keys = freshPrefix();
  return {
    env: {
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: keys.prefix,
      SERVER_REUSE_PORT: "false",
    },
    callerAudio: () => readPostgresCallerAudio(database.url),
    async close() {
      await database.drop();
      await keys.clear();
    },
  };
}

const ms = (value: number) => `${value.toFixed(2)} ms`;
const spread = (d: Distribution) => `${ms(d.p50)} / ${ms(d.p99)} (max ${ms(d.max)})`;

function report(r: RunResult): string {
  const percent = (seconds: number) => `${((seconds / r.elapsedS) * 100).toFixed(1)} %`;
  const lines = [
    `calls                      ${CALLS}`,
    `duration                   ${r.elapsedS.toFixed(1)} s (${r.lateTicks} late sender ticks)`,
    `frames/s through server    ${(r.framesSteady / r.elapsedS).toFixed(0)} in + as many echoed out`,
    `added latency p50 / p99    ${spread(r.latency)}${r.unpaired > 0 ? ` (${r.unpaired} calls unpaired: frames lost)` : ""}`,
    `server CPU                 ${percent(r.userS + r.systemS)} of one core (user ${percent(r.userS)}, kernel ${percent(r.systemS)}); ${cpuMsPerCallSecond(r).toFixed(2)} ms per call-second`,
    `bench (fakes) CPU          ${r.benchCpuPercent.toFixed(1)} % of one core (every phone and the agent, in this process${values.pin ? "; server on CPU 0, bench on CPU 1" : ", sharing the machine's cores with the server"})`,
    `server RSS                 idle ${(r.idleKiB / 1024).toFixed(1)} MiB, loaded ${(r.loadedKiB / 1024).toFixed(1)} MiB (${kibPerCall(r).toFixed(1)} KiB per live call)`,
    `barge-in → clear p50 / p99 ${spread(r.bargeIn)} over ${r.bargeIn.count} of ${r.bargeIn.of}, one call at a time under load (fake agent send → fake phone receive)`,
  ];
  if (r.wire)
    lines.push(
      `  server alone (wire)      ${spread(r.wire)} over ${r.wire.count} (UserStartedSpeaking reaches the server's socket → clear leaves it, tcpdump)`,
    );
  lines.push(
    `burst barge-in p50 / p99   ${spread(r.burst)} over ${r.burst.count} of ${r.burst.of}, every call at once`,
  );
  if (r.hangUps) {
    lines.push("hang-up (last mark echoed → stream closed) p50 / p99");
    for (const order of ORDERS) {
      const h = r.hangUps[order];
      lines.push(
        `  ${order.padEnd(24)} ${spread(h.latency)} over ${h.latency.count} of ${h.of}${h.cutOff > 0 ? `; ${h.cutOff} hung up before the goodbye was heard` : ""}${h.notHungUp > 0 ? `; ${h.notHungUp} not hung up` : ""}`,
      );
    }
  }
  lines.push(
    "caller frames (whole calls, from start)",
    describeCallerAudio(r.phonesSent, r.agentReceived, r.callerAudio, CALLS),
  );
  return lines.join("\n");
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return Number.isInteger(middle)
    ? ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2
    : (sorted[Math.floor(middle)] ?? Number.NaN);
}

/** Unintended loss of caller frames: sent − received by the agent − held back by design. */
function unintendedLoss(r: RunResult): number {
  const heldBack = r.callerAudio ? heldBackTotal(r.callerAudio) : 0;
  return r.phonesSent - r.agentReceived - heldBack;
}

/** Each figure of the service as a ratio to the baseline's, run for run, beside the baseline's own. */
function compare(pairs: { service: RunResult; reference: RunResult }[]): string {
  const figures: [string, (r: RunResult) => number, (value: number) => string][] = [
    ["CPU per call-second", cpuMsPerCallSecond, (v) => `${v.toFixed(2)} ms`],
    ["p99 added latency", (r) => r.latency.p99, ms],
    ["barge-in p99", (r) => r.bargeIn.p99, ms],
    ["burst barge-in p99", (r) => r.burst.p99, ms],
    ["RSS per live call", kibPerCall, (v) => `${v.toFixed(0)} KiB`],
    ["idle RSS", (r) => r.idleKiB, (v) => `${(v / 1024).toFixed(1)} MiB`],
  ];
  const lines = [
    `\nservice against the ${BASELINE}, ${pairs.length} pair(s) (order alternating)`,
    `${"figure".padEnd(22)} ${"baseline: median (range)".padEnd(34)} service / baseline: median (each pair)`,
  ];
  for (const [name, figure, format] of figures) {
    const reference = pairs.map((pair) => figure(pair.reference));
    const ratios = pairs.map((pair) => figure(pair.service) / figure(pair.reference));
    const range = `${format(Math.min(...reference))}–${format(Math.max(...reference))}`;
    lines.push(
      `${name.padEnd(22)} ${`${format(median(reference))} (${range})`.padEnd(34)} ${median(ratios).toFixed(2)} (${ratios.map((ratio) => ratio.toFixed(2)).join(", ")})`,
    );
  }
  const losses = (kind: Kind) => pairs.map((pair) => unintendedLoss(pair[kind])).join(", ");
  lines.push(
    `${"unintended loss".padEnd(22)} baseline ${losses("reference")} frames; service ${losses("service")}${pairs.some(({ service }) => !service.callerAudio) ? " (caller_audio not recorded by this build: sent − received)" : ""}`,
  );
  for (const order of ORDERS) {
    const hangUps = pairs.flatMap(({ service }) =>
      service.hangUps ? [service.hangUps[order]] : [],
    );
    lines.push(
      `${`hang-up, ${order}`.padEnd(22)} service only: p50 ${hangUps.map((h) => ms(h.latency.p50)).join(", ")}; p99 ${hangUps.map((h) => ms(h.latency.p99)).join(", ")}`,
    );
  }
  return lines.join("\n");
}

const results: Record<Kind, RunResult[]> = { service: [], reference: [] };
for (let repeat = 0; repeat < REPEAT; repeat++) {
  const order: Kind[] = !(values.reference || values.recording)
    ? ["service"]
    : repeat % 2 === 0
      ? ["service", "reference"]
      : ["reference", "service"];
  for (const kind of order) {
    const result = await run(kind, join(workDir, `${kind}-${repeat + 1}.db`));
    results[kind].push(result);
    const label = kind === "service" ? "service" : BASELINE;
    console.log(`\n${label}, run ${repeat + 1} of ${REPEAT}\n${report(result)}`);
  }
}
if (values.reference || values.recording)
  console.log(
    compare(
      results.service.map((service, i) => ({
        service,
        reference: results.reference[i] as RunResult,
      })),
    ),
  );
rmSync(workDir, { recursive: true, force: true });
process.exit(0);
