/**
 * Fidelity: the Settings extras the live Voice Agent takes (protocols.md section F, `@deepgram/sdk`
 * 5.13's `AgentV1Settings`): top-level `mip_opt_out` from DEEPGRAM_MIP_OPT_OUT (opted out by
 * default) and each scenario's Flux `keyterms` on `agent.listen.provider`, checked in the settings
 * the fake agent received over a real socket, and refused by the fake when misshapen.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { settingsMessage } from "../../src/protocol/deepgram-agent.ts";
import { dentalReceptionist } from "../../src/scenarios/dental-receptionist/index.ts";
import { office } from "../../src/scenarios/dental-receptionist/office.ts";
import { company } from "../../src/scenarios/insurance-followup/company.ts";
import { insuranceFollowUp } from "../../src/scenarios/insurance-followup/index.ts";
import { testScenario } from "../fakes/test-scenario.ts";
import { settingsProblems } from "../fakes/voice-agent-server.ts";
import { agentSettings } from "../helpers/agent-settings.ts";
import { type BridgeHarness, startBridgeHarness } from "../helpers/bridge-harness.ts";

let harness: BridgeHarness | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

interface ReceivedSettings {
  mip_opt_out?: unknown;
  agent: { listen: { provider: Record<string, unknown> } };
}

/** The Settings the fake agent received for one call of `scenario`. */
async function settingsFor(
  scenario: string,
  env: Record<string, string> = {},
  direction: "inbound" | "outbound" = "inbound",
): Promise<ReceivedSettings> {
  harness = await startBridgeHarness(env, {}, [dentalReceptionist, insuranceFollowUp]);
  await harness.call({ customParameters: { scenario, direction } });
  const agent = await harness.agent.nextSession();
  return agent.settings as unknown as ReceivedSettings;
}

const DENTAL_KEYTERMS = ["Bright Smile Dental", "Sarah Patel", "Michael Chen", "Emily Rogers"];
const INSURANCE_KEYTERMS = ["Prestige Home Insurance", "Maria Lopez", "James Carter"];

describe("mip_opt_out", () => {
  test("calls are opted out of Deepgram's Model Improvement Program by default", async () => {
    const settings = await settingsFor(testScenario.id);
    expect(settings.mip_opt_out).toBe(true);
  });

  test("DEEPGRAM_MIP_OPT_OUT=false opts in", async () => {
    const settings = await settingsFor(testScenario.id, { DEEPGRAM_MIP_OPT_OUT: "false" });
    expect(settings.mip_opt_out).toBe(false);
  });
});

describe("keyterms", () => {
  test("the dental receptionist primes Flux with the office's and its providers' names", async () => {
    const settings = await settingsFor(dentalReceptionist.id);
    expect(settings.agent.listen.provider).toEqual({
      type: "deepgram",
      version: "v2",
      model: "flux-general-en",
      keyterms: DENTAL_KEYTERMS,
    });
  });

  test("the insurance follow-up primes Flux with the company's and its licensed agents' names", async () => {
    const settings = await settingsFor(insuranceFollowUp.id, {}, "outbound");
    expect(settings.agent.listen.provider.keyterms).toEqual(INSURANCE_KEYTERMS);
  });

  test("a scenario without keyterms sends none", async () => {
    const settings = await settingsFor(testScenario.id);
    expect(Object.keys(settings.agent.listen.provider).sort()).toEqual([
      "model",
      "type",
      "version",
    ]);
  });

  test("the keyterms follow the scenario data and stay far inside Deepgram's limits", () => {
    expect(DENTAL_KEYTERMS).toEqual([
      office.name,
      ...office.providers.map(({ name }) => name.replace("Dr. ", "")),
    ]);
    expect(INSURANCE_KEYTERMS).toEqual([company.name, ...company.licensedAgents]);
    // Deepgram: up to 100 keyterms, 500 tokens across them (docs/DEEPGRAM.md).
    for (const keyterms of [DENTAL_KEYTERMS, INSURANCE_KEYTERMS]) {
      expect(keyterms.length).toBeLessThanOrEqual(100);
      expect(keyterms.join(" ").split(" ").length).toBeLessThan(100);
      expect(keyterms.every((term) => term.trim() === term && term !== "")).toBe(true);
    }
  });
});

describe("the fake agent judges the extras as the live one does", () => {
  const built = (keyterms?: string[]) =>
    JSON.parse(settingsMessage(agentSettings(keyterms ? { keyterms } : {})));

  test("what the codec builds has no problems", () => {
    expect(settingsProblems(built())).toEqual([]);
    expect(settingsProblems(built(DENTAL_KEYTERMS))).toEqual([]);
  });

  test("misplaced or misshapen extras are refused", () => {
    const withMip = { ...built(), mip_opt_out: "yes" };
    expect(settingsProblems(withMip)).toEqual(["mip_opt_out must be a boolean"]);

    const nested = built();
    nested.agent.mip_opt_out = true;
    expect(settingsProblems(nested)).toContain(
      "mip_opt_out belongs at the top level, not under agent",
    );

    const singular = built();
    singular.agent.listen.provider.keyterm = "Patel";
    expect(settingsProblems(singular)).toEqual([
      "agent.listen.provider.keyterm is not a field (keyterms)",
    ]);

    const asString = built();
    asString.agent.listen.provider.keyterms = "Patel";
    expect(settingsProblems(asString)).toEqual([
      "agent.listen.provider.keyterms must be an array of strings",
    ]);

    const tooMany = built(Array.from({ length: 501 }, (_, index) => `term${index}`));
    expect(settingsProblems(tooMany)).toEqual(["agent.listen.provider.keyterms exceed 500 tokens"]);
  });
});
