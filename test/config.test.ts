import { describe, expect, test } from "bun:test";
import { integrationStatus, loadConfig, requireIntegration } from "../src/config.ts";
import { IntegrationNotConfiguredError } from "../src/errors.ts";
import { configError, INTEGRATIONS_ENV } from "./helpers/context.ts";

describe("loadConfig", () => {
  test("an empty environment gives the documented defaults", () => {
    const config = loadConfig({});
    expect(config.server).toEqual({
      host: "0.0.0.0",
      port: 8080,
      reusePort: false,
      workers: 1,
      externalUrl: undefined,
      endpointSecret: undefined,
      trustedProxies: new Set(),
      shutdownDrainMs: 60_000,
      shutdownGoodbyeMs: 5_000,
    });
    expect(config.streams).toEqual({
      startTimeoutMs: 5_000,
      maxPending: 200,
      maxPendingPerClient: 20,
    });
    expect(config.databasePath).toBe("./data/voice-agent.db");
    expect(config.databaseUrl).toBeUndefined();
    expect(config.redis).toEqual({ url: undefined, keyPrefix: "voice-agent:" });
    expect(config.instances).toEqual({ heartbeatMs: 5_000, lostAfterMs: 20_000 });
    expect(config.deepgram).toEqual({
      apiKey: undefined,
      agentUrl: "wss://agent.deepgram.com/v1/agent/converse",
      apiUrl: "https://api.deepgram.com",
      mipOptOut: true,
    });
    expect(config.twilio.apiUrl).toBe("https://api.twilio.com");
    expect(config.twilio.machineDetection).toEqual({
      timeoutS: 30,
      speechThresholdMs: 2400,
      speechEndThresholdMs: 1200,
      silenceTimeoutMs: 5000,
    });
    expect(config.calls.amdVerdictTimeoutMs).toBe(35_000);
    expect(config.agent).toEqual({
      llmProvider: "open_ai",
      llmModel: "gpt-4o-mini",
      voiceModel: "aura-2-thalia-en",
      ttsProvider: "deepgram",
      sttModel: "flux-general-en",
    });
    expect(config.logLevel).toBe("info");
  });

  test("values are converted and trimmed; trailing slashes leave URLs", () => {
    const config = loadConfig({
      SERVER_PORT: " 9000 ",
      SHUTDOWN_DRAIN_MS: "1500",
      TWILIO_API_URL: "http://127.0.0.1:4010/",
      LOG_LEVEL: "debug",
      ...INTEGRATIONS_ENV,
    });
    expect(config.server.port).toBe(9000);
    expect(config.server.shutdownDrainMs).toBe(1500);
    expect(config.server.externalUrl).toBe("https://voice.example.com");
    expect(config.twilio.apiUrl).toBe("http://127.0.0.1:4010");
    expect(config.logLevel).toBe("debug");
  });

  test("empty values count as unset", () => {
    const config = loadConfig({ TWILIO_AUTH_TOKEN: "", SERVER_PORT: "  " });
    expect(config.twilio.authToken).toBeUndefined();
    expect(config.server.port).toBe(8080);
  });

  test("variables the service does not know are ignored", () => {
    expect(() => loadConfig({ PATH: "/usr/bin", SOMETHING_ELSE: "x" })).not.toThrow();
  });

  test("every bad variable is named in one error, with why", () => {
    const error = configError({
      SERVER_PORT: "abc",
      SERVER_EXTERNAL_URL: "not a url",
      DEEPGRAM_AGENT_URL: "https://agent.deepgram.com",
      TWILIO_ACCOUNT_SID: "XY123",
      TWILIO_PHONE_NUMBER: "555-1234",
      LLM_PROVIDER: "skynet",
      LOG_LEVEL: "loud",
      SHUTDOWN_DRAIN_MS: "-5",
    });
    const named = error.problems.map((problem) => problem.split(":")[0]);
    expect(named.sort()).toEqual(
      [
        "SERVER_PORT",
        "SERVER_EXTERNAL_URL",
        "DEEPGRAM_AGENT_URL",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_PHONE_NUMBER",
        "LLM_PROVIDER",
        "LOG_LEVEL",
        "SHUTDOWN_DRAIN_MS",
      ].sort(),
    );
    expect(error.message).toContain('SERVER_PORT: expected an integer from 0 to 65535 (got "abc")');
    expect(error.message).toContain("LLM_PROVIDER: expected one of open_ai, anthropic, google");
  });

  test("DEEPGRAM_MIP_OPT_OUT: opted out unless set to false; anything but a boolean is refused", () => {
    expect(loadConfig({}).deepgram.mipOptOut).toBe(true);
    expect(loadConfig({ DEEPGRAM_MIP_OPT_OUT: "false" }).deepgram.mipOptOut).toBe(false);
    expect(loadConfig({ DEEPGRAM_MIP_OPT_OUT: "true" }).deepgram.mipOptOut).toBe(true);
    expect(configError({ DEEPGRAM_MIP_OPT_OUT: "maybe" }).problems).toEqual([
      'DEEPGRAM_MIP_OPT_OUT: expected true or false (got "maybe")',
    ]);
  });

  test("a port out of range is refused", () => {
    expect(configError({ SERVER_PORT: "70000" }).problems).toEqual([
      'SERVER_PORT: expected an integer from 0 to 65535 (got "70000")',
    ]);
  });

  test("CALL_EVENTS_FLUSH_MS and SERVER_REUSE_PORT: defaults, and values outside their range refused", () => {
    expect(loadConfig({}).callEventsFlushMs).toBe(200);
    expect(loadConfig({ CALL_EVENTS_FLUSH_MS: "50" }).callEventsFlushMs).toBe(50);
    expect(loadConfig({ SERVER_REUSE_PORT: "true" }).server.reusePort).toBe(true);
    expect(configError({ CALL_EVENTS_FLUSH_MS: "0" }).problems).toEqual([
      'CALL_EVENTS_FLUSH_MS: expected an integer number of milliseconds from 1 to 5000 (got "0")',
    ]);
    expect(configError({ CALL_EVENTS_FLUSH_MS: "60000" }).problems).toHaveLength(1);
    expect(configError({ SERVER_REUSE_PORT: "yes please" }).problems).toEqual([
      'SERVER_REUSE_PORT: expected true or false (got "yes please")',
    ]);
  });

  test("secret values are never echoed in errors", () => {
    const error = configError({ ENDPOINT_SECRET: "tooshort-secret" });
    expect(error.message).toContain("ENDPOINT_SECRET: expected at least 16 characters");
    expect(error.message).not.toContain("tooshort-secret");
  });
});

describe("a fleet's settings", () => {
  test("PostgreSQL and Redis URLs are checked for their scheme and never echoed", () => {
    const error = configError({
      DATABASE_URL: "mysql://user:hunter2@db/voice",
      REDIS_URL: "http://user:hunter2@cache",
    });
    expect(error.problems.map((problem) => problem.split(":")[0])).toEqual([
      "DATABASE_URL",
      "REDIS_URL",
    ]);
    expect(error.message).not.toContain("hunter2");
    const config = loadConfig({
      DATABASE_URL: "postgresql://voice@db:5432/voice",
      REDIS_URL: "rediss://cache:6380",
      REDIS_KEY_PREFIX: "staging:",
    });
    expect(config.databaseUrl).toBe("postgresql://voice@db:5432/voice");
    expect(config.redis).toEqual({ url: "rediss://cache:6380", keyPrefix: "staging:" });
  });

  test("an instance is declared dead only after at least two missed beats", () => {
    expect(
      configError({ INSTANCE_HEARTBEAT_MS: "5000", INSTANCE_LOST_AFTER_MS: "8000" }).problems,
    ).toEqual([
      'INSTANCE_LOST_AFTER_MS: must be at least twice INSTANCE_HEARTBEAT_MS (5000 ms), or one late beat ends a healthy instance\'s calls (got "8000")',
    ]);
    expect(
      loadConfig({ INSTANCE_HEARTBEAT_MS: "100", INSTANCE_LOST_AFTER_MS: "300" }).instances,
    ).toEqual({ heartbeatMs: 100, lostAfterMs: 300 });
  });
});

describe("integrations", () => {
  test("nothing configured: each integration lists the variables to set", () => {
    expect(integrationStatus(loadConfig({}))).toEqual({
      twilio: {
        configured: false,
        missing: [
          "TWILIO_ACCOUNT_SID",
          "TWILIO_AUTH_TOKEN",
          "TWILIO_PHONE_NUMBER",
          "SERVER_EXTERNAL_URL",
        ],
      },
      deepgram: { configured: false, missing: ["DEEPGRAM_API_KEY"] },
    });
  });

  test("all credentials present: both configured", () => {
    const status = integrationStatus(loadConfig(INTEGRATIONS_ENV));
    expect(status.twilio).toEqual({ configured: true, missing: [] });
    expect(status.deepgram).toEqual({ configured: true, missing: [] });
  });

  test("requireIntegration answers 503 naming what is missing", () => {
    const config = loadConfig({ ...INTEGRATIONS_ENV, TWILIO_AUTH_TOKEN: "" });
    expect(() => requireIntegration(config, "deepgram")).not.toThrow();
    let thrown: unknown;
    try {
      requireIntegration(config, "twilio");
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(IntegrationNotConfiguredError);
    expect(thrown).toMatchObject({
      status: 503,
      code: "INTEGRATION_NOT_CONFIGURED",
      message: "Twilio is not configured: set TWILIO_AUTH_TOKEN",
    });
  });
});
