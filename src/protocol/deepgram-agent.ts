/**
 * Pure codec for Deepgram's Voice Agent API v1 (`/v1/agent/converse`): decodes the server's JSON
 * text messages into a discriminated union and builds the client's messages (Settings, KeepAlive,
 * FunctionCallResponse, InjectAgentMessage, InjectUserMessage, UpdatePrompt). Audio travels as
 * binary frames and never passes here. Every client message is checked at compile time against
 * `@deepgram/sdk`'s agent types (`satisfies`; a type-only import, so the SDK is a devDependency and
 * never in the binary). Sources: Deepgram's Voice Agent AsyncAPI specification and those types
 * (docs/DEEPGRAM.md lists each decision).
 */
import type { agent, ThinkSettingsV1 } from "@deepgram/sdk";
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";

const serverSchemas = {
  Welcome: Type.Object({ type: Type.Literal("Welcome"), request_id: Type.Optional(Type.String()) }),
  SettingsApplied: Type.Object({ type: Type.Literal("SettingsApplied") }),
  ConversationText: Type.Object({
    type: Type.Literal("ConversationText"),
    role: Type.Union([Type.Literal("user"), Type.Literal("assistant")]),
    content: Type.String(),
  }),
  UserStartedSpeaking: Type.Object({ type: Type.Literal("UserStartedSpeaking") }),
  AgentThinking: Type.Object({
    type: Type.Literal("AgentThinking"),
    content: Type.Optional(Type.String()),
  }),
  FunctionCallRequest: Type.Object({
    type: Type.Literal("FunctionCallRequest"),
    functions: Type.Array(
      Type.Object({
        id: Type.String(),
        name: Type.String(),
        arguments: Type.String(),
        client_side: Type.Boolean(),
      }),
    ),
  }),
  FunctionCallResponse: Type.Object({
    type: Type.Literal("FunctionCallResponse"),
    id: Type.Optional(Type.String()),
    name: Type.Optional(Type.String()),
    content: Type.Optional(Type.String()),
  }),
  /** A speculative function call withdrawn because the caller's turn went on. */
  FunctionCallCancelled: Type.Object({
    type: Type.Literal("FunctionCallCancelled"),
    functions: Type.Array(Type.Object({ id: Type.String(), name: Type.Optional(Type.String()) })),
  }),
  /** After each turn, in seconds; total = end of the caller's speech → first audio byte. */
  LatencyReport: Type.Object({
    type: Type.Literal("LatencyReport"),
    stt_latency: Type.Optional(Type.Number()),
    ttt_token_latency: Type.Optional(Type.Number()),
    ttt_text_latency: Type.Optional(Type.Number()),
    ttt_tool_latency: Type.Optional(Type.Number()),
    ttt_thinking_latency: Type.Optional(Type.Number()),
    tts_latency: Type.Optional(Type.Number()),
    total_latency: Type.Optional(Type.Number()),
  }),
  AgentStartedSpeaking: Type.Object({
    type: Type.Literal("AgentStartedSpeaking"),
    total_latency: Type.Optional(Type.Number()),
    tts_latency: Type.Optional(Type.Number()),
    ttt_latency: Type.Optional(Type.Number()),
  }),
  AgentAudioDone: Type.Object({ type: Type.Literal("AgentAudioDone") }),
  Error: Type.Object({
    type: Type.Literal("Error"),
    description: Type.Optional(Type.String()),
    code: Type.Optional(Type.String()),
  }),
  Warning: Type.Object({
    type: Type.Literal("Warning"),
    description: Type.Optional(Type.String()),
    code: Type.Optional(Type.String()),
  }),
  InjectionRefused: Type.Object({
    type: Type.Literal("InjectionRefused"),
    message: Type.Optional(Type.String()),
  }),
  History: Type.Object({ type: Type.Literal("History") }),
  PromptUpdated: Type.Object({ type: Type.Literal("PromptUpdated") }),
  SpeakUpdated: Type.Object({ type: Type.Literal("SpeakUpdated") }),
  ThinkUpdated: Type.Object({ type: Type.Literal("ThinkUpdated") }),
};

type ServerSchemas = typeof serverSchemas;
export type AgentMessageType = keyof ServerSchemas;

/** A decoded server message, or `Ignored` for anything unknown or malformed. */
export type AgentServerMessage =
  | { [K in AgentMessageType]: Static<ServerSchemas[K]> }[AgentMessageType]
  | { type: "Ignored"; reason: string };

export type AgentMessage<K extends AgentMessageType> = Static<ServerSchemas[K]>;

const checkers = Object.fromEntries(
  Object.entries(serverSchemas).map(([type, schema]) => [
    type,
    TypeCompiler.Compile(schema as TSchema),
  ]),
) as Record<AgentMessageType, ReturnType<typeof TypeCompiler.Compile>>;

/**
 * Decodes one text frame from the agent server. Never throws.
 * @example decodeAgentMessage('{"type":"UserStartedSpeaking"}') // { type: "UserStartedSpeaking" }
 */
export function decodeAgentMessage(text: string): AgentServerMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { type: "Ignored", reason: "not JSON" };
  }
  const type = (value as { type?: unknown } | null)?.type;
  if (typeof type !== "string" || !Object.hasOwn(checkers, type)) {
    return {
      type: "Ignored",
      reason: typeof type === "string" ? `unknown type ${type.slice(0, 40)}` : "no type",
    };
  }
  if (!checkers[type as AgentMessageType].Check(value))
    return { type: "Ignored", reason: `malformed ${type}` };
  return value as AgentServerMessage;
}

/** A function the agent may call; `parameters` is a JSON Schema object (a TypeBox schema is one). */
export interface AgentFunction {
  name: string;
  description: string;
  parameters: TSchema;
  /**
   * Declared `defer_until_eot`: the agent calls it only once the caller's turn is confirmed, never
   * speculatively (for effects that cannot be undone).
   */
  deferUntilEndOfTurn?: boolean;
}

/**
 * One item of the conversation so far: a line, or answered function calls. Settings carry them as
 * `agent.context.messages` to resume a conversation on a new socket; the server reports them as
 * `History` messages.
 */
export type HistoryItem =
  | { type: "History"; role: "user" | "assistant"; content: string }
  | {
      type: "History";
      function_calls: {
        id: string;
        name: string;
        client_side: boolean;
        arguments: string;
        response: string;
      }[];
    };

export interface AgentSettings {
  tags?: string[];
  /** The conversation so far, when resuming it on a new socket (then there is no greeting). */
  history?: readonly HistoryItem[];
  /**
   * Top-level `mip_opt_out`: true keeps the call's audio out of Deepgram's Model Improvement
   * Program (Deepgram's default is false: opted in).
   */
  mipOptOut: boolean;
  listenModel: string;
  /** Flux `keyterms` (`agent.listen.provider.keyterms`), e.g. names; sent only when non-empty. */
  keyterms?: readonly string[];
  /** `LLM_PROVIDER`: the SDK's think provider types that need no `endpoint`. */
  thinkProvider: "open_ai" | "anthropic" | "google";
  thinkModel: string;
  prompt: string;
  functions: AgentFunction[];
  speakProvider: "deepgram";
  voice: string;
  greeting?: string;
}

/**
 * The one `Settings` message of a session: mu-law 8 kHz both ways with no container (what Twilio
 * carries), Flux listening (with the scenario's keyterms), the think provider, the scenario's
 * prompt, functions and greeting, and the Model Improvement Program choice.
 *
 * Optional fields are written as `undefined` rather than spread in (JSON leaves them out): a
 * misspelt key in a spread or a `.map` callback escapes the excess-property check of `satisfies`.
 */
export function settingsMessage(settings: AgentSettings): string {
  const keyterms = settings.keyterms?.filter((term) => term.trim() !== "") ?? [];
  const message = {
    type: "Settings",
    tags: settings.tags,
    mip_opt_out: settings.mipOptOut,
    audio: {
      input: { encoding: "mulaw", sample_rate: 8000 },
      output: { encoding: "mulaw", sample_rate: 8000, container: "none" },
    },
    agent: {
      listen: {
        provider: {
          type: "deepgram",
          version: "v2",
          model: settings.listenModel,
          keyterms: keyterms.length > 0 ? keyterms : undefined,
        },
      },
      think: thinkSettings(settings, settings.prompt),
      speak: { provider: { type: settings.speakProvider, model: settings.voice } },
      greeting: settings.greeting || undefined,
      context: settings.history?.length ? { messages: [...settings.history] } : undefined,
    },
  } satisfies agent.AgentV1Settings;
  return JSON.stringify(message);
}

function thinkSettings(settings: AgentSettings, prompt: string): ThinkSettingsV1 {
  return {
    provider: { type: settings.thinkProvider, model: settings.thinkModel },
    prompt,
    functions: settings.functions.map(agentFunction),
  };
}

/**
 * Replaces the agent's think settings mid-call with the same provider, model and functions and the
 * prompt plus `instructions`. `UpdateThink` replaces (the spec says so plainly), where Deepgram's
 * pages disagree whether `UpdatePrompt` adds to the prompt or replaces it: this way the agent keeps
 * its persona and rules either way.
 */
export function updateThinkMessage(settings: AgentSettings, instructions: string): string {
  const message = {
    type: "UpdateThink",
    think: thinkSettings(settings, `${settings.prompt}\n\n${instructions}`),
  } satisfies agent.AgentV1UpdateThink;
  return JSON.stringify(message);
}

/** One entry of `agent.think.functions`; `defer_until_eot` only when true. */
function agentFunction(fn: AgentFunction): ThinkSettingsV1.Functions.Item {
  return {
    name: fn.name,
    description: fn.description,
    parameters: fn.parameters,
    defer_until_eot: fn.deferUntilEndOfTurn ? true : undefined,
  };
}

export const KEEP_ALIVE_MESSAGE = JSON.stringify({
  type: "KeepAlive",
} satisfies agent.AgentV1KeepAlive);

export function functionCallResponseMessage(id: string, name: string, content: string): string {
  return JSON.stringify({
    type: "FunctionCallResponse",
    id,
    name,
    content,
  } satisfies agent.AgentV1SendFunctionCallResponse);
}

/**
 * How an injected message meets a turn in progress: `default` is refused (InjectionRefused) while
 * either side is mid-turn, `queue` waits for what is already queued, `interrupt` cuts the agent off.
 */
export type InjectionBehavior = "default" | "queue" | "interrupt";

/** Makes the agent say `message`, as `behavior` allows. */
export function injectAgentMessage(message: string, behavior: InjectionBehavior): string {
  return JSON.stringify({
    type: "InjectAgentMessage",
    message,
    behavior,
  } satisfies agent.AgentV1InjectAgentMessage);
}

/** Makes the agent answer `content` as if the caller had said it (e.g. a keypad digit). */
export function injectUserMessage(content: string): string {
  return JSON.stringify({
    type: "InjectUserMessage",
    content,
  } satisfies agent.AgentV1InjectUserMessage);
}
