/** Small builders shared by tests: a valid configuration, a logger that keeps its lines, the app. */
import { createApp } from "../../src/app.ts";
import { CallBridge } from "../../src/call/bridge.ts";
import { CallRegistry } from "../../src/call/registry.ts";
import { systemClock } from "../../src/clock.ts";
import { type Config, ConfigError, loadConfig } from "../../src/config.ts";
import type { Coordination } from "../../src/fleet/coordination.ts";
import { LocalCoordination } from "../../src/fleet/local-coordination.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import { Metrics } from "../../src/ops/metrics.ts";
import type { CallPlacer } from "../../src/routes/make-call.ts";
import { openStore } from "../../src/store/index.ts";
import type { Storage } from "../../src/store/port.ts";
import { sqliteStorage } from "../../src/store/sqlite-storage.ts";
import { FakeTts } from "../fakes/session-ports.ts";

/**
 * Deepgram's REST base for services that have no fake of it: a closed loopback port, so the
 * start-up key check fails at once and nothing ever leaves the machine.
 */
export const NO_DEEPGRAM_REST = "http://127.0.0.1:9";

/** Every variable Twilio and Deepgram need, set (the trailing slash checks it is stripped). */
export const INTEGRATIONS_ENV = {
  TWILIO_ACCOUNT_SID: `AC${"a1".repeat(16)}`,
  TWILIO_AUTH_TOKEN: "twilio-token-value",
  TWILIO_PHONE_NUMBER: "+15550001111",
  SERVER_EXTERNAL_URL: "https://voice.example.com/",
  DEEPGRAM_API_KEY: "dg-key-value",
  DEEPGRAM_API_URL: NO_DEEPGRAM_REST,
};

/** The ConfigError `loadConfig` throws for `env`; fails the test when it throws none. */
export function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

/** A configuration for tests: in-memory database, random port, plus any overrides. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_PATH: ":memory:",
    SERVER_PORT: "0",
    SERVER_HOST: "127.0.0.1",
    ...overrides,
  });
}

export interface CapturedLogger {
  logger: Logger;
  /** Every line written, parsed. */
  lines: Record<string, unknown>[];
}

export function captureLogger(): CapturedLogger {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** A bridge with no scenarios and an agent that cannot be reached: for route tests that open no calls. */
export function idleBridge(
  config: Config,
  calls: CallRegistry,
  logger: Logger,
  store: Storage,
  coordination: Coordination = new LocalCoordination("instance_test", systemClock),
): CallBridge {
  return new CallBridge({
    config,
    store,
    calls,
    coordination,
    scenarios: new Map(),
    connectAgent: () => Promise.reject(new Error("no agent in this test")),
    tts: new FakeTts([]),
    apologyAudio: new Uint8Array(0),
    clock: systemClock,
    logger,
  });
}

/**
 * The whole app in-process, on an in-memory store, with an idle bridge: for route tests.
 * `twilio`: what places calls (none: Twilio is not configured).
 */
export function testApp(env: Record<string, string> = {}, twilio?: CallPlacer) {
  const calls = new CallRegistry();
  const captured = captureLogger();
  const config = testConfig(env);
  const store = sqliteStorage(openStore(":memory:"));
  const coordination = new LocalCoordination("instance_test", systemClock);
  const app = createApp({
    config,
    calls,
    store,
    bridge: idleBridge(config, calls, captured.logger, store, coordination),
    coordination,
    twilio,
    clock: systemClock,
    logger: captured.logger,
    version: "1.2.3",
    metrics: new Metrics(() => []),
  });
  return { app, calls, config, store, ...captured };
}
