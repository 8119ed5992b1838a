/**
 * Contract with `@deepgram/sdk` (a devDependency, 5.13.0): its Voice Agent v1 types are the
 * compile-time description of the wire. The client messages in src/protocol/deepgram-agent.ts are
 * built with `satisfies` those types, so `bunx tsc --noEmit` (which covers test/) fails on a
 * misspelt or unknown field; the `@ts-expect-error` lines here prove that it does. At run time,
 * samples typed as each server message the SDK defines must decode to themselves, and the models
 * start-up accepts per think provider must be the SDK's enums.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { agent } from "@deepgram/sdk";
import type { V1Socket } from "@deepgram/sdk/agent/v1";
import { KNOWN_THINK_MODELS, THINK_PROVIDERS } from "../../src/config.ts";
import {
  type AgentMessageType,
  decodeAgentMessage,
  functionCallResponseMessage,
  type InjectionBehavior,
  injectAgentMessage,
  injectUserMessage,
  KEEP_ALIVE_MESSAGE,
  settingsMessage,
  updateThinkMessage,
} from "../../src/protocol/deepgram-agent.ts";
import { SDK_THINK_MODELS } from "../fakes/think-models.ts";
import { agentSettings } from "../helpers/agent-settings.ts";

/** Every message the SDK says the server sends (its socket's `Response`, text frames only). */
type SdkServerMessage = Exclude<V1Socket.Response, string>;
type SdkServerType = SdkServerMessage["type"];

type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

// Every type the codec decodes is one the SDK says the server sends…
const codecTypesAreSdkTypes: Equal<Exclude<AgentMessageType, SdkServerType>, never> = true;
// …and the only server message the codec does not know is ListenUpdated (the answer to
// UpdateListen, which this service never sends). A new server message in the SDK fails here.
const sdkTypesUnknownToCodec: Equal<
  Exclude<SdkServerType, AgentMessageType>,
  "ListenUpdated"
> = true;

/** One or more samples of each server message the codec knows, typed as the SDK's type. */
const serverSamples: {
  [K in AgentMessageType]: Extract<SdkServerMessage, { type: K }>[];
} = {
  Welcome: [{ type: "Welcome", request_id: "5f1c2b8e-0d3a-4f5e-9a7b-1c2d3e4f5a6b" }],
  SettingsApplied: [{ type: "SettingsApplied" }],
  ConversationText: [
    {
      type: "ConversationText",
      role: "assistant",
      content: "Bright Smile Dental, how can I help?",
    },
    {
      type: "ConversationText",
      role: "user",
      content: "I'd like a cleaning.",
      languages_hinted: ["en"],
      languages: ["en"],
    },
  ],
  UserStartedSpeaking: [{ type: "UserStartedSpeaking" }],
  AgentThinking: [{ type: "AgentThinking", content: "The caller wants a cleaning." }],
  FunctionCallRequest: [
    {
      type: "FunctionCallRequest",
      functions: [
        {
          id: "fc_1",
          name: "find_slots",
          arguments: '{"date":"2026-12-07"}',
          client_side: true,
        },
        {
          id: "fc_2",
          name: "end_call",
          arguments: '{"reason":"done"}',
          client_side: true,
          thought_signature: "sig",
        },
      ],
    },
  ],
  FunctionCallResponse: [
    { type: "FunctionCallResponse", id: "fc_9", name: "weather", content: "sunny" },
    { type: "FunctionCallResponse", name: "weather", content: "sunny" },
  ],
  FunctionCallCancelled: [
    { type: "FunctionCallCancelled", functions: [{ id: "fc_1", name: "find_slots" }] },
  ],
  LatencyReport: [
    {
      type: "LatencyReport",
      stt_latency: 0.05,
      ttt_token_latency: 0.21,
      ttt_text_latency: 0.32,
      ttt_tool_latency: 0.4,
      ttt_thinking_latency: 0.1,
      tts_latency: 0.11,
      total_latency: 0.58,
    },
    { type: "LatencyReport" },
  ],
  AgentStartedSpeaking: [
    { type: "AgentStartedSpeaking", total_latency: 0.4, tts_latency: 0.1, ttt_latency: 0.3 },
  ],
  AgentAudioDone: [{ type: "AgentAudioDone" }],
  Error: [{ type: "Error", description: "Settings were invalid", code: "INVALID_SETTINGS" }],
  Warning: [{ type: "Warning", description: "Prompt is long", code: "PROMPT_TOO_LONG" }],
  InjectionRefused: [{ type: "InjectionRefused", message: "the user is speaking" }],
  History: [
    { type: "History", role: "user", content: "Hello" },
    {
      type: "History",
      function_calls: [
        {
          id: "fc_1",
          name: "find_slots",
          client_side: true,
          arguments: "{}",
          response: "[]",
        },
      ],
    },
  ],
  PromptUpdated: [{ type: "PromptUpdated" }],
  SpeakUpdated: [{ type: "SpeakUpdated" }],
  ThinkUpdated: [{ type: "ThinkUpdated" }],
};

describe("server messages typed by the SDK decode to themselves", () => {
  test("the type-level checks hold", () => {
    expect(codecTypesAreSdkTypes).toBe(true);
    expect(sdkTypesUnknownToCodec).toBe(true);
  });

  test.each(
    Object.entries(serverSamples).flatMap(([type, samples]) =>
      samples.map((sample, index) => [`${type} #${index + 1}`, sample] as const),
    ),
  )("%s", (_, sample) => {
    expect(decodeAgentMessage(JSON.stringify(sample))).toEqual(sample as never);
  });

  test("ListenUpdated, which the service never asks for, is ignored as unknown", () => {
    const listenUpdated: agent.AgentV1ListenUpdated = { type: "ListenUpdated" };
    expect(decodeAgentMessage(JSON.stringify(listenUpdated))).toEqual({
      type: "Ignored",
      reason: "unknown type ListenUpdated",
    });
  });
});

describe("client messages are the SDK's types", () => {
  test("misspelt or unknown fields do not compile", () => {
    const misspelt = [
      {
        type: "InjectAgentMessage",
        message: "Goodbye!",
        // @ts-expect-error `behaviour` is not a field of InjectAgentMessage (it is `behavior`)
        behaviour: "queue",
      } satisfies agent.AgentV1InjectAgentMessage,
      // @ts-expect-error the early-access `content` is not InjectAgentMessage's field (it is `message`)
      { type: "InjectAgentMessage", content: "Goodbye!" } satisfies agent.AgentV1InjectAgentMessage,
      {
        type: "Settings",
        // @ts-expect-error `mip_optout` is not a Settings field (it is `mip_opt_out`)
        mip_optout: true,
        audio: {},
        agent: {},
      } satisfies agent.AgentV1Settings,
      {
        type: "Settings",
        audio: {},
        agent: {
          think: {
            provider: { type: "open_ai", model: "gpt-4o-mini" },
            // @ts-expect-error `defer_until_eof` is not a function field (it is `defer_until_eot`)
            functions: [{ name: "end_call", defer_until_eof: true }],
          },
        },
      } satisfies agent.AgentV1Settings,
      {
        type: "Settings",
        audio: {},
        agent: {
          listen: {
            // @ts-expect-error `keyterm` (the REST query parameter) is not the provider's field `keyterms`
            provider: { type: "deepgram", version: "v2", model: "flux-general-en", keyterm: ["x"] },
          },
        },
      } satisfies agent.AgentV1Settings,
      {
        type: "Settings",
        audio: {},
        // @ts-expect-error `think.instructions` is the early-access name of `think.prompt`
        agent: { think: { provider: { type: "open_ai", model: "gpt-4o" }, instructions: "p" } },
      } satisfies agent.AgentV1Settings,
      {
        type: "FunctionCallResponse",
        id: "fc_1",
        name: "end_call",
        // @ts-expect-error FunctionCallResponse's `content` is required
      } satisfies agent.AgentV1SendFunctionCallResponse,
    ];
    // The objects exist only to be type-checked.
    expect(misspelt).toHaveLength(7);
  });

  test("what the codec builds parses back to the SDK's shapes", () => {
    const settings: agent.AgentV1Settings = JSON.parse(
      settingsMessage(
        agentSettings({
          keyterms: ["Bright Smile Dental"],
          thinkProvider: "anthropic",
          thinkModel: "claude-3-5-haiku-latest",
        }),
      ),
    );
    expect(settings.mip_opt_out).toBe(true);
    expect(settings.agent.listen?.provider).toMatchObject({
      version: "v2",
      keyterms: ["Bright Smile Dental"],
    });
    const keepAlive: agent.AgentV1KeepAlive = JSON.parse(KEEP_ALIVE_MESSAGE);
    const response: agent.AgentV1SendFunctionCallResponse = JSON.parse(
      functionCallResponseMessage("fc_1", "end_call", "ok"),
    );
    const inject: agent.AgentV1InjectAgentMessage = JSON.parse(injectAgentMessage("Hi", "queue"));
    const user: agent.AgentV1InjectUserMessage = JSON.parse(injectUserMessage("1"));
    const think: agent.AgentV1UpdateThink = JSON.parse(
      updateThinkMessage(agentSettings(), "Wrap up."),
    );
    expect([keepAlive.type, response.type, inject.type, user.type, think.type]).toEqual([
      "KeepAlive",
      "FunctionCallResponse",
      "InjectAgentMessage",
      "InjectUserMessage",
      "UpdateThink",
    ]);
  });

  test("injection behaviors are exactly the SDK's", () => {
    const ours: InjectionBehavior[] = ["default", "queue", "interrupt"];
    expect(Object.values(agent.AgentV1InjectAgentMessage.Behavior).sort()).toEqual(ours.sort());
  });

  test("every builder in the codec is checked with `satisfies`, and none spreads optional fields in", () => {
    // A spread (`...(x ? {field} : {})`) escapes the excess-property check of `satisfies`.
    const source = readFileSync(
      resolve(import.meta.dir, "../../src/protocol/deepgram-agent.ts"),
      "utf8",
    );
    expect(source).not.toMatch(/\.\.\.\(/);
    for (const sdkType of [
      "AgentV1Settings",
      "AgentV1KeepAlive",
      "AgentV1SendFunctionCallResponse",
      "AgentV1InjectAgentMessage",
      "AgentV1InjectUserMessage",
      "AgentV1UpdateThink",
    ]) {
      expect(source).toContain(`satisfies agent.${sdkType}`);
    }
    expect(source).toMatch(/^import type \{[^}]*\} from "@deepgram\/sdk";$/m);
  });
});

describe("think providers and models", () => {
  test("the models start-up knows per provider are the SDK's enums", () => {
    for (const provider of THINK_PROVIDERS)
      expect([...KNOWN_THINK_MODELS[provider]].sort()).toEqual(
        [...SDK_THINK_MODELS[provider]].sort(),
      );
  });
});
