/**
 * Fidelity: the Voice Agent's think model must belong to its provider (Deepgram's Settings schema
 * refuses a mismatched pair, and every call would end in the apology). Start-up defaults the model
 * per provider, refuses another provider's model, and only warns about a model in no known list.
 */
import { describe, expect, test } from "bun:test";
import { configWarnings, describeEnvironment, loadConfig } from "../../src/config.ts";
import { SDK_THINK_MODELS, type SdkThinkProvider } from "../fakes/think-models.ts";
import { configError } from "../helpers/context.ts";

/** What the live service accepts per provider (the SDK's enums), independent of src/config.ts. */
type Provider = SdkThinkProvider;
const PROVIDERS = Object.keys(SDK_THINK_MODELS) as Provider[];

describe("think provider and model", () => {
  test("an unset LLM_MODEL defaults to a model of the chosen provider", () => {
    const expected: Record<Provider, string> = {
      open_ai: "gpt-4o-mini",
      anthropic: "claude-3-5-haiku-latest",
      google: "gemini-2.0-flash",
    };
    for (const provider of PROVIDERS) {
      const { agent } = loadConfig({ LLM_PROVIDER: provider });
      expect(agent).toMatchObject({ llmProvider: provider, llmModel: expected[provider] });
      expect(SDK_THINK_MODELS[provider] as readonly string[]).toContain(agent.llmModel);
      expect(configWarnings(loadConfig({ LLM_PROVIDER: provider }))).toEqual([]);
    }
    expect(loadConfig({}).agent.llmModel).toBe("gpt-4o-mini");
    expect(loadConfig({ LLM_PROVIDER: "google", LLM_MODEL: "" }).agent.llmModel).toBe(
      "gemini-2.0-flash",
    );
  });

  test("every provider's known models are accepted without a warning", () => {
    for (const provider of PROVIDERS) {
      for (const model of SDK_THINK_MODELS[provider]) {
        const config = loadConfig({ LLM_PROVIDER: provider, LLM_MODEL: model });
        expect(config.agent.llmModel).toBe(model);
        expect(configWarnings(config)).toEqual([]);
      }
    }
  });

  test("another provider's model is refused, naming LLM_MODEL and listing this provider's models", () => {
    for (const provider of PROVIDERS) {
      for (const other of PROVIDERS.filter((candidate) => candidate !== provider)) {
        for (const model of SDK_THINK_MODELS[other]) {
          const error = configError({ LLM_PROVIDER: provider, LLM_MODEL: model });
          expect(error.problems).toHaveLength(1);
          const [problem] = error.problems;
          expect(problem).toStartWith(`LLM_MODEL: ${model} is`);
          expect(problem).toContain(`LLM_PROVIDER=${provider}`);
          for (const own of SDK_THINK_MODELS[provider]) expect(problem).toContain(own);
        }
      }
    }
  });

  test("the issue's case: anthropic or google with gpt-4o-mini stops start-up", () => {
    for (const provider of ["anthropic", "google"]) {
      const error = configError({ LLM_PROVIDER: provider, LLM_MODEL: "gpt-4o-mini" });
      expect(error.message).toContain("LLM_MODEL");
    }
  });

  test("a mismatch is listed with the other bad variables, in one error", () => {
    const error = configError({ LLM_PROVIDER: "google", LLM_MODEL: "gpt-4o", SERVER_PORT: "x" });
    expect(error.problems.map((problem) => problem.split(":")[0]).sort()).toEqual([
      "LLM_MODEL",
      "SERVER_PORT",
    ]);
  });

  test("a model in no known list only warns: Deepgram adds models the lists do not have yet", () => {
    const config = loadConfig({ LLM_PROVIDER: "google", LLM_MODEL: "gemini-3.5-flash" });
    expect(config.agent.llmModel).toBe("gemini-3.5-flash");
    const warnings = configWarnings(config);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toStartWith("LLM_MODEL: gemini-3.5-flash is not a known google model");
    for (const own of SDK_THINK_MODELS.google) expect(warnings[0]).toContain(own);
  });

  test("the documentation says the default depends on the provider", () => {
    const model = describeEnvironment().find((variable) => variable.name === "LLM_MODEL");
    expect(model?.default).toBeUndefined();
    expect(model?.description).toContain("per provider");
    for (const provider of PROVIDERS) expect(model?.description).toContain(provider);
  });
});
