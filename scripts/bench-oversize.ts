#!/usr/bin/env bun
/**
 * Oversize-body benchmark: the memory and responsiveness of the service while N clients at once try
 * to push huge unauthenticated bodies into it (half unsigned `/incoming-call` with a declared length,
 * half `/make-call` chunked without the secret), each sending as fast as the server lets it. Prints
 * the process's idle RSS, its peak during the attack and the difference, and GET /health latency
 * meanwhile; the same attack against a minimal Bun server that refuses without reading is the
 * reference in the same run. Results go in docs/PERFORMANCE.md.
 *
 *   bun run scripts/bench-oversize.ts [--clients 16] [--megabytes 120] [--binary dist/voice-agent]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { listeningUrl } from "../test/helpers/listening.ts";
import { CONFIGURED_SERVICE_ENV } from "./lib/bench-env.ts";

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "16" },
    megabytes: { type: "string", default: "120" },
    binary: { type: "string" },
  },
});
const clients = Number(values.clients);
const bodyBytes = Number(values.megabytes) * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 97);
/** Body bytes the clients got onto the wire, in all. */
let sentBytes = 0;

const rssBytes = (pid: number) => {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return Number(line?.[1] ?? 0) * 1024;
};
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/**
 * One client: the request head, then body bytes as fast as the socket takes them, like an attacker
 * that ignores the answer: until the server closes the connection or the whole body is sent.
 */
async function push(port: number, path: string, head: Record<string, string>): Promise<number> {
  let closed = false;
  let status = 0;
  const done = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_socket, data) {
        if (status === 0) status = Number(data.toString("latin1").split(" ")[1]);
      },
      drain() {},
      close() {
        closed = true;
        done.resolve();
      },
      error() {
        closed = true;
        done.resolve();
      },
    },
  });
  const headers = Object.entries({ host: `127.0.0.1:${port}`, ...head })
    .map(([name, value]) => `${name}: ${value}`)
    .join("\r\n");
  socket.write(`POST ${path} HTTP/1.1\r\n${headers}\r\n\r\n`);
  const chunked = head["transfer-encoding"] === "chunked";
  let sent = 0;
  while (!closed && sent < bodyBytes) {
    const frame = chunked
      ? Buffer.concat([Buffer.from(`${CHUNK.length.toString(16)}\r\n`), CHUNK, Buffer.from("\r\n")])
      : CHUNK;
    const written = socket.write(frame);
    if (written > 0) sent += CHUNK.length;
    await Bun.sleep(written < frame.length ? 1 : 0);
  }
  socket.end();
  await Promise.race([done.promise, Bun.sleep(2_000)]);
  sentBytes += sent;
  return status;
}

interface Target {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

async function attack(name: string, target: Target) {
  for (let i = 0; i < 20; i++) await fetch(`http://127.0.0.1:${target.port}/health`);
  await Bun.sleep(500);
  let idle = 0;
  for (let i = 0; i < 10; i++) {
    idle = Math.max(idle, rssBytes(target.pid));
    await Bun.sleep(20);
  }
  let peak = idle;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssBytes(target.pid));
  }, 10);
  const latencies: number[] = [];
  let attacking = true;
  const probe = (async () => {
    while (attacking) {
      const started = performance.now();
      await fetch(`http://127.0.0.1:${target.port}/health`).catch(() => {});
      latencies.push(performance.now() - started);
      await Bun.sleep(10);
    }
  })();
  sentBytes = 0;
  const started = performance.now();
  const statuses = await Promise.all(
    Array.from({ length: clients }, (_, i) =>
      i % 2 === 0
        ? push(target.port, "/incoming-call", {
            "content-type": "application/x-www-form-urlencoded",
            "content-length": String(bodyBytes),
          })
        : push(target.port, "/make-call", {
            "content-type": "application/json",
            "transfer-encoding": "chunked",
          }),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  attacking = false;
  await probe;
  clearInterval(sampler);
  latencies.sort((a, b) => a - b);
  const p99 = latencies[Math.floor(latencies.length * 0.99)] ?? 0;
  const byStatus = Object.entries(
    statuses.reduce<Record<string, number>>((counts, status) => {
      counts[status] = (counts[status] ?? 0) + 1;
      return counts;
    }, {}),
  )
    .map(([status, count]) => `${count}×${status}`)
    .join(" ");
  console.log(
    `${name.padEnd(18)} idle ${mib(idle)}  peak ${mib(peak)}  +${mib(peak - idle)}  ` +
      `answers ${byStatus} in ${seconds.toFixed(2)} s, ${mib(sentBytes)} sent  /health p99 ${p99.toFixed(1)} ms (${latencies.length} probes)`,
  );
  await target.stop();
  return peak - idle;
}

/** Starts `command` and waits for its "listening" log line. */
async function startTarget(command: string[], env?: Record<string, string>): Promise<Target> {
  const child = Bun.spawn(command, { ...(env ? { env } : {}), stdout: "pipe", stderr: "pipe" });
  const url = await listeningUrl(child.stdout, () => new Response(child.stderr).text());
  return {
    pid: child.pid,
    port: Number(new URL(url).port),
    async stop() {
      child.kill("SIGTERM");
      await child.exited;
    },
  };
}

function startService(dir: string): Promise<Target> {
  const command = values.binary ? [values.binary] : [process.execPath, "run", "src/main.ts"];
  return startTarget(command, {
    PATH: process.env.PATH ?? "",
    SERVER_HOST: "127.0.0.1",
    SERVER_PORT: "0",
    DATABASE_PATH: join(dir, "bench.db"),
    ...CONFIGURED_SERVICE_ENV,
  });
}

/** The floor: a bare Bun server that refuses every request without reading its body. */
function startReference(): Promise<Target> {
  const source = `const server = Bun.serve({ hostname: "127.0.0.1", port: 0,
    fetch: () => new Response("no", { status: 403 }) });
  console.log(JSON.stringify({ msg: "listening", url: server.url.href.replace(/\\/$/, "") }));`;
  return startTarget([process.execPath, "-e", source]);
}

const dir = mkdtempSync(join(tmpdir(), "bench-oversize-"));
try {
  console.log(
    `${clients} clients at once, ${values.megabytes} MB each, ${values.binary ?? "bun run src/main.ts"}`,
  );
  const reference = await attack("minimal Bun server", await startReference());
  const service = await attack("voice-agent", await startService(dir));
  console.log(
    `growth: voice-agent ${mib(service)} (limit 50 MiB: ${service <= 50 * 1024 * 1024 ? "ok" : "OVER"}), reference ${mib(reference)}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
