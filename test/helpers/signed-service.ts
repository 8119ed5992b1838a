/**
 * The real service as Twilio and an operator meet it: Twilio and Deepgram configured (the fake
 * Voice Agent behind it), a public URL that is the local port, an endpoint secret, signed webhooks.
 * Shared by the security tests, which attack it the way an outsider would.
 */
import { type Config, loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import type { Service, ServiceOverrides } from "../../src/service.ts";
import { freePort, postSigned } from "../fakes/twilio-webhooks.ts";
import { FakeVoiceAgentServer } from "../fakes/voice-agent-server.ts";
import { NO_DEEPGRAM_REST } from "./context.ts";
import { startTestService } from "./test-service.ts";

export const AUTH_TOKEN = "twilio-auth-token-for-tests";
export const SECRET = "endpoint-secret-for-tests-0123456789";
export const OFFICE_NUMBER = "+15550001111";
export const CALLER = "+15557654321";
export const ACCOUNT_SID = `AC${"1".repeat(32)}`;

const DEEPGRAM_KEY = "dg-key";

/**
 * The environment of a service Twilio and the fake agent at `agentUrl` can reach on loopback
 * `port` (its public URL), with the endpoint secret: for in-process services and child processes.
 */
export function signedServiceEnv(port: number, agentUrl: string): Record<string, string> {
  return {
    SERVER_HOST: "127.0.0.1",
    SERVER_PORT: String(port),
    SERVER_EXTERNAL_URL: `http://127.0.0.1:${port}`,
    ENDPOINT_SECRET: SECRET,
    DEEPGRAM_API_KEY: DEEPGRAM_KEY,
    DEEPGRAM_API_URL: NO_DEEPGRAM_REST,
    DEEPGRAM_AGENT_URL: agentUrl,
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_PHONE_NUMBER: OFFICE_NUMBER,
    INBOUND_SCENARIOS: `${OFFICE_NUMBER}=dental-receptionist`,
  };
}

export interface SignedService {
  service: Service;
  config: Config;
  agent: FakeVoiceAgentServer;
  publicUrl: string;
  logs: Record<string, unknown>[];
  /** A signed `/incoming-call` for `callSid` from CALLER to OFFICE_NUMBER. */
  incoming(callSid: string, params?: Record<string, string>): Promise<Response>;
  /** A signed webhook to any path. */
  signed(path: string, params: Record<string, string>): Promise<Response>;
  /** A request with the endpoint secret. */
  authed(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

export async function startSignedService(
  env: Record<string, string> = {},
  overrides: ServiceOverrides = {},
): Promise<SignedService> {
  const agent = FakeVoiceAgentServer.start({ apiKey: DEEPGRAM_KEY, greetingMs: 100 });
  const port = freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    ...signedServiceEnv(port, agent.url),
    DATABASE_PATH: ":memory:",
    HANGUP_SETTLE_MS: "30",
    SHUTDOWN_DRAIN_MS: "50",
    ...env,
  });
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  const service = await startTestService(config, logger, overrides).catch((error: unknown) => {
    agent.stop();
    throw error;
  });
  const signed = (path: string, params: Record<string, string>) =>
    postSigned({ serverUrl: service.url, publicUrl, path, params, authToken: AUTH_TOKEN });
  return {
    service,
    config,
    agent,
    publicUrl,
    logs,
    signed,
    incoming: (callSid, params = {}) =>
      signed("/incoming-call", {
        CallSid: callSid,
        AccountSid: ACCOUNT_SID,
        From: CALLER,
        To: OFFICE_NUMBER,
        CallStatus: "ringing",
        ...params,
      }),
    authed: (path, init = {}) =>
      fetch(`${service.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${SECRET}`, ...init.headers },
      }),
    async stop() {
      await service.shutdown("test over");
      agent.stop();
    },
  };
}
