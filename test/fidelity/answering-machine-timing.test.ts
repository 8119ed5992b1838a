/**
 * Fidelity: answering-machine timing. With `MachineDetection=DetectMessageEnd` Twilio's machine
 * verdict comes after the greeting (or "unknown" at `MachineDetectionTimeout`, 30 s by default), so
 * the service's local fallback must not decide "person" before Twilio can; and the tuning the
 * service sends must be within Twilio's documented ranges, which start-up enforces.
 */
import { describe, expect, test } from "bun:test";
import { TwilioRest } from "../../src/adapters/twilio-rest.ts";
import { ConfigError, describeEnvironment, loadConfig } from "../../src/config.ts";
import { FakeTwilioRest } from "../fakes/twilio-rest-server.ts";

/** Twilio's documented ranges and defaults (Calls API; error 21234), independent of the config. */
const TWILIO = {
  MACHINE_DETECTION_TIMEOUT_S: { min: 3, max: 59, default: 30 },
  MACHINE_DETECTION_SPEECH_THRESHOLD_MS: { min: 1000, max: 6000, default: 2400 },
  MACHINE_DETECTION_SPEECH_END_THRESHOLD_MS: { min: 500, max: 5000, default: 1200 },
  MACHINE_DETECTION_SILENCE_TIMEOUT_MS: { min: 2000, max: 10000, default: 5000 },
} as const;

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("Twilio's AMD tuning", () => {
  test("defaults are Twilio's own", () => {
    expect(loadConfig({}).twilio.machineDetection).toEqual({
      timeoutS: 30,
      speechThresholdMs: 2400,
      speechEndThresholdMs: 1200,
      silenceTimeoutMs: 5000,
    });
    const documented = new Map(describeEnvironment().map((v) => [v.name as string, v.default]));
    for (const [name, range] of Object.entries(TWILIO))
      expect(documented.get(name)).toBe(range.default);
  });

  test("values within Twilio's ranges are accepted, at both ends", () => {
    for (const end of ["min", "max"] as const) {
      const env = Object.fromEntries(
        Object.entries(TWILIO).map(([name, range]) => [name, String(range[end])]),
      );
      const amd = loadConfig({ ...env, AMD_VERDICT_TIMEOUT_MS: "" }).twilio.machineDetection;
      expect(Object.values(amd)).toEqual(Object.values(TWILIO).map((range) => range[end]));
    }
  });

  test("a value outside Twilio's range stops start-up, naming the variable", () => {
    for (const [name, range] of Object.entries(TWILIO)) {
      for (const bad of [range.min - 1, range.max + 1, "soon"]) {
        const found = problems({ [name]: String(bad) });
        expect(found).toHaveLength(1);
        expect(found[0]).toStartWith(`${name}: expected an integer`);
        expect(found[0]).toContain(`from ${range.min} to ${range.max}`);
      }
    }
  });
});

describe("the local verdict fallback (AMD_VERDICT_TIMEOUT_MS)", () => {
  test("unset, it is derived from MACHINE_DETECTION_TIMEOUT_S and fires only after Twilio's timeout", () => {
    for (const seconds of [3, 30, 59]) {
      const config = loadConfig({ MACHINE_DETECTION_TIMEOUT_S: String(seconds) });
      expect(config.calls.amdVerdictTimeoutMs).toBeGreaterThan(seconds * 1000);
      expect(config.calls.amdVerdictTimeoutMs).toBeLessThanOrEqual(seconds * 1000 + 10_000);
    }
    // Today's fixed 8 s fired 22 s before Twilio's default timeout could answer.
    expect(loadConfig({}).calls.amdVerdictTimeoutMs).toBeGreaterThan(30_000);
  });

  test("set explicitly, it must be longer than Twilio's timeout", () => {
    const found = problems({ AMD_VERDICT_TIMEOUT_MS: "8000" });
    expect(found).toHaveLength(1);
    expect(found[0]).toStartWith("AMD_VERDICT_TIMEOUT_MS: must be longer than");
    expect(found[0]).toContain("MACHINE_DETECTION_TIMEOUT_S");
    expect(found[0]).toContain('(got "8000")');
    expect(problems({ AMD_VERDICT_TIMEOUT_MS: "30000" })).toHaveLength(1);
    expect(problems({ AMD_VERDICT_TIMEOUT_MS: "8000", MACHINE_DETECTION_TIMEOUT_S: "5" })).toEqual(
      [],
    );
    expect(loadConfig({ AMD_VERDICT_TIMEOUT_MS: "40000" }).calls.amdVerdictTimeoutMs).toBe(40_000);
  });

  test("a bad MACHINE_DETECTION_TIMEOUT_S is reported alone, not as a second problem", () => {
    expect(
      problems({ MACHINE_DETECTION_TIMEOUT_S: "90", AMD_VERDICT_TIMEOUT_MS: "40000" }),
    ).toEqual([expect.stringMatching(/^MACHINE_DETECTION_TIMEOUT_S: /)]);
  });
});

describe("the fake Twilio holds the service to the same ranges", () => {
  test("out-of-range tuning is refused with Twilio's 21234, in range it is recorded", async () => {
    const sid = `AC${"b".repeat(32)}`;
    const fake = FakeTwilioRest.start(sid, "token");
    try {
      const rest = new TwilioRest({ accountSid: sid, authToken: "token", apiUrl: fake.url });
      const call = {
        to: "+15557654321",
        from: "+15550001111",
        twiml: "<Response/>",
        statusCallback: "https://voice.example.com/call-status",
        asyncAmdStatusCallback: "https://voice.example.com/amd-result",
        machineDetection: {
          timeoutS: 30,
          speechThresholdMs: 2400,
          speechEndThresholdMs: 1200,
          silenceTimeoutMs: 5000,
        },
      };
      const placed = await rest.placeCall(call);
      expect(fake.calls.get(placed.sid)?.machineDetectionTuning).toEqual({
        MachineDetectionTimeout: "30",
        MachineDetectionSpeechThreshold: "2400",
        MachineDetectionSpeechEndThreshold: "1200",
        MachineDetectionSilenceTimeout: "5000",
      });
      const refused = rest.placeCall({
        ...call,
        machineDetection: { ...call.machineDetection, timeoutS: 60 },
      });
      await expect(refused).rejects.toMatchObject({ status: 502, twilioCode: 21234 });
    } finally {
      fake.stop();
    }
  });
});
