/** Why the Voice Agent socket failed to open, in plain words: a refused key, another refusal, no connection. */
import { afterAll, expect, test } from "bun:test";
import { deepgramAgentConnector } from "../../src/adapters/deepgram-agent.ts";
import { systemClock } from "../../src/clock.ts";
import { freePort } from "../fakes/twilio-webhooks.ts";
import { FakeVoiceAgentServer } from "../fakes/voice-agent-server.ts";
import { captureLogger } from "../helpers/context.ts";

const KEY = "dg-agent-key-0123456789";
const agent = FakeVoiceAgentServer.start({ apiKey: KEY });
/** Refuses every upgrade with 403, as Deepgram does for a key whose project lacks the Voice Agent. */
const forbidding = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: () =>
    Response.json(
      { err_code: "INSUFFICIENT_PERMISSIONS", err_msg: "No access.", request_id: "r-1" },
      { status: 403 },
    ),
});
afterAll(() => {
  agent.stop();
  forbidding.stop(true);
});

function connect(url: string, apiKey: string): Promise<unknown> {
  const handlers = { message() {}, audio() {}, closed() {} };
  return deepgramAgentConnector({
    url,
    apiKey,
    // Far beyond the test's own limit: a refusal must fail at once, not by this timeout.
    connectTimeoutMs: 60_000,
    keepAliveMs: 60_000,
    clock: systemClock,
    logger: captureLogger().logger,
  })("{}", handlers);
}

test("a wrong key: the upgrade's HTTP 401 becomes “Deepgram rejected the API key (HTTP 401)”", async () => {
  const failure = (await connect(agent.url, "dg-wrong-key").catch((error) => error)) as Error;
  expect(failure.message).toBe("Deepgram rejected the API key (HTTP 401)");
  expect(failure.message).not.toContain("dg-wrong-key");
  expect(agent.rejectedUpgrades).toBe(1);
});

test("another refusal names its status; no connection at all is not called a rejected key", async () => {
  const forbidden = (await connect(
    `ws://127.0.0.1:${forbidding.port}/v1/agent/converse`,
    KEY,
  ).catch((error) => error)) as Error;
  expect(forbidden.message).toStartWith(
    "Deepgram refused the API key for the Voice Agent (HTTP 403",
  );
  const unreachable = (await connect(`ws://127.0.0.1:${freePort()}/`, KEY).catch(
    (error) => error,
  )) as Error;
  expect(unreachable.message).toStartWith("could not connect to Deepgram's Voice Agent (");
  expect(unreachable.message).not.toContain("rejected");
});
