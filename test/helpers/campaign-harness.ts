/**
 * Campaigns end to end on loopback, on a clock the test moves: the real service (the dialer's
 * rounds run when the test calls `round`, never on their own), the real twilio SDK pointed at the
 * fake Twilio REST server whose call log is stamped with the same clock, and helpers to end the
 * calls it places the way Twilio (and the agent's disposition) would.
 */
import { createLogger } from "../../src/log.ts";
import type { Service } from "../../src/service.ts";
import { ManualClock } from "../fakes/clock.ts";
import { FakeTtsServer } from "../fakes/tts-server.ts";
import { type FakeCall, FakeTwilioRest } from "../fakes/twilio-rest-server.ts";
import { freePort } from "../fakes/twilio-webhooks.ts";
import { FakeVoiceAgentServer } from "../fakes/voice-agent-server.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  DEEPGRAM_KEY,
  outboundConfig,
  SECRET,
} from "./outbound-harness.ts";
import { startTestService } from "./test-service.ts";

/** The dialer never runs a round on its own: the test runs each with `round`. */
const NEVER_MS = 10 * 365 * 86_400_000;

export interface CampaignHarness {
  service: Service;
  twilio: FakeTwilioRest;
  clock: ManualClock;
  logs: Record<string, unknown>[];
  /** A request with the secret; `body` is sent as JSON. */
  request(method: string, path: string, body?: unknown): Promise<Response>;
  /** One dialer round. @returns the calls it placed */
  round(): Promise<FakeCall[]>;
  /** Ends a placed call: with the agent's disposition (then Twilio's `completed`) or a Twilio status. */
  end(callSid: string, how: { outcome: string } | { status: string }): Promise<void>;
  /** Stops the service (the fakes stay, for a restart). */
  stopService(): Promise<void>;
  /** Starts the service again on the same database. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startCampaignHarness(
  start: string,
  env: Record<string, string> = {},
): Promise<CampaignHarness> {
  const clock = new ManualClock(start);
  const twilio = FakeTwilioRest.start(ACCOUNT_SID, AUTH_TOKEN);
  twilio.clock = clock;
  const agent = FakeVoiceAgentServer.start({ apiKey: DEEPGRAM_KEY });
  const tts = FakeTtsServer.start(DEEPGRAM_KEY);
  const config = outboundConfig(
    freePort(),
    { twilio, agent, tts },
    { SHUTDOWN_DRAIN_MS: "50", ...env },
  );
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  // Calls are settled as soon as they end: the test's own round after an end sees it.
  const open = () =>
    startTestService(config, logger, { clock, dialer: { pollMs: NEVER_MS, settleMs: 0 } });
  let service = await open();
  const harness: CampaignHarness = {
    get service() {
      return service;
    },
    twilio,
    clock,
    logs,
    request: (method, path, body) =>
      fetch(`${service.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${SECRET}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    async round() {
      const before = new Set(twilio.calls.keys());
      await service.dialer?.tick();
      return [...twilio.calls.values()].filter((call) => !before.has(call.sid));
    },
    async end(callSid, how) {
      if ("outcome" in how) {
        await service.store.calls.update(callSid, { outcome: how.outcome });
        await twilio.sendStatus(callSid, "completed");
      } else {
        await twilio.sendStatus(callSid, how.status);
      }
    },
    async stopService() {
      await service.shutdown("test restart");
    },
    async restart() {
      service = await open();
    },
    async stop() {
      await service.shutdown("test over");
      twilio.stop();
      agent.stop();
      tts.stop();
    },
  };
  return harness;
}
