/**
 * Security issue points 3, 5 and 7 at the process level: the service exits within its bounds
 * whatever clients do, leaves no call record open after a crash or a second signal, and refuses to
 * start with Twilio configured but no endpoint secret. Runs `src/main.ts` as a child process.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CallRegistry, type LiveCall } from "../../src/call/registry.ts";
import { openStore } from "../../src/store/index.ts";
import { freePort, openStream, postSigned } from "../fakes/twilio-webhooks.ts";
import { FakeVoiceAgentServer } from "../fakes/voice-agent-server.ts";
import { listeningUrl } from "../helpers/listening.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  CALLER,
  OFFICE_NUMBER,
  signedServiceEnv,
  startSignedService,
} from "../helpers/signed-service.ts";

const MAIN = join(import.meta.dir, "../../src/main.ts");

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "voice-agent-shutdown-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function spawnService(env: Record<string, string>) {
  const child = Bun.spawn(["bun", "run", MAIN], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "",
      SERVER_HOST: "127.0.0.1",
      DATABASE_PATH: join(dir, "db", "voice-agent.db"),
      LOG_LEVEL: "info",
      ...env,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  return child;
}

/** Resolves with the exit code, or undefined when the child is still running after `ms`. */
async function exitWithin(child: ReturnType<typeof spawnService>, ms: number) {
  const timer = Promise.withResolvers<undefined>();
  const handle = setTimeout(() => timer.resolve(undefined), ms);
  const code = await Promise.race([child.exited, timer.promise]);
  clearTimeout(handle);
  if (code === undefined) child.kill("SIGKILL");
  return code;
}

describe("3. SIGTERM", () => {
  test("exits within the drain, the goodbye wait and 2 s, with an idle never-started stream open", async () => {
    const port = freePort();
    const child = spawnService({
      SERVER_PORT: String(port),
      SHUTDOWN_DRAIN_MS: "300",
      SHUTDOWN_GOODBYE_MS: "200",
      STREAM_START_TIMEOUT_MS: "600000",
    });
    await listeningUrl(child.stdout, () => new Response(child.stderr).text());
    const idle = new WebSocket(`ws://127.0.0.1:${port}/twilio`);
    await new Promise((resolve) => idle.addEventListener("open", resolve));
    idle.send(JSON.stringify({ event: "connected", protocol: "Call", version: "1.0.0" }));
    // An idle keep-alive HTTP connection as well.
    await fetch(`http://127.0.0.1:${port}/health`, { keepalive: true });

    const signalled = performance.now();
    child.kill("SIGTERM");
    const code = await exitWithin(child, 300 + 200 + 2_000 + 1_500);
    idle.close();
    expect(code).toBe(0);
    expect(performance.now() - signalled).toBeLessThan(300 + 200 + 2_000);
  });

  test("the moment it says it is listening (no window where SIGTERM kills it outright)", async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const child = spawnService({ SERVER_PORT: "0" });
      await listeningUrl(child.stdout, () => new Response(child.stderr).text());
      child.kill("SIGTERM");
      expect(await exitWithin(child, 10_000)).toBe(0);
    }
  });
});

describe("3. the goodbye at the drain's deadline", () => {
  test("is waited for at most SHUTDOWN_GOODBYE_MS; calls still talking are then ended", async () => {
    const registry = new CallRegistry();
    const terminated: string[] = [];
    const neverDone: LiveCall = {
      callSid: "CA1",
      hangUp: () => new Promise(() => {}),
      terminate: (reason) => {
        terminated.push(reason);
        registry.unregister("CA1");
      },
    };
    registry.register(neverDone);
    await registry.hangUpAll("service shutting down", 20);
    expect(terminated).toEqual(["service shutting down"]);
    expect(registry.size).toBe(0);
  });
});

describe("5. records a previous life left open", () => {
  test("are ended as interrupted at start-up; this process's own records are not", async () => {
    const path = join(dir, "db", "voice-agent.db");
    const before = openStore(path, undefined, { owner: "instance_killed" });
    const base = { from_number: "+1", to_number: "+2", scenario: "dental-receptionist" };
    before.calls.create({ ...base, sid: "CA-live", direction: "inbound", status: "ringing" });
    before.calls.started("CA-live");
    before.calls.create({ ...base, sid: "CA-ringing", direction: "outbound", status: "ringing" });
    before.calls.create({ ...base, sid: "CA-done", direction: "inbound", status: "ringing" });
    before.calls.update("CA-done", { ended_at: "2026-01-01T00:00:00.000Z", end_reason: "silence" });
    before.close(); // as after kill -9: nothing else was written

    const running = await startSignedService({ DATABASE_PATH: path });
    const { calls } = running.service.store;
    expect(await calls.get("CA-live")).toMatchObject({
      status: "completed",
      end_reason: "interrupted",
      outcome: "service_shutdown",
    });
    expect(await calls.get("CA-ringing")).toMatchObject({
      status: "canceled",
      end_reason: "interrupted",
      outcome: "service_shutdown",
    });
    expect(await calls.get("CA-done")).toMatchObject({
      end_reason: "silence",
      outcome: "no_response",
    });
    expect((await calls.events("CA-live")).at(-1)).toMatchObject({ kind: "ended" });
    expect(
      running.logs.find((line) => line.msg === "ended calls a previous run left open"),
    ).toMatchObject({ count: 2 });
    await running.stop();
  });

  test("a second SIGTERM during the drain ends the live call's record before exiting", async () => {
    const agent = FakeVoiceAgentServer.start({ apiKey: "dg-key", greetingMs: 50 });
    const port = freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const child = spawnService({
      ...signedServiceEnv(port, agent.url),
      SHUTDOWN_DRAIN_MS: "600000",
    });
    const url = await listeningUrl(child.stdout, () => new Response(child.stderr).text());
    const answer = await postSigned({
      serverUrl: url,
      publicUrl,
      path: "/incoming-call",
      params: { CallSid: "CA55", AccountSid: ACCOUNT_SID, From: CALLER, To: OFFICE_NUMBER },
      authToken: AUTH_TOKEN,
    });
    const phone = await openStream(await answer.text(), "CA55");
    await agent.nextSession();

    child.kill("SIGTERM");
    await Bun.sleep(50);
    child.kill("SIGTERM");
    expect(await exitWithin(child, 5_000)).toBe(1);
    phone.hangUp();
    agent.stop();

    const store = openStore(join(dir, "db", "voice-agent.db"));
    expect(store.calls.get("CA55")).toMatchObject({
      status: "completed",
      end_reason: "interrupted",
    });
    store.close();
  });
});

describe("5. a second instance", () => {
  test("on the same database refuses to start and leaves the first one's calls alone", async () => {
    const path = join(dir, "db", "voice-agent.db");
    const first = await startSignedService({ DATABASE_PATH: path });
    await first.incoming("CA5001");
    await expect(startSignedService({ DATABASE_PATH: path })).rejects.toThrow(
      "one instance per database",
    );
    expect((await first.service.store.calls.get("CA5001"))?.ended_at).toBeNull();
    await first.stop();
    const next = await startSignedService({ DATABASE_PATH: path });
    await next.stop();
  });

  test("on the same port refuses to start (no reusePort) and ends nothing", async () => {
    const first = await startSignedService({ DATABASE_PATH: join(dir, "a.db") });
    await first.incoming("CA5002");
    const second = startSignedService({
      DATABASE_PATH: join(dir, "a-copy.db"),
      SERVER_PORT: String(first.service.port),
    });
    await expect(second).rejects.toThrow();
    expect((await first.service.store.calls.get("CA5002"))?.ended_at).toBeNull();
    await first.stop();
  });

  test("in another process: refused, naming that process", async () => {
    const child = spawnService({ SERVER_PORT: "0" });
    await listeningUrl(child.stdout, () => new Response(child.stderr).text());
    await expect(
      startSignedService({ DATABASE_PATH: join(dir, "db", "voice-agent.db") }),
    ).rejects.toThrow(`pid ${child.pid}`);
    child.kill("SIGTERM");
    expect(await exitWithin(child, 10_000)).toBe(0);
  });

  test("a lock left by a process that is gone is taken over", async () => {
    const path = join(dir, "db", "voice-agent.db");
    mkdirSync(join(dir, "db"), { recursive: true });
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: 2 ** 22 + 12345 }));
    const running = await startSignedService({ DATABASE_PATH: path });
    await running.stop();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });
});

describe("7. a service that can place calls needs a secret", () => {
  test("Twilio configured without ENDPOINT_SECRET: exit 78 saying how to make one", async () => {
    const child = spawnService({
      SERVER_PORT: "0",
      SERVER_EXTERNAL_URL: "https://voice.example.com",
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_PHONE_NUMBER: OFFICE_NUMBER,
    });
    expect(await exitWithin(child, 10_000)).toBe(78);
    const stderr = await new Response(child.stderr).text();
    expect(stderr).toContain("ENDPOINT_SECRET");
    expect(stderr).toContain("openssl rand -hex 32");
  });
});
