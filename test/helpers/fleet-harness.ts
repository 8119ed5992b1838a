/**
 * A fleet on loopback: N real instances of the service on one fresh PostgreSQL database and one
 * fresh Redis key prefix, behind the round-robin proxy, whose address is every instance's public
 * URL, so Twilio's webhooks, the API and the media streams land on instances in turn. Shared fakes:
 * Twilio REST (the real SDK pointed at it), the Voice Agent, the TTS.
 */
import { join } from "node:path";
import type { Subprocess } from "bun";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { type Service, startService } from "../../src/service.ts";
import { RoundRobinProxy } from "../fakes/round-robin-proxy.ts";
import { FakeTtsServer } from "../fakes/tts-server.ts";
import { FakeTwilioRest } from "../fakes/twilio-rest-server.ts";
import { freePort, postSigned } from "../fakes/twilio-webhooks.ts";
import { FakeVoiceAgentServer } from "../fakes/voice-agent-server.ts";
import { listeningUrl } from "./listening.ts";
import { freshDatabase, type TestDatabase } from "./postgres.ts";
import { freshPrefix, TEST_REDIS_URL, type TestPrefix } from "./redis.ts";

const MAIN = join(import.meta.dir, "../../src/main.ts");

export const FLEET_ACCOUNT_SID = `AC${"9".repeat(32)}`;
export const FLEET_AUTH_TOKEN = "fleet-auth-token";
export const FLEET_SECRET = "fleet-endpoint-secret-0123456789";
export const FLEET_NUMBER = "+15550001111";
const DEEPGRAM_KEY = "dg-fleet-key";

export interface Fleet {
  instances: (Service | undefined)[];
  proxy: RoundRobinProxy;
  twilio: FakeTwilioRest;
  agent: FakeVoiceAgentServer;
  tts: FakeTtsServer;
  /** Every instance's log lines, by instance. */
  logs: Record<string, unknown>[][];
  /** The environment each instance is started with (a restart uses it again). */
  env: Record<string, string>;
  publicUrl: string;
  makeCall(body: unknown): Promise<Response>;
  /** GET with the secret, through the proxy. */
  get(path: string): Promise<Response>;
  /** A signed `/incoming-call` through the proxy, as Twilio posts it. */
  incoming(callSid: string, from?: string): Promise<Response>;
  /** Starts instance `index` (again), on the port it had, and puts it back into the rotation. */
  start(index: number): Promise<Service>;
  /**
   * Runs instance `index` as its own process instead (`bun run src/main.ts`, the same settings),
   * so it can be killed as an operator's would be. Resolves once it listens.
   */
  spawn(index: number): Promise<Subprocess>;
  /** The instances running as their own processes, by index. */
  processes: Map<number, Subprocess>;
  stop(): Promise<void>;
}

/**
 * `size` instances; those in `separate` run as their own processes from the start (the others
 * in this one, where tests can read their state).
 */
export async function startFleet(
  size = 3,
  extraEnv: Record<string, string> = {},
  separate: number[] = [],
): Promise<Fleet> {
  const twilio = FakeTwilioRest.start(FLEET_ACCOUNT_SID, FLEET_AUTH_TOKEN);
  const agent = FakeVoiceAgentServer.start({ apiKey: DEEPGRAM_KEY, greetingMs: 300 });
  const tts = FakeTtsServer.start(DEEPGRAM_KEY);
  const database: TestDatabase = await freshDatabase();
  const keys: TestPrefix = freshPrefix();
  const proxyPort = freePort();
  const publicUrl = `http://127.0.0.1:${proxyPort}`;
  const env: Record<string, string> = {
    SERVER_HOST: "127.0.0.1",
    SERVER_EXTERNAL_URL: publicUrl,
    ENDPOINT_SECRET: FLEET_SECRET,
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: keys.prefix,
    DEEPGRAM_API_KEY: DEEPGRAM_KEY,
    DEEPGRAM_AGENT_URL: agent.url,
    DEEPGRAM_API_URL: tts.url,
    TWILIO_ACCOUNT_SID: FLEET_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: FLEET_AUTH_TOKEN,
    TWILIO_PHONE_NUMBER: FLEET_NUMBER,
    TWILIO_API_URL: twilio.url,
    AMD_VERDICT_TIMEOUT_MS: "60000",
    HANGUP_SETTLE_MS: "30",
    SHUTDOWN_DRAIN_MS: "50",
    ...extraEnv,
  };
  const ports = Array.from({ length: size }, () => freePort());
  const logs: Record<string, unknown>[][] = ports.map(() => []);
  const instances: (Service | undefined)[] = ports.map(() => undefined);
  const proxy = RoundRobinProxy.start(
    ports.map((port) => `http://127.0.0.1:${port}`),
    proxyPort,
  );
  const start = async (index: number) => {
    const config = loadConfig({ ...env, SERVER_PORT: String(ports[index]) });
    const lines = logs[index] as Record<string, unknown>[];
    const service = await startService(
      config,
      createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line)) }),
    );
    instances[index] = service;
    proxy.set(index, service.url);
    return service;
  };
  const processes = new Map<number, Subprocess>();
  const spawn = async (index: number) => {
    const child = Bun.spawn(["bun", "run", MAIN], {
      env: {
        PATH: process.env.PATH ?? "",
        LOG_LEVEL: "info",
        ...env,
        SERVER_PORT: String(ports[index]),
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    processes.set(index, child);
    const url = await listeningUrl(child.stdout, () => new Response(child.stderr).text());
    proxy.set(index, url);
    return child;
  };
  for (let index = 0; index < size; index++) {
    if (separate.includes(index)) await spawn(index);
    else await start(index);
  }
  const authed = { authorization: `Bearer ${FLEET_SECRET}` };
  return {
    instances,
    proxy,
    twilio,
    agent,
    tts,
    logs,
    env,
    publicUrl,
    start,
    spawn,
    processes,
    makeCall: (body) =>
      fetch(`${publicUrl}/make-call`, {
        method: "POST",
        headers: { "content-type": "application/json", ...authed },
        body: JSON.stringify(body),
      }),
    get: (path) => fetch(`${publicUrl}${path}`, { headers: authed }),
    incoming: (callSid, from = "+15557654321") =>
      postSigned({
        serverUrl: publicUrl,
        publicUrl,
        path: "/incoming-call",
        params: { CallSid: callSid, From: from, To: FLEET_NUMBER, CallStatus: "ringing" },
        authToken: FLEET_AUTH_TOKEN,
      }),
    async stop() {
      await Promise.all(instances.map((service) => service?.shutdown("test over")));
      for (const child of processes.values()) child.kill("SIGKILL");
      await Promise.all([...processes.values()].map((child) => child.exited));
      proxy.stop();
      twilio.stop();
      agent.stop();
      tts.stop();
      await database.drop();
      await keys.clear();
    },
  };
}
