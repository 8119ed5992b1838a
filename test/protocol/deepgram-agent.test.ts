import { describe, expect, test } from "bun:test";
import { Type } from "@sinclair/typebox";
import {
  type AgentSettings,
  decodeAgentMessage,
  functionCallResponseMessage,
  injectAgentMessage,
  injectUserMessage,
  KEEP_ALIVE_MESSAGE,
  settingsMessage,
  updateThinkMessage,
} from "../../src/protocol/deepgram-agent.ts";
import { agentSettings, LOOK_UP_AND_END_CALL } from "../helpers/agent-settings.ts";

describe("decodeAgentMessage", () => {
  test.each([
    ['{"type":"Welcome","request_id":"r1"}', { type: "Welcome", request_id: "r1" }],
    ['{"type":"SettingsApplied"}', { type: "SettingsApplied" }],
    [
      '{"type":"ConversationText","role":"user","content":"hi"}',
      { type: "ConversationText", role: "user", content: "hi" },
    ],
    ['{"type":"UserStartedSpeaking"}', { type: "UserStartedSpeaking" }],
    ['{"type":"AgentAudioDone"}', { type: "AgentAudioDone" }],
    [
      '{"type":"Error","description":"bad","code":"INVALID_SETTINGS"}',
      { type: "Error", description: "bad", code: "INVALID_SETTINGS" },
    ],
    ['{"type":"InjectionRefused","message":"busy"}', { type: "InjectionRefused", message: "busy" }],
  ])("%s", (text, expected) => {
    expect(decodeAgentMessage(text)).toEqual(expected as never);
  });

  test("FunctionCallRequest keeps every function", () => {
    const text = JSON.stringify({
      type: "FunctionCallRequest",
      functions: [{ id: "f1", name: "book", arguments: '{"slot":1}', client_side: true }],
    });
    expect(decodeAgentMessage(text)).toEqual(JSON.parse(text));
  });

  test.each([
    ["not JSON", "{", "not JSON"],
    ["no type", "{}", "no type"],
    ["an unknown type", '{"type":"Surprise"}', "unknown type Surprise"],
    [
      "a malformed known type",
      '{"type":"ConversationText","role":"robot","content":"x"}',
      "malformed ConversationText",
    ],
    [
      "the old early-access shape",
      '{"type":"FunctionCallRequest","function_name":"x","input":{}}',
      "malformed FunctionCallRequest",
    ],
    ["a prototype key", '{"type":"constructor"}', "unknown type constructor"],
  ])("%s is Ignored", (_, text, reason) => {
    expect(decodeAgentMessage(text)).toEqual({ type: "Ignored", reason });
  });
});

describe("client messages", () => {
  test("Settings: mu-law 8 kHz both ways, no container, Flux v2, think, speak, greeting", () => {
    const parameters = Type.Object({ reason: Type.String() }, { additionalProperties: false });
    const settings = JSON.parse(
      settingsMessage({
        tags: ["inbound"],
        mipOptOut: true,
        listenModel: "flux-general-en",
        thinkProvider: "open_ai",
        thinkModel: "gpt-4o-mini",
        prompt: "You are…",
        functions: [{ name: "end_call", description: "End the call", parameters }],
        speakProvider: "deepgram",
        voice: "aura-2-thalia-en",
        greeting: "Hello!",
      }),
    );
    expect(settings).toEqual({
      type: "Settings",
      tags: ["inbound"],
      mip_opt_out: true,
      audio: {
        input: { encoding: "mulaw", sample_rate: 8000 },
        output: { encoding: "mulaw", sample_rate: 8000, container: "none" },
      },
      agent: {
        listen: { provider: { type: "deepgram", version: "v2", model: "flux-general-en" } },
        think: {
          provider: { type: "open_ai", model: "gpt-4o-mini" },
          prompt: "You are…",
          functions: [
            {
              name: "end_call",
              description: "End the call",
              parameters: {
                type: "object",
                properties: { reason: { type: "string" } },
                required: ["reason"],
                additionalProperties: false,
              },
            },
          ],
        },
        speak: { provider: { type: "deepgram", model: "aura-2-thalia-en" } },
        greeting: "Hello!",
      },
    });
  });

  const settingsOf = (extra: Partial<AgentSettings> = {}) =>
    JSON.parse(settingsMessage(agentSettings(extra)));

  test("mip_opt_out is top-level and always sent, true or false", () => {
    expect(settingsOf().mip_opt_out).toBe(true);
    expect(settingsOf().agent.mip_opt_out).toBeUndefined();
    expect(settingsOf({ mipOptOut: false }).mip_opt_out).toBe(false);
  });

  test("keyterms go on the Flux listen provider, only when there are some", () => {
    const keyterms = ["Bright Smile Dental", "Sarah Patel"];
    expect(settingsOf({ keyterms }).agent.listen.provider).toEqual({
      type: "deepgram",
      version: "v2",
      model: "flux-general-en",
      keyterms,
    });
    expect(settingsOf({ keyterms: ["Chen", " ", ""] }).agent.listen.provider.keyterms).toEqual([
      "Chen",
    ]);
    for (const none of [undefined, [], ["", "  "]]) {
      const provider = settingsOf(none ? { keyterms: none } : {}).agent.listen.provider;
      expect(Object.keys(provider)).toEqual(["type", "version", "model"]);
    }
  });

  test("no greeting and no tags leave the fields out", () => {
    const settings = settingsOf({ greeting: "" });
    expect("greeting" in settings.agent).toBe(false);
    expect("tags" in settings).toBe(false);
  });

  test("KeepAlive, FunctionCallResponse, InjectAgentMessage", () => {
    expect(JSON.parse(KEEP_ALIVE_MESSAGE)).toEqual({ type: "KeepAlive" });
    expect(JSON.parse(functionCallResponseMessage("f1", "book", '{"ok":true}'))).toEqual({
      type: "FunctionCallResponse",
      id: "f1",
      name: "book",
      content: '{"ok":true}',
    });
    expect(JSON.parse(injectAgentMessage("Are you still there?", "default"))).toEqual({
      type: "InjectAgentMessage",
      message: "Are you still there?",
      behavior: "default",
    });
    expect(JSON.parse(injectAgentMessage("Goodbye!", "interrupt")).behavior).toBe("interrupt");
  });

  test("InjectUserMessage, and UpdateThink keeping the provider, prompt and functions", () => {
    expect(JSON.parse(injectUserMessage("The caller pressed 1."))).toEqual({
      type: "InjectUserMessage",
      content: "The caller pressed 1.",
    });
    const update = JSON.parse(
      updateThinkMessage(
        agentSettings({
          thinkProvider: "anthropic",
          thinkModel: "claude-sonnet-4-20250514",
          prompt: "You are Riley.",
          functions: LOOK_UP_AND_END_CALL.slice(1),
        }),
        "Wrap up.",
      ),
    );
    expect(update).toMatchObject({
      type: "UpdateThink",
      think: {
        provider: { type: "anthropic", model: "claude-sonnet-4-20250514" },
        prompt: "You are Riley.\n\nWrap up.",
        functions: [{ name: "end_call", defer_until_eot: true }],
      },
    });
  });

  test("LatencyReport and FunctionCallCancelled decode as the spec gives them", () => {
    const report = {
      type: "LatencyReport" as const,
      ttt_token_latency: 0.21,
      ttt_text_latency: 0.3,
      tts_latency: 0.12,
      total_latency: 0.62,
    };
    expect(decodeAgentMessage(JSON.stringify(report))).toEqual(report);
    const cancelled = {
      type: "FunctionCallCancelled" as const,
      functions: [{ id: "f1", name: "end_call" }],
    };
    expect(decodeAgentMessage(JSON.stringify(cancelled))).toEqual(cancelled);
  });

  test("functions that must wait for the end of the caller's turn are declared defer_until_eot", () => {
    const settings = JSON.parse(
      settingsMessage(agentSettings({ functions: LOOK_UP_AND_END_CALL })),
    );
    const [lookUp, endCall] = settings.agent.think.functions;
    expect(lookUp.defer_until_eot).toBeUndefined();
    expect(endCall.defer_until_eot).toBe(true);
  });
});

test("decoding never throws on odd input", () => {
  const samples = [
    "",
    "null",
    "[]",
    '{"type":1}',
    '{"type":"Error","code":5}',
    "\u0000",
    '{"type":"Welcome"}',
  ];
  for (const sample of samples) expect(() => decodeAgentMessage(sample)).not.toThrow();
});
