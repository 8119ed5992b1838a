/**
 * The whole outbound world on loopback: the real service (its public URL is its own address) with the
 * real twilio SDK pointed at the fake Twilio REST server, the fake Voice Agent and the fake TTS.
 */
import { type Config, loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import type { Service } from "../../src/service.ts";
import { FakeTtsServer } from "../fakes/tts-server.ts";
import { FakeTwilioRest } from "../fakes/twilio-rest-server.ts";
import { freePort } from "../fakes/twilio-webhooks.ts";
import { type FakeAgentOptions, FakeVoiceAgentServer } from "../fakes/voice-agent-server.ts";
import { startTestService } from "./test-service.ts";

export const ACCOUNT_SID = `AC${"7".repeat(32)}`;
export const AUTH_TOKEN = "outbound-auth-token";
export const SECRET = "outbound-endpoint-secret";
export const FROM = "+15550001111";
export const DEEPGRAM_KEY = "dg-outbound-key";

export interface OutboundHarness {
  service: Service;
  twilio: FakeTwilioRest;
  agent: FakeVoiceAgentServer;
  tts: FakeTtsServer;
  logs: Record<string, unknown>[];
  /** POST /make-call with the secret. */
  makeCall(body: unknown, secret?: string | null): Promise<Response>;
  /** GET with the secret. */
  get(path: string): Promise<Response>;
  stop(): Promise<void>;
}

/** The service's settings against these fakes, on `port` (its own public URL). */
export function outboundConfig(
  port: number,
  fakes: { twilio: FakeTwilioRest; agent: FakeVoiceAgentServer; tts: FakeTtsServer },
  env: Record<string, string> = {},
): Config {
  return loadConfig({
    SERVER_HOST: "127.0.0.1",
    SERVER_PORT: String(port),
    SERVER_EXTERNAL_URL: `http://127.0.0.1:${port}`,
    ENDPOINT_SECRET: SECRET,
    DATABASE_PATH: ":memory:",
    DEEPGRAM_API_KEY: DEEPGRAM_KEY,
    DEEPGRAM_AGENT_URL: fakes.agent.url,
    DEEPGRAM_API_URL: fakes.tts.url,
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_PHONE_NUMBER: FROM,
    TWILIO_API_URL: fakes.twilio.url,
    ...env,
  });
}

export async function startOutboundHarness(
  env: Record<string, string> = {},
  agentOptions: Omit<FakeAgentOptions, "apiKey"> = {},
): Promise<OutboundHarness> {
  const twilio = FakeTwilioRest.start(ACCOUNT_SID, AUTH_TOKEN);
  const agent = FakeVoiceAgentServer.start({
    apiKey: DEEPGRAM_KEY,
    greetingMs: 300,
    ...agentOptions,
  });
  const tts = FakeTtsServer.start(DEEPGRAM_KEY);
  const config = outboundConfig(
    freePort(),
    { twilio, agent, tts },
    { AMD_VERDICT_TIMEOUT_MS: "60000", HANGUP_SETTLE_MS: "30", SHUTDOWN_DRAIN_MS: "50", ...env },
  );
  const logs: Record<string, unknown>[] = [];
  const service = await startTestService(
    config,
    createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) }),
  );
  const auth = (secret: string | null): Record<string, string> =>
    secret === null ? {} : { authorization: `Bearer ${secret}` };
  return {
    service,
    twilio,
    agent,
    tts,
    logs,
    makeCall: (body, secret = SECRET) =>
      fetch(`${service.url}/make-call`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth(secret) },
        body: JSON.stringify(body),
      }),
    get: (path) => fetch(`${service.url}${path}`, { headers: auth(SECRET) }),
    async stop() {
      await service.shutdown("test over");
      twilio.stop();
      agent.stop();
      tts.stop();
    },
  };
}
