/**
 * Runs the real service on a random port with the fake Voice Agent behind it, and places fake Twilio
 * calls into `WS /twilio` with fresh stream tokens: the whole media path over real sockets.
 */
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import type { Scenario } from "../../src/scenarios/types.ts";
import type { Service } from "../../src/service.ts";
import { testScenario } from "../fakes/test-scenario.ts";
import { type FakeCallOptions, FakeTwilioCall } from "../fakes/twilio-media-client.ts";
import { type FakeAgentOptions, FakeVoiceAgentServer } from "../fakes/voice-agent-server.ts";
import { NO_DEEPGRAM_REST } from "./context.ts";
import { grantStream, startTestService } from "./test-service.ts";

export const AGENT_KEY = "dg-test-key";

export interface BridgeHarness {
  service: Service;
  agent: FakeVoiceAgentServer;
  /** Log lines written by the service, parsed. */
  logs: Record<string, unknown>[];
  streamUrl: string;
  /**
   * A fake Twilio call with a valid one-time token (unless `customParameters.token` is given), granted
   * for the scenario, direction and numbers in `customParameters`.
   */
  call(options?: Partial<FakeCallOptions>): Promise<FakeTwilioCall>;
  stop(): Promise<void>;
}

export async function startBridgeHarness(
  env: Record<string, string> = {},
  agentOptions: FakeAgentOptions = {},
  extraScenarios: Scenario[] = [],
): Promise<BridgeHarness> {
  const agent = FakeVoiceAgentServer.start({ apiKey: AGENT_KEY, greetingMs: 400, ...agentOptions });
  const logs: Record<string, unknown>[] = [];
  const config = loadConfig({
    SERVER_HOST: "127.0.0.1",
    SERVER_PORT: "0",
    DATABASE_PATH: ":memory:",
    DEEPGRAM_API_KEY: AGENT_KEY,
    DEEPGRAM_API_URL: NO_DEEPGRAM_REST,
    DEEPGRAM_AGENT_URL: agent.url,
    DEFAULT_SCENARIO: testScenario.id,
    HANGUP_SETTLE_MS: "30",
    SHUTDOWN_DRAIN_MS: "50",
    ...env,
  });
  const logger = createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  const service = await startTestService(config, logger, {
    scenarios: new Map(
      [testScenario, ...extraScenarios].map((scenario) => [scenario.id, scenario]),
    ),
  });
  const streamUrl = `${service.url.replace("http", "ws")}/twilio`;
  return {
    service,
    agent,
    logs,
    streamUrl,
    async call(options = {}) {
      const callSid = options.callSid ?? `CA${crypto.randomUUID().replaceAll("-", "")}`;
      const parameters: Record<string, string> = {
        from: "+15557654321",
        to: "+15550001111",
        ...options.customParameters,
      };
      // What the service would have granted for this call; the stream itself carries only the token.
      const token = await grantStream(
        service,
        callSid,
        {
          scenario: parameters.scenario ?? testScenario.id,
          direction: parameters.direction === "outbound" ? "outbound" : "inbound",
          from: parameters.from ?? "",
          to: parameters.to ?? "",
        },
        { answered: true },
      );
      return FakeTwilioCall.connect({
        url: streamUrl,
        speed: 20,
        ...options,
        callSid,
        customParameters: { token, ...parameters },
      });
    },
    async stop() {
      await service.shutdown("test over");
      agent.stop();
    },
  };
}
