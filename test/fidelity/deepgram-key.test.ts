/**
 * Fidelity: a wrong Deepgram key is known before the first call fails. The service checks the key
 * at start-up (`GET /v1/projects`, in the background, never delaying listening, never logging the
 * key), and a call whose agent upgrade Deepgram answers 401 ends with the apology and a record that
 * says "Deepgram rejected the API key (HTTP 401)".
 */
import { afterEach, describe, expect, test } from "bun:test";
import { FakeTtsServer } from "../fakes/tts-server.ts";
import { freePort } from "../fakes/twilio-webhooks.ts";
import { AGENT_KEY, type BridgeHarness, startBridgeHarness } from "../helpers/bridge-harness.ts";
import { captureLogger, testConfig } from "../helpers/context.ts";
import { eventually } from "../helpers/eventually.ts";
import { startTestService } from "../helpers/test-service.ts";

const WRONG_KEY = "dg-wrong-key-abcdef123456";
let harness: BridgeHarness | undefined;
let rest: FakeTtsServer | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
  rest?.stop();
  rest = undefined;
});

/** The service with the fake Voice Agent (which knows AGENT_KEY) and the fake Deepgram REST API. */
async function start(env: Record<string, string>): Promise<BridgeHarness> {
  rest ??= FakeTtsServer.start(AGENT_KEY);
  harness = await startBridgeHarness({ DEEPGRAM_API_URL: rest.url, ...env });
  return harness;
}

const keyLine = (logs: Record<string, unknown>[]) =>
  logs.find((line) => line.check === "GET /v1/projects");

describe("at start-up", () => {
  test("a wrong key: a warning naming the problem, after listening, without the key", async () => {
    const { logs } = await start({ DEEPGRAM_API_KEY: WRONG_KEY });
    const line = await eventually(() => keyLine(logs), "the key check's log line");
    expect(line.level).toBe("warn");
    expect(line.msg).toBe(
      "Deepgram rejected the API key (HTTP 401: Invalid credentials.): calls will fail until DEEPGRAM_API_KEY is corrected",
    );
    expect(rest?.projectRequests).toEqual([{ authorization: `Token ${WRONG_KEY}` }]);
    expect(logs.findIndex((l) => l.msg === "listening")).toBeLessThan(logs.indexOf(line));
    expect(JSON.stringify(logs)).not.toContain(WRONG_KEY);
  });

  test("the right key: one info line saying Deepgram accepted it", async () => {
    const { logs } = await start({});
    const line = await eventually(() => keyLine(logs), "the key check's log line");
    expect(line).toMatchObject({
      level: "info",
      verdict: "valid",
      msg: "Deepgram accepted the API key (1 project: Fake project)",
    });
    expect(JSON.stringify(logs)).not.toContain(AGENT_KEY);
  });

  test("Deepgram unreachable: a warning that says so, not that the key was rejected", async () => {
    const { logs } = await start({ DEEPGRAM_API_URL: `http://127.0.0.1:${freePort()}` });
    const line = await eventually(() => keyLine(logs), "the key check's log line");
    expect(line.level).toBe("warn");
    expect(String(line.msg)).toStartWith("could not reach Deepgram to check the API key");
    expect(JSON.stringify(logs)).not.toContain("rejected");
  });

  test("a Deepgram that never answers delays nothing, and the check ends with the service", async () => {
    const silent = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Promise(() => {}),
    });
    try {
      const { logs, service } = await start({
        DEEPGRAM_API_URL: `http://127.0.0.1:${silent.port}`,
      });
      expect((await fetch(`${service.url}/health`)).status).toBe(200);
      expect(keyLine(logs)).toBeUndefined();
      await harness?.stop();
      harness = undefined;
      expect(keyLine(logs)).toBeUndefined();
    } finally {
      silent.stop(true);
    }
  });

  test("no key configured: no check at all", async () => {
    rest = FakeTtsServer.start(AGENT_KEY);
    const { logger, lines } = captureLogger();
    const service = await startTestService(testConfig({ DEEPGRAM_API_URL: rest.url }), logger);
    try {
      expect((await fetch(`${service.url}/health`)).status).toBe(200);
    } finally {
      await service.shutdown("test over");
    }
    expect(rest.projectRequests).toHaveLength(0);
    expect(keyLine(lines)).toBeUndefined();
  });
});

describe("on a call", () => {
  test("the agent upgrade answered 401: apology, and the record says Deepgram rejected the key", async () => {
    const { agent, service } = await start({ DEEPGRAM_API_KEY: WRONG_KEY });
    const phone = await (harness as BridgeHarness).call();
    await phone.closed;
    expect(agent.rejectedUpgrades).toBe(1);
    // The recorded apology was played before the hang-up.
    expect(phone.heardBytes).toBeGreaterThan(8_000);
    const record = await service.store.calls.get(phone.callSid);
    expect(record?.end_reason).toBe("agent_unavailable");
    const events = await service.store.calls.events(phone.callSid);
    const error = events.find((event) => event.kind === "error");
    expect(error?.data).toMatchObject({ source: "agent" });
    expect(JSON.stringify(error?.data)).toContain("Deepgram rejected the API key (HTTP 401)");
    const ended = events.find((event) => event.kind === "ended");
    expect(JSON.stringify(ended?.data)).toContain("Deepgram rejected the API key (HTTP 401)");
    expect(JSON.stringify(events)).not.toContain(WRONG_KEY);
  });
});
