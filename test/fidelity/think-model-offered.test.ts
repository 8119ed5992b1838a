/**
 * Fidelity: LLM_MODEL is checked at start-up against the think models Deepgram offers now
 * (`GET /v1/agent/settings/think/models` on the agent host), since lists compiled into the binary
 * drift as models are added and retired. Against the fake Voice Agent, which serves that list.
 */
import { afterEach, expect, test } from "bun:test";
import { agentRestBase, checkThinkModel } from "../../src/adapters/deepgram-models.ts";
import { FakeVoiceAgentServer } from "../fakes/voice-agent-server.ts";
import { type BridgeHarness, startBridgeHarness } from "../helpers/bridge-harness.ts";
import { eventually } from "../helpers/eventually.ts";

let harness: BridgeHarness | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

test("the agent host's REST base comes from DEEPGRAM_AGENT_URL", () => {
  expect(agentRestBase("wss://agent.deepgram.com/v1/agent/converse")).toBe(
    "https://agent.deepgram.com",
  );
  expect(agentRestBase("ws://127.0.0.1:4000/v1/agent/converse")).toBe("http://127.0.0.1:4000");
});

test("a model Deepgram no longer offers is a warning at start-up naming what it offers", async () => {
  harness = await startBridgeHarness(
    { LLM_PROVIDER: "anthropic", LLM_MODEL: "claude-3-5-haiku-latest" },
    { thinkModels: [{ id: "claude-4-5-haiku-latest", provider: "anthropic" }] },
  );
  const warning = await eventually(
    () => harness?.logs.find((line) => String(line.msg).startsWith("Deepgram does not offer")),
    "the warning",
  );
  expect(String(warning.msg)).toContain("LLM_MODEL=claude-3-5-haiku-latest");
  expect(String(warning.msg)).toContain("claude-4-5-haiku-latest");
  expect(harness.agent.modelListRequests).toBe(1);
});

test("an offered model is an info line; a refused key or no answer is 'unchecked'", async () => {
  harness = await startBridgeHarness();
  await eventually(
    () => harness?.logs.find((line) => line.msg === "Deepgram offers LLM_MODEL"),
    "the info line",
  );
  const agent = FakeVoiceAgentServer.start({ apiKey: "right" });
  try {
    const wrongKey = await checkThinkModel({
      agentUrl: agent.url,
      apiKey: "wrong",
      provider: "open_ai",
      model: "gpt-4o-mini",
      timeoutMs: 2_000,
    });
    expect(wrongKey).toEqual({ verdict: "unchecked", reason: "HTTP 401" });
  } finally {
    agent.stop();
  }
  const nobody = await checkThinkModel({
    agentUrl: "ws://127.0.0.1:9/v1/agent/converse",
    apiKey: "k",
    provider: "open_ai",
    model: "gpt-4o-mini",
    timeoutMs: 2_000,
  });
  expect(nobody.verdict).toBe("unchecked");
});
