#!/usr/bin/env bun
/**
 * Start-up benchmark: how long the compiled service takes from exec to its first 200 on GET /health
 * (polled every 2 ms), and its idle RSS one second later, over N fresh starts (new database each
 * time, Twilio and Deepgram configured, every outside address a closed loopback port). A minimal
 * `Bun.serve` answering /health, compiled here with `bun build --compile`, is the reference in the
 * same run; the two alternate. Builds nothing else: run `bun run build` first. Results go in
 * docs/PERFORMANCE.md.
 *
 *   bun run scripts/bench-start.ts [--binary dist/voice-agent] [--runs 15]
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CONFIGURED_SERVICE_ENV } from "./lib/bench-env.ts";

const { values } = parseArgs({
  options: {
    binary: { type: "string", default: "dist/voice-agent" },
    runs: { type: "string", default: "15" },
  },
});
const binary = resolve(values.binary);
const runs = Number(values.runs);
if (!existsSync(binary)) throw new Error(`${binary} not found: run bun run build first`);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer`);

const POLL_MS = 2;
const IDLE_MS = 1_000;
const GIVE_UP_MS = 10_000;

interface Start {
  /** exec → first 200 on /health, ms. */
  readyMs: number;
  /** VmRSS one second after that, bytes. */
  idleRss: number;
}

const rssBytes = (pid: number) => {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return Number(line?.[1] ?? 0) * 1024;
};

/** A port nothing listens on right now. */
function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = listener;
  listener.stop(true);
  return port;
}

/** One start of `command` in a fresh folder: exec → first 200 on /health, then RSS after 1 s idle. */
async function startOnce(command: string, env: Record<string, string>): Promise<Start> {
  const dir = mkdtempSync(join(tmpdir(), "bench-start-"));
  const port = freePort();
  const started = performance.now();
  const child = Bun.spawn([command], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "",
      SERVER_HOST: "127.0.0.1",
      SERVER_PORT: String(port),
      DATABASE_PATH: join(dir, "bench.db"),
      ...env,
    },
    stdout: "ignore",
    stderr: "pipe",
  });
  try {
    let readyMs: number | undefined;
    while (readyMs === undefined) {
      const response = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
      if (response?.status === 200) readyMs = performance.now() - started;
      else if (child.exitCode !== null || performance.now() - started > GIVE_UP_MS)
        throw new Error(`${command} did not answer: ${await new Response(child.stderr).text()}`);
      else await Bun.sleep(POLL_MS);
    }
    await Bun.sleep(IDLE_MS);
    return { readyMs, idleRss: rssBytes(child.pid) };
  } finally {
    child.kill("SIGTERM");
    await child.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The floor: a bare compiled Bun server answering /health, built into `dir`. */
async function buildReference(dir: string): Promise<string> {
  const source = join(dir, "reference.ts");
  writeFileSync(
    source,
    `Bun.serve({ hostname: process.env.SERVER_HOST, port: Number(process.env.SERVER_PORT),
      fetch: (request) => new URL(request.url).pathname === "/health"
        ? Response.json({ status: "ok" }) : new Response("not found", { status: 404 }) });\n`,
  );
  const outfile = join(dir, "reference");
  const build = Bun.spawnSync([
    process.execPath,
    "build",
    "--compile",
    source,
    "--outfile",
    outfile,
  ]);
  if (build.exitCode !== 0) throw new Error(`reference build failed: ${build.stderr.toString()}`);
  return outfile;
}

const serviceEnv = {
  ...CONFIGURED_SERVICE_ENV,
  DEEPGRAM_AGENT_URL: "ws://127.0.0.1:9/v1/agent/converse",
};

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

function summary(samples: number[]) {
  const sorted = samples.toSorted((a, b) => a - b);
  return {
    median: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    min: sorted[0] ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
  };
}

const ms = (value: number) => `${value.toFixed(1)} ms`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

function line(name: string, label: string, stats: ReturnType<typeof summary>, unit: typeof ms) {
  const { median, p90, min, max } = stats;
  return `${name.padEnd(12)} ${label.padEnd(9)} median ${unit(median).padStart(9)}  p90 ${unit(p90).padStart(9)}  min ${unit(min).padStart(9)}  max ${unit(max).padStart(9)}`;
}

const buildDir = mkdtempSync(join(tmpdir(), "bench-start-reference-"));
try {
  const reference = await buildReference(buildDir);
  console.log(`${runs} starts each of ${binary} and a minimal compiled Bun.serve, alternating`);
  const service: Start[] = [];
  const floor: Start[] = [];
  for (let i = 0; i < runs; i++) {
    service.push(await startOnce(binary, serviceEnv));
    floor.push(await startOnce(reference, {}));
  }
  const results = [
    ["voice-agent", service],
    ["reference", floor],
  ] as const;
  for (const [name, starts] of results) {
    console.log(line(name, "to 200", summary(starts.map((start) => start.readyMs)), ms));
    console.log(line(name, "idle RSS", summary(starts.map((start) => start.idleRss)), mib));
  }
  const ready = summary(service.map((start) => start.readyMs)).median;
  const floorReady = summary(floor.map((start) => start.readyMs)).median;
  const rss = summary(service.map((start) => start.idleRss)).median;
  const floorRss = summary(floor.map((start) => start.idleRss)).median;
  console.log(
    `ratio (median): to 200 ${(ready / floorReady).toFixed(1)}×, idle RSS ${(rss / floorRss).toFixed(1)}×`,
  );
} finally {
  rmSync(buildDir, { recursive: true, force: true });
}
