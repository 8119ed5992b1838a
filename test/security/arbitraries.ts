/**
 * Reusable fast-check arbitraries for the security fuzz tests: well-formed Twilio Media Streams frames
 * and Deepgram Voice Agent server messages (shapes per /work/shared/protocols.md, sections A and D),
 * each with a map of the fields it must keep to stay well-formed, and mutations of them that know
 * whether the mutated message must still decode, must be ignored, or may go either way.
 */
import fc from "fast-check";
import { MAX_MEDIA_PAYLOAD_CHARS, type TwilioInbound } from "../../src/protocol/twilio-media.ts";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
export type Path = (string | number)[];

/** What a field must hold for its message to decode. */
export type FieldKind =
  /** Any string. */
  | "string"
  /** A string of at least one character. */
  | "nonEmpty"
  /** A finite number. */
  | "number"
  | "boolean"
  /** "user" or "assistant". */
  | "role"
  /** A base64 media payload of at most MAX_MEDIA_PAYLOAD_CHARS characters. */
  | "base64"
  /** An object (not an array); its own fields are listed separately. */
  | "object"
  | "stringArray"
  /** A flat string → string object (Twilio's customParameters). */
  | "stringMap"
  /** An array of objects whose fields are listed separately (per index). */
  | "objectArray";

/** The schema of one object: its fields by name. */
type Shape = Record<string, FieldShape>;
type FieldShape =
  | { kind: Exclude<FieldKind, "object" | "objectArray">; optional?: boolean }
  | { kind: "object"; optional?: boolean; props: Shape }
  | { kind: "objectArray"; optional?: boolean; items: Shape };

export interface Field {
  path: Path;
  kind: FieldKind;
  optional: boolean;
  /** An element of an array: it can be replaced but not dropped. */
  element: boolean;
}

/** An object inside a message where extra keys may be added. */
interface Slot {
  path: Path;
  /** Keys with a meaning here: extra keys must avoid them. */
  known: Set<string>;
  /** A string map: extra values must be strings. */
  map: boolean;
}

/** A well-formed message, as a JSON value, with everything a mutation needs to know about it. */
export interface Sample {
  value: JsonObject;
  fields: Field[];
  slots: Slot[];
}

/** A message after mutation and what decoding it must give. */
export interface Mutated {
  value: JsonObject;
  /**
   * `valid`: decodes to what its fields say; `ignored`: decodes to the codec's ignored result;
   * `any`: either, but always a typed result.
   */
  outcome: "valid" | "ignored" | "any";
  /** The exact ignored reason, when it is known. */
  reason?: string;
  /** The discriminator was switched to this other known value. */
  switchedTo?: string;
  /** What was done, for failure reports. */
  steps: string[];
}

// ---------------------------------------------------------------- building blocks

/** Strings that have broken parsers, loggers and validators before. */
export const NASTY_STRINGS = [
  "",
  " ",
  "NaN",
  "Infinity",
  "-Infinity",
  "-0",
  "1e309",
  "0x1F40",
  "8000",
  "null",
  "undefined",
  "true",
  "[]",
  "{}",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "\u0000",
  "\ud800",
  "\udfff",
  "\u2028\u2029",
  "\ufeff",
  "\r\nX-Injected: 1",
  "%s%n%x",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, on purpose
  "${7*7}",
  "{{7*7}}",
  "<script>alert(1)</script>",
  "' OR 1=1 --",
  "../../etc/passwd",
  "😀👍🏽",
  "e\u0301",
] as const;

/** Keys that must never reach a prototype. */
export const DANGEROUS_KEYS = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "isPrototypeOf",
  "__defineGetter__",
  "then",
  "polluted",
] as const;

/** Strings of every kind: printable, any UTF-16 (lone surrogates included), or a nasty one. */
export const anyString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.string(), weight: 3 },
  { arbitrary: fc.string({ unit: "binary" }), weight: 3 },
  { arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }), weight: 1 },
  { arbitrary: fc.constantFrom(...NASTY_STRINGS), weight: 2 },
);

/** Strings of 10 k to 60 k characters (valid for unconstrained fields, a burden for loggers). */
export const hugeString: fc.Arbitrary<string> = fc
  .tuple(
    fc.integer({ min: 10_000, max: 60_000 }),
    fc.constantFrom("A", '"', "\\", "\u0000", "é", "😀", "\ud800"),
  )
  .map(([length, unit]) => unit.repeat(Math.ceil(length / unit.length)));

/** An array or object nested `depth` levels deep. */
export function deeplyNested(depth: number, as: "array" | "object"): Json {
  let value: Json = 1;
  for (let i = 0; i < depth; i++) value = as === "array" ? [value] : { a: value };
  return value;
}

/** Deep nesting of 50 to 1000 levels (deeper cases are tested one by one). */
export const deepValue: fc.Arbitrary<Json> = fc
  .tuple(fc.integer({ min: 50, max: 1000 }), fc.constantFrom("array" as const, "object" as const))
  .map(([depth, as]) => deeplyNested(depth, as));

/** Values meant to pollute a prototype if they are ever merged with `Object.assign` or a naive merge. */
export const pollutionPayload: fc.Arbitrary<Json> = fc.constantFrom<Json>(
  { polluted: "yes" },
  { prototype: { polluted: "yes" } },
  JSON.parse('{"__proto__":{"polluted":"yes"}}'),
  JSON.parse('{"constructor":{"prototype":{"polluted":"yes"}}}'),
);

/** Any JSON value, odd ones weighted up. */
export const anyJson: fc.Arbitrary<Json> = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>, weight: 6 },
  {
    arbitrary: fc.constantFrom<Json>(
      null,
      true,
      false,
      0,
      -1,
      1e308,
      -1e-308,
      [],
      {},
      [null],
      ["a", 1],
      { "0": "a", length: 1 },
    ),
    weight: 2,
  },
  { arbitrary: fc.constantFrom(...NASTY_STRINGS), weight: 1 },
  { arbitrary: deepValue, weight: 1 },
  { arbitrary: pollutionPayload, weight: 1 },
);

const isString = (value: Json) => typeof value === "string";
const isNumber = (value: Json) => typeof value === "number";
const isBoolean = (value: Json) => typeof value === "boolean";
const isArray = (value: Json) => Array.isArray(value);
const isObject = (value: Json) => typeof value === "object" && value !== null && !isArray(value);

/** Any JSON value failing `accepted`. */
const otherThan = (accepted: (value: Json) => boolean) =>
  anyJson.filter((value) => !accepted(value));

/** Numbers written as strings, NaN-ish ones included. */
export const numericString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("8000", "NaN", "Infinity", "-Infinity", "-0", "1e309", "0x1F40", " 8000", "8e3"),
  fc.double().map(String),
  fc.integer().map(String),
);

const BASE64_BAD_CHARS = ["-", "_", " ", "\n", "\t", "=", "!", "*", ".", ":", "é", "\u0000", "Ａ"];

/** Media audio: mostly 0 to 480 bytes, sometimes up to the largest payload accepted. */
export const mediaBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 480 }), weight: 19 },
  {
    // Up to the largest payload accepted: 12 288 bytes = 16 384 base64 characters.
    arbitrary: fc
      .tuple(fc.integer({ min: 11_000, max: 12_288 }), fc.integer({ min: 0, max: 255 }))
      .map(([length, byte]) => new Uint8Array(length).fill(byte)),
    weight: 1,
  },
);
const base64Of = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

/** Strings that are not canonical padded base64: bad characters, bad length, misplaced padding. */
export const invalidBase64: fc.Arbitrary<string> = fc.oneof(
  fc
    .uint8Array({ minLength: 1, maxLength: 300 })
    .map(base64Of)
    .chain((valid) =>
      fc
        .tuple(fc.nat({ max: valid.length - 3 }), fc.constantFrom(...BASE64_BAD_CHARS))
        .map(([at, bad]) => valid.slice(0, at) + bad + valid.slice(at + 1)),
    ),
  fc
    .tuple(
      fc.uint8Array({ maxLength: 300 }).map(base64Of),
      fc.stringMatching(/^[A-Za-z0-9+/]{1,3}$/),
    )
    .map(([valid, tail]) => valid + tail),
  fc.constantFrom(
    "====",
    "A===",
    "AB=C",
    "AB==CD==",
    "YQ",
    "YQ=",
    "-_-_",
    "YWJj\n",
    " YWJj",
    "YW Jj",
  ),
);

/** Valid base64 longer than the codec accepts. */
export const oversizedBase64: fc.Arbitrary<string> = fc
  .integer({ min: 1, max: 20_000 })
  .map((extra) => "A".repeat(MAX_MEDIA_PAYLOAD_CHARS + 4 * extra));

const sid = (prefix: string) => fc.uuid().map((uuid) => `${prefix}${uuid.replaceAll("-", "")}`);
const counter = fc.nat({ max: 1_000_000 }).map(String);

/** A flat string map; keys include prototype names. */
export const stringMap: fc.Arbitrary<JsonObject> = fc
  .array(fc.tuple(fc.oneof(anyString, fc.constantFrom(...DANGEROUS_KEYS)), anyString), {
    maxLength: 6,
  })
  .map((entries) => {
    const map: JsonObject = {};
    for (const [key, value] of entries) setOwn(map, key, value);
    return map;
  });

// ---------------------------------------------------------------- helpers on JSON values

/** Sets an own property, even `__proto__`, without touching any prototype. */
export function setOwn(target: JsonObject | Json[], key: string | number, value: Json): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** A deep copy through JSON text, as a socket would deliver it (own `__proto__` keys stay own keys). */
export function viaJson<T extends Json>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}

function at(value: Json, path: Path): Json | undefined {
  let current: Json | undefined = value;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = Object.hasOwn(current, key) ? (current as Record<string, Json>)[key] : undefined;
  }
  return current;
}

function setAt(root: JsonObject, path: Path, value: Json | undefined): void {
  const parent = at(root, path.slice(0, -1)) as JsonObject | Json[];
  const key = path[path.length - 1] as string | number;
  if (value === undefined) delete (parent as Record<string | number, Json>)[key];
  else setOwn(parent, key, value);
}

const isPrefix = (a: Path, b: Path) => a.length <= b.length && a.every((key, i) => b[i] === key);
const show = (path: Path) => path.join(".");

function sampleOf(value: JsonObject, shape: Shape, discriminator: string): Sample {
  const fields: Field[] = [];
  const slots: Slot[] = [];
  const walk = (object: JsonObject, props: Shape, path: Path, known: string[]) => {
    slots.push({ path, known: new Set([...known, ...Object.keys(props)]), map: false });
    for (const [key, field] of Object.entries(props)) {
      if (!Object.hasOwn(object, key)) continue;
      const fieldPath = [...path, key];
      const child = object[key] as Json;
      fields.push({
        path: fieldPath,
        kind: field.kind,
        optional: !!field.optional,
        element: false,
      });
      if (field.kind === "object") walk(child as JsonObject, field.props, fieldPath, []);
      else if (field.kind === "stringMap")
        slots.push({ path: fieldPath, known: new Set(), map: true });
      else if (field.kind === "objectArray") {
        (child as JsonObject[]).forEach((item, index) => {
          const itemPath = [...fieldPath, index];
          fields.push({ path: itemPath, kind: "object", optional: false, element: true });
          walk(item, field.items, itemPath, []);
        });
      }
    }
  };
  walk(value, shape, [], [discriminator]);
  return { value, fields, slots };
}

// ---------------------------------------------------------------- Twilio Media Streams

export const TWILIO_EVENTS = ["connected", "start", "media", "mark", "dtmf", "stop"] as const;
export type TwilioEvent = (typeof TWILIO_EVENTS)[number];

/** What the codec checks of each Twilio → server message (protocols.md section A). */
export const TWILIO_SHAPES: Record<TwilioEvent, Shape> = {
  connected: {},
  start: {
    streamSid: { kind: "nonEmpty" },
    start: {
      kind: "object",
      props: {
        accountSid: { kind: "string" },
        streamSid: { kind: "nonEmpty" },
        callSid: { kind: "nonEmpty" },
        tracks: { kind: "stringArray", optional: true },
        mediaFormat: {
          kind: "object",
          props: {
            encoding: { kind: "string" },
            sampleRate: { kind: "number" },
            channels: { kind: "number" },
          },
        },
        customParameters: { kind: "stringMap", optional: true },
      },
    },
  },
  media: {
    streamSid: { kind: "string" },
    media: {
      kind: "object",
      props: {
        track: { kind: "string", optional: true },
        chunk: { kind: "string", optional: true },
        timestamp: { kind: "string", optional: true },
        payload: { kind: "base64" },
      },
    },
  },
  mark: {
    streamSid: { kind: "string" },
    mark: { kind: "object", props: { name: { kind: "string" } } },
  },
  dtmf: {
    streamSid: { kind: "string" },
    dtmf: {
      kind: "object",
      props: { digit: { kind: "string" }, track: { kind: "string", optional: true } },
    },
  },
  stop: {
    streamSid: { kind: "string" },
    stop: {
      kind: "object",
      optional: true,
      props: {
        accountSid: { kind: "string", optional: true },
        callSid: { kind: "string", optional: true },
      },
    },
  },
};

const maybe = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });
/** Drops the keys whose value is undefined (optional fields left out). */
const compact = (object: Record<string, Json | undefined>): JsonObject =>
  Object.fromEntries(
    Object.entries(object).filter(([, value]) => value !== undefined),
  ) as JsonObject;

export interface StartOptions {
  callSid?: fc.Arbitrary<string>;
  customParameters?: fc.Arbitrary<JsonObject | undefined>;
}

/** A well-formed `start` (Twilio's own shape); its token is whatever `customParameters` gives. */
export function twilioStart(options: StartOptions = {}): fc.Arbitrary<JsonObject> {
  return fc
    .record({
      sequenceNumber: counter,
      streamSid: sid("MZ"),
      accountSid: sid("AC"),
      callSid: options.callSid ?? sid("CA"),
      tracks: maybe(fc.array(fc.constantFrom("inbound", "outbound", ""), { maxLength: 2 })),
      encoding: fc.oneof(fc.constant("audio/x-mulaw"), anyString),
      sampleRate: fc.oneof(
        fc.constant(8000),
        fc.integer(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
      ),
      channels: fc.oneof(fc.constant(1), fc.integer()),
      customParameters: options.customParameters ?? maybe(stringMap),
    })
    .map((f) => ({
      event: "start",
      sequenceNumber: f.sequenceNumber,
      streamSid: f.streamSid,
      start: compact({
        accountSid: f.accountSid,
        streamSid: f.streamSid,
        callSid: f.callSid,
        tracks: f.tracks,
        mediaFormat: { encoding: f.encoding, sampleRate: f.sampleRate, channels: f.channels },
        customParameters: f.customParameters,
      }),
    }));
}

/** A well-formed `media` frame with random audio, for `streamSid` (or a random one). */
export function twilioMedia(streamSid?: string): fc.Arbitrary<JsonObject> {
  return fc
    .record({
      sequenceNumber: counter,
      streamSid: streamSid === undefined ? sid("MZ") : fc.constant(streamSid),
      track: maybe(fc.constantFrom("inbound", "outbound")),
      chunk: maybe(counter),
      timestamp: maybe(counter),
      bytes: mediaBytes,
    })
    .map((f) => ({
      event: "media",
      sequenceNumber: f.sequenceNumber,
      streamSid: f.streamSid,
      media: compact({
        track: f.track,
        chunk: f.chunk,
        timestamp: f.timestamp,
        payload: base64Of(f.bytes),
      }),
    }));
}

const twilioFrames: Record<TwilioEvent, fc.Arbitrary<JsonObject>> = {
  connected: fc.constant({ event: "connected", protocol: "Call", version: "1.0.0" }),
  start: twilioStart(),
  media: twilioMedia(),
  mark: fc.record({ sequenceNumber: counter, streamSid: sid("MZ"), name: anyString }).map((f) => ({
    event: "mark",
    sequenceNumber: f.sequenceNumber,
    streamSid: f.streamSid,
    mark: { name: f.name },
  })),
  dtmf: fc
    .record({
      sequenceNumber: counter,
      streamSid: sid("MZ"),
      digit: fc.oneof(fc.constantFrom(..."0123456789*#ABCD"), anyString),
      track: maybe(fc.constant("inbound_track")),
    })
    .map((f) => ({
      event: "dtmf",
      streamSid: f.streamSid,
      sequenceNumber: f.sequenceNumber,
      dtmf: compact({ track: f.track, digit: f.digit }),
    })),
  stop: fc
    .record({
      sequenceNumber: counter,
      streamSid: sid("MZ"),
      stop: maybe(
        fc.record(
          { accountSid: sid("AC"), callSid: sid("CA") },
          { requiredKeys: [] },
        ) as fc.Arbitrary<JsonObject>,
      ),
    })
    .map((f) =>
      compact({
        event: "stop",
        sequenceNumber: f.sequenceNumber,
        streamSid: f.streamSid,
        stop: f.stop,
      }),
    ),
};

/** A well-formed Twilio → server frame of any event, described for mutation. */
export const twilioSample: fc.Arbitrary<Sample> = fc
  .constantFrom(...TWILIO_EVENTS)
  .chain((event) =>
    twilioFrames[event].map((value) => sampleOf(viaJson(value), TWILIO_SHAPES[event], "event")),
  );

/** What decodeTwilio must return for a well-formed frame: its fields, projected. */
export function expectedTwilio(frame: JsonObject): TwilioInbound {
  const get = (path: Path) => at(frame, path);
  switch (frame.event as TwilioEvent) {
    case "connected":
      return { event: "connected" };
    case "start":
      return {
        event: "start",
        start: {
          streamSid: get(["start", "streamSid"]) as string,
          callSid: get(["start", "callSid"]) as string,
          accountSid: get(["start", "accountSid"]) as string,
          encoding: get(["start", "mediaFormat", "encoding"]) as string,
          sampleRate: get(["start", "mediaFormat", "sampleRate"]) as number,
          customParameters: (get(["start", "customParameters"]) ?? {}) as Record<string, string>,
        },
      };
    case "media":
      return { event: "media", audio: Buffer.from(get(["media", "payload"]) as string, "base64") };
    case "mark":
      return { event: "mark", name: get(["mark", "name"]) as string };
    case "dtmf":
      return { event: "dtmf", digit: get(["dtmf", "digit"]) as string };
    case "stop":
      return { event: "stop" };
  }
}

// ---------------------------------------------------------------- Deepgram Voice Agent

/** What the codec checks of each agent → client text message (protocols.md section D). */
export const AGENT_SHAPES = {
  Welcome: { request_id: { kind: "string", optional: true } },
  SettingsApplied: {},
  ConversationText: { role: { kind: "role" }, content: { kind: "string" } },
  UserStartedSpeaking: {},
  AgentThinking: { content: { kind: "string", optional: true } },
  FunctionCallRequest: {
    functions: {
      kind: "objectArray",
      items: {
        id: { kind: "string" },
        name: { kind: "string" },
        arguments: { kind: "string" },
        client_side: { kind: "boolean" },
      },
    },
  },
  FunctionCallResponse: {
    id: { kind: "string", optional: true },
    name: { kind: "string", optional: true },
    content: { kind: "string", optional: true },
  },
  FunctionCallCancelled: {
    functions: {
      kind: "objectArray",
      items: { id: { kind: "string" }, name: { kind: "string", optional: true } },
    },
  },
  LatencyReport: {
    ttt_token_latency: { kind: "number", optional: true },
    ttt_text_latency: { kind: "number", optional: true },
    ttt_tool_latency: { kind: "number", optional: true },
    ttt_thinking_latency: { kind: "number", optional: true },
    tts_latency: { kind: "number", optional: true },
    total_latency: { kind: "number", optional: true },
  },
  AgentStartedSpeaking: {
    total_latency: { kind: "number", optional: true },
    tts_latency: { kind: "number", optional: true },
    ttt_latency: { kind: "number", optional: true },
  },
  AgentAudioDone: {},
  Error: {
    description: { kind: "string", optional: true },
    code: { kind: "string", optional: true },
  },
  Warning: {
    description: { kind: "string", optional: true },
    code: { kind: "string", optional: true },
  },
  InjectionRefused: { message: { kind: "string", optional: true } },
  History: {},
  PromptUpdated: {},
  SpeakUpdated: {},
  ThinkUpdated: {},
} satisfies Record<string, Shape>;

export type AgentType = keyof typeof AGENT_SHAPES;
export const AGENT_TYPES = Object.keys(AGENT_SHAPES) as AgentType[];

/** Server messages the codec does not know (some are real: protocols.md section F). */
export const UNKNOWN_AGENT_TYPES = [
  "ListenUpdated",
  "Settings",
  "KeepAlive",
  "welcome",
  "Welcome ",
  "FunctionCalling",
  "SettingsConfiguration",
  ...DANGEROUS_KEYS,
];

const latency = maybe(fc.double({ min: 0, max: 60, noNaN: true }));
const ERROR_CODES = [
  "INTERNAL_SERVER_ERROR",
  "CLIENT_MESSAGE_TIMEOUT",
  "UNPARSABLE_CLIENT_MESSAGE",
  "INVALID_SETTINGS",
  "FAILED_TO_START_LISTENING",
  "USER_AUDIO_FORMAT",
  "INJECT_AGENT_MESSAGE_DURING_USER_SPEECH",
  "PROMPT_TOO_LONG",
  "THINK_REQUEST_FAILED",
];
const described = (type: string) =>
  fc
    .record({
      description: maybe(anyString),
      code: maybe(fc.oneof(fc.constantFrom(...ERROR_CODES), anyString)),
    })
    .map((f) => compact({ type, ...f }));

const agentMessages: Record<AgentType, fc.Arbitrary<JsonObject>> = {
  Welcome: maybe(fc.oneof(fc.uuid(), anyString)).map((id) =>
    compact({ type: "Welcome", request_id: id }),
  ),
  SettingsApplied: fc.constant({ type: "SettingsApplied" }),
  ConversationText: fc
    .record({ role: fc.constantFrom("user", "assistant"), content: anyString })
    .map((f) => ({ type: "ConversationText", ...f })),
  UserStartedSpeaking: fc.constant({ type: "UserStartedSpeaking" }),
  AgentThinking: maybe(anyString).map((content) => compact({ type: "AgentThinking", content })),
  FunctionCallRequest: fc
    .array(
      fc.record({
        id: fc.oneof(fc.constant("fc_1"), anyString),
        name: fc.oneof(fc.constantFrom("book", "check_slots", "no_such_function"), anyString),
        arguments: fc.oneof(
          fc.json({ maxDepth: 2 }),
          anyString,
          fc.constantFrom(
            '{"slot_id":1,"name":"x"}',
            '{"from":"2026-01-01","to":"2026-12-31"}',
            "{}",
          ),
          deepValue.map((value) => JSON.stringify(value)),
        ),
        client_side: fc.boolean(),
      }),
      { maxLength: 3 },
    )
    .map((functions) => ({ type: "FunctionCallRequest", functions })),
  FunctionCallResponse: fc
    .record({ id: anyString, name: anyString, content: anyString }, { requiredKeys: [] })
    .map((f) => ({ type: "FunctionCallResponse", ...f })),
  FunctionCallCancelled: fc
    .array(fc.record({ id: anyString, name: anyString }, { requiredKeys: ["id"] }), {
      maxLength: 3,
    })
    .map((functions) => ({ type: "FunctionCallCancelled", functions })),
  LatencyReport: fc
    .record({
      ttt_token_latency: latency,
      ttt_text_latency: latency,
      ttt_tool_latency: latency,
      ttt_thinking_latency: latency,
      tts_latency: latency,
      total_latency: latency,
    })
    .map((f) => compact({ type: "LatencyReport", ...f })),
  AgentStartedSpeaking: fc
    .record({ total_latency: latency, tts_latency: latency, ttt_latency: latency })
    .map((f) => compact({ type: "AgentStartedSpeaking", ...f })),
  AgentAudioDone: fc.constant({ type: "AgentAudioDone" }),
  Error: described("Error"),
  Warning: described("Warning"),
  InjectionRefused: maybe(anyString).map((message) =>
    compact({ type: "InjectionRefused", message }),
  ),
  History: fc
    .oneof(
      fc.record({ role: fc.constantFrom("user", "assistant"), content: anyString }),
      fc.record({ function_calls: fc.array(anyJson, { maxLength: 2 }) }),
    )
    .map((f) => ({ type: "History", ...f }) as JsonObject),
  PromptUpdated: fc.constant({ type: "PromptUpdated" }),
  SpeakUpdated: fc.constant({ type: "SpeakUpdated" }),
  ThinkUpdated: fc.constant({ type: "ThinkUpdated" }),
};

/** A well-formed agent server message of `types` (default: every type), described for mutation. */
export function agentSample(types: readonly AgentType[] = AGENT_TYPES): fc.Arbitrary<Sample> {
  return fc
    .constantFrom(...types)
    .chain((type) =>
      agentMessages[type].map((value) =>
        sampleOf(viaJson(value), AGENT_SHAPES[type] as Shape, "type"),
      ),
    );
}

// ---------------------------------------------------------------- mutations

interface Op {
  path: Path;
  /** The new value, or undefined to drop the field. */
  value: Json | undefined;
  outcome: "valid" | "ignored";
  what: string;
}

/** Values a field of `kind` accepts (still well-formed), or undefined when there is nothing to vary. */
function sameKind(kind: FieldKind): fc.Arbitrary<Json> | undefined {
  switch (kind) {
    case "string":
      return fc.oneof({ arbitrary: anyString, weight: 9 }, { arbitrary: hugeString, weight: 1 });
    case "nonEmpty":
      return fc.oneof(
        { arbitrary: anyString.filter((s) => s.length > 0), weight: 9 },
        { arbitrary: hugeString, weight: 1 },
      );
    case "number":
      return fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
    case "boolean":
      return fc.boolean();
    case "role":
      return fc.constantFrom("user", "assistant");
    case "base64":
      return mediaBytes.map(base64Of);
    case "stringArray":
      return fc.array(anyString, { maxLength: 4 });
    case "stringMap":
      return stringMap;
    case "objectArray":
      return fc.constant([]);
    case "object":
      return undefined;
  }
}

/** Values a field of `kind` must reject. */
function wrongKind(kind: FieldKind): fc.Arbitrary<Json> {
  switch (kind) {
    case "string":
      return otherThan(isString);
    case "nonEmpty":
      return fc.oneof(otherThan(isString), fc.constant(""));
    case "number":
      return fc.oneof(otherThan(isNumber), numericString);
    case "boolean":
      return fc.oneof(otherThan(isBoolean), fc.constantFrom("true", "false", 1, 0));
    case "role":
      return fc.oneof(
        otherThan(isString),
        anyString.filter((s) => s !== "user" && s !== "assistant"),
        fc.constantFrom("User", "assistant ", "system", "agent"),
      );
    case "base64":
      return fc.oneof(otherThan(isString), invalidBase64, oversizedBase64);
    case "stringArray":
      return fc.oneof(
        otherThan(isArray),
        fc
          .tuple(fc.array(anyString, { maxLength: 3 }), otherThan(isString), fc.nat())
          .map(([strings, odd, at]) => {
            const array: Json[] = [...strings];
            array.splice(at % (strings.length + 1), 0, odd);
            return array;
          }),
      );
    case "stringMap":
      return fc.oneof(
        otherThan(isObject),
        fc
          .tuple(
            stringMap,
            fc.oneof(anyString, fc.constantFrom(...DANGEROUS_KEYS)),
            otherThan(isString),
          )
          .map(([map, key, odd]) => {
            setOwn(map, key, odd);
            return map;
          }),
      );
    case "object":
      return otherThan(isObject);
    case "objectArray":
      return fc.oneof(
        otherThan(isArray),
        otherThan(isObject).map((odd) => [odd]),
      );
  }
}

function fieldOp(field: Field): fc.Arbitrary<Op> {
  const path = field.path;
  const options: fc.Arbitrary<Op>[] = [
    wrongKind(field.kind).map((value) => ({
      path,
      value,
      outcome: "ignored" as const,
      what: `${show(path)} := wrong ${field.kind}`,
    })),
  ];
  if (!field.element) {
    options.push(
      fc.constant({
        path,
        value: undefined,
        outcome: field.optional ? ("valid" as const) : ("ignored" as const),
        what: `drop ${show(path)}`,
      }),
    );
  }
  const same = sameKind(field.kind);
  if (same) {
    options.push(
      same.map((value) => ({
        path,
        value,
        outcome: "valid" as const,
        what: `${show(path)} := other ${field.kind}`,
      })),
    );
  }
  return fc.oneof(...options);
}

/** One or two changes to fields of which neither contains the other. */
function fieldOps(sample: Sample): fc.Arbitrary<Op[]> {
  if (sample.fields.length === 0) return fc.constant([]);
  return fc
    .uniqueArray(fc.nat({ max: sample.fields.length - 1 }), { minLength: 1, maxLength: 2 })
    .map((indices) => indices.map((index) => sample.fields[index] as Field))
    .map((fields) =>
      fields.filter(
        (field, i) =>
          !fields
            .slice(0, i)
            .some((other) => isPrefix(other.path, field.path) || isPrefix(field.path, other.path)),
      ),
    )
    .chain((fields) => fc.tuple(...fields.map(fieldOp)));
}

/** Extra keys (up to three) in objects of the message, never a key with a meaning there. */
function extras(sample: Sample): fc.Arbitrary<{ slot: Slot; key: string; value: Json }[]> {
  const extra = fc.constantFrom(...sample.slots).chain((slot) =>
    fc.record({
      slot: fc.constant(slot),
      key: fc
        .oneof(anyString, fc.constantFrom(...DANGEROUS_KEYS))
        .filter((key) => !slot.known.has(key)),
      value: slot.map ? anyString : fc.oneof(anyJson, pollutionPayload),
    }),
  );
  return fc.array(extra, { maxLength: 3 });
}

type DiscriminatorChange =
  | { kind: "unknown"; value: string }
  | { kind: "notString"; value: Json | undefined }
  | { kind: "switch"; value: string };

function discriminatorChange(
  known: readonly string[],
  unknown: readonly string[],
): fc.Arbitrary<DiscriminatorChange> {
  return fc.oneof(
    fc
      .oneof(anyString, fc.constantFrom(...unknown), hugeString)
      .filter((value) => !known.includes(value))
      .map((value) => ({ kind: "unknown" as const, value })),
    fc
      .oneof(otherThan(isString), fc.constant(undefined))
      .map((value) => ({ kind: "notString" as const, value })),
    fc.constantFrom(...known).map((value) => ({ kind: "switch" as const, value })),
  );
}

export interface MutationOptions {
  discriminator: "event" | "type";
  /** Every value the codec knows for the discriminator. */
  known: readonly string[];
  /** Unknown values worth trying. */
  unknown: readonly string[];
  /** The reason the codec gives for an unknown or missing discriminator. */
  unknownReason: (value: string) => string;
  noneReason: string;
}

/**
 * Mutations of well-formed messages: extra keys anywhere (prototype names and pollution payloads
 * included), then either one or two field changes (dropped, wrong type, another valid value) or a
 * changed discriminator. Each result says what decoding it must give.
 */
export function mutate(
  samples: fc.Arbitrary<Sample>,
  options: MutationOptions,
): fc.Arbitrary<Mutated> {
  return samples.chain((sample) =>
    fc
      .record({
        extra: extras(sample),
        change: fc.oneof(
          { arbitrary: fieldOps(sample).map((ops) => ({ ops })), weight: 6 },
          {
            arbitrary: discriminatorChange(options.known, options.unknown).map((to) => ({ to })),
            weight: 2,
          },
          { arbitrary: fc.constant({ ops: [] as Op[] }), weight: 1 },
        ),
      })
      .map(({ extra, change }): Mutated => {
        const value = viaJson(sample.value);
        const steps: string[] = [];
        for (const { slot, key, value: added } of extra) {
          setOwn(at(value, slot.path) as JsonObject, key, added);
          steps.push(`${show([...slot.path, key])} += extra`);
        }
        if ("to" in change) {
          const to = change.to;
          setAt(value, [options.discriminator], to.value);
          steps.push(`${options.discriminator} := ${to.kind}`);
          if (to.kind === "switch") return { value, outcome: "any", switchedTo: to.value, steps };
          const reason =
            to.kind === "unknown" ? options.unknownReason(to.value) : options.noneReason;
          return { value, outcome: "ignored", reason, steps };
        }
        for (const op of change.ops) {
          setAt(value, op.path, op.value);
          steps.push(op.what);
        }
        const outcome = change.ops.some((op) => op.outcome === "ignored") ? "ignored" : "valid";
        return { value, outcome, steps };
      }),
  );
}

export const twilioMutation: MutationOptions = {
  discriminator: "event",
  known: TWILIO_EVENTS,
  unknown: ["clear", "Media", "START", "connected ", "closed", ...DANGEROUS_KEYS],
  unknownReason: (value) => `unknown event ${value.slice(0, 40)}`,
  noneReason: "no event",
};

export const agentMutation: MutationOptions = {
  discriminator: "type",
  known: AGENT_TYPES,
  unknown: UNKNOWN_AGENT_TYPES,
  unknownReason: (value) => `unknown type ${value.slice(0, 40)}`,
  noneReason: "no type",
};

/** Corruptions of a message's JSON text: truncated, spliced, wrapped, re-encoded. */
export function corruptText(text: string): fc.Arbitrary<string> {
  const position = fc.nat({ max: text.length });
  return fc.oneof(
    position.map((i) => text.slice(0, i)),
    fc
      .tuple(position, position)
      .map(([a, b]) => text.slice(0, Math.min(a, b)) + text.slice(Math.max(a, b))),
    fc.tuple(position, anyString).map(([i, s]) => text.slice(0, i) + s + text.slice(i)),
    fc
      .tuple(position, fc.constantFrom('"', "{", "}", "[", "]", ",", ":", "\\", "\u0000", "'"))
      .map(([i, c]) => text.slice(0, i) + c + text.slice(i + 1)),
    fc.constantFrom(
      `[${text}]`,
      `${text}${text}`,
      `\ufeff${text}`,
      ` \n\t${text} \n`,
      text.replaceAll('"', "'"),
      text.toUpperCase(),
      text.slice(0, -1),
      `${text.slice(0, -1)},"event":"start","type":"Error"}`,
    ),
  );
}

// ---------------------------------------------------------------- whole frames for sockets

/** A mutated well-formed message, as the JSON text a socket carries. */
export const mutatedTwilioText: fc.Arbitrary<string> = mutate(twilioSample, twilioMutation).map(
  (m) => JSON.stringify(m.value),
);

/** A well-formed message's JSON text, corrupted. */
export const corruptedTwilioText: fc.Arbitrary<string> = twilioSample.chain((sample) =>
  corruptText(JSON.stringify(sample.value)),
);

/** Custom parameters whose token is missing, empty, random or of the right form but wrong. */
export const wrongTokenParameters: fc.Arbitrary<JsonObject | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constant({}),
  fc.constantFrom<JsonObject>(
    { token: "" },
    { token: "undefined" },
    { token: "null" },
    { token: "=" },
  ),
  fc.record({ token: anyString }),
  // 24 random bytes in base64url: what a real token looks like.
  fc.uint8Array({ minLength: 24, maxLength: 24 }).map((bytes) => ({
    token: Buffer.from(bytes).toString("base64url"),
    from: "+15557654321",
    to: "+15550001111",
  })),
  fc.tuple(stringMap, anyString).map(([map, token]) => {
    setOwn(map, "token", token);
    return map;
  }),
);

/**
 * One frame a stranger sends to `WS /twilio`: random text or bytes, mutated or corrupted frames,
 * `media` before any `start`, and well-formed `start`s for `callSids` (other calls) with wrong tokens.
 */
export function strangerFrame(callSids: readonly string[]): fc.Arbitrary<string | Uint8Array> {
  const targeted = twilioStart({
    callSid: fc.oneof(
      fc.constantFrom(...callSids),
      sid("CA"),
      anyString.filter((s) => s.length > 0),
    ),
    customParameters: wrongTokenParameters,
  }).map((frame) => JSON.stringify(frame));
  return fc.oneof(
    { arbitrary: anyString, weight: 3 },
    { arbitrary: fc.json({ maxDepth: 3 }), weight: 1 },
    { arbitrary: fc.uint8Array({ maxLength: 2048 }), weight: 2 },
    { arbitrary: mutatedTwilioText, weight: 6 },
    { arbitrary: corruptedTwilioText, weight: 2 },
    { arbitrary: twilioMedia().map((frame) => JSON.stringify(frame)), weight: 3 },
    { arbitrary: targeted, weight: 2 },
  );
}

/** A text frame of about `bytes` (JSON or not), for frames near the socket's size limit. */
export function bigFrame(bytes: number, as: "media" | "mark" | "garbage"): string {
  if (as === "media")
    return JSON.stringify({
      event: "media",
      streamSid: "MZ1",
      media: { payload: "A".repeat(bytes) },
    });
  if (as === "mark")
    return JSON.stringify({ event: "mark", streamSid: "MZ1", mark: { name: "m".repeat(bytes) } });
  return "{".repeat(bytes);
}

/** A text message from the agent server: mutated, corrupted, unknown or random. */
export const agentText: fc.Arbitrary<string> = fc.oneof(
  {
    arbitrary: mutate(agentSample(), agentMutation).map((m) => JSON.stringify(m.value)),
    weight: 6,
  },
  { arbitrary: agentSample().map((sample) => JSON.stringify(sample.value)), weight: 2 },
  {
    arbitrary: agentSample().chain((sample) => corruptText(JSON.stringify(sample.value))),
    weight: 2,
  },
  { arbitrary: anyString, weight: 1 },
  { arbitrary: fc.json({ maxDepth: 3 }), weight: 1 },
);
