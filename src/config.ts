/**
 * The service's configuration: one TypeBox schema for the environment, validated once at start-up
 * into a typed `Config` that is passed to everything else (nothing else reads `process.env`).
 */
import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import type { ThinkSettingsV1Provider } from "@deepgram/sdk";
import { FormatRegistry, type Static, type TSchema, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { parseWeeklyHours, type WeeklyHours } from "./call/transfer-hours.ts";
import { IntegrationNotConfiguredError } from "./errors.ts";
import { LOG_LEVELS, type LogLevel } from "./log.ts";
import { E164_PATTERN } from "./phone-number.ts";

FormatRegistry.Set("http-url", (value) => hasProtocol(value, ["http:", "https:"]));
FormatRegistry.Set("ws-url", (value) => hasProtocol(value, ["ws:", "wss:"]));
FormatRegistry.Set("redis-url", (value) => hasProtocol(value, ["redis:", "rediss:"]));
FormatRegistry.Set("postgres-url", (value) => hasProtocol(value, ["postgres:", "postgresql:"]));
FormatRegistry.Set("ip-list", (value) => splitList(value).every((address) => isIP(address) !== 0));

/** Comma-separated values, trimmed, empty ones dropped. */
function splitList(value: string): string[] {
  return value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

function hasProtocol(value: string, protocols: string[]): boolean {
  const url = URL.parse(value);
  return url !== null && protocols.includes(url.protocol) && url.hostname !== "";
}

/** Options every variable carries: what it is (for docs) and what a valid value looks like (for errors). */
interface VariableInfo {
  description: string;
  expected: string;
  secret?: boolean;
}

function variable<S extends TSchema>(schema: S, info: VariableInfo): S {
  return Object.assign(schema, info);
}

/** One `+E164=scenario-id` pair of INBOUND_SCENARIOS. */
const SCENARIO_ROUTE = "\\+[1-9][0-9]{1,14}=[a-z0-9][a-z0-9-]*";

/** One `scenario-id=+E164` pair of TRANSFER_NUMBERS. */
const TRANSFER_ROUTE = "[a-z0-9][a-z0-9-]*=\\+[1-9][0-9]{1,14}";
/** One `scenario-id=hours` pair of TRANSFER_HOURS (the hours are checked by `parseWeeklyHours`). */
const TRANSFER_HOURS_ENTRY = "[a-z0-9][a-z0-9-]*=[^,=]+";

/** `key=value` pairs separated by commas, trimmed. */
function pairs(value: string | undefined): [string, string][] {
  return splitList(value ?? "").map((pair) => {
    const at = pair.indexOf("=");
    return [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
  });
}

/** A duration in milliseconds with a default. */
function duration(defaultMs: number, description: string) {
  return variable(Type.Integer({ default: defaultMs, minimum: 1, maximum: 86_400_000 }), {
    description: `${description} (ms)`,
    expected: "an integer number of milliseconds from 1 to 86400000",
  });
}

/**
 * Think providers of the Voice Agent and the models Deepgram's Settings schema accepts for each
 * (its per-provider enums as of 2026-07; see docs/DEEPGRAM.md). A model of another provider's list
 * fails the schema, so start-up refuses it; a model in no list (a newer one) only warns.
 */
export const THINK_PROVIDERS = [
  "open_ai",
  "anthropic",
  "google",
] as const satisfies readonly ThinkSettingsV1Provider["type"][];
export type ThinkProvider = (typeof THINK_PROVIDERS)[number];

export const KNOWN_THINK_MODELS: Readonly<Record<ThinkProvider, readonly string[]>> = {
  open_ai: [
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4o",
    "gpt-4o-mini",
  ],
  anthropic: ["claude-3-5-haiku-latest", "claude-sonnet-4-20250514"],
  google: ["gemini-2.0-flash", "gemini-2.0-flash-lite", "gemini-2.5-flash"],
};

/** LLM_MODEL when unset: a small, fast model of the chosen provider. */
export const DEFAULT_THINK_MODEL: Readonly<Record<ThinkProvider, string>> = {
  open_ai: "gpt-4o-mini",
  anthropic: "claude-3-5-haiku-latest",
  google: "gemini-2.0-flash",
};

/**
 * AMD_VERDICT_TIMEOUT_MS when unset: MACHINE_DETECTION_TIMEOUT_S plus this, so Twilio's own
 * timeout ("unknown") and the callback carrying it arrive before the local fallback would fire.
 */
export const AMD_VERDICT_MARGIN_MS = 5_000;

/** One of Twilio's answering-machine tuning parameters: an integer in Twilio's documented range. */
function twilioAmd(
  twilioName: string,
  unit: "seconds" | "milliseconds",
  range: { default: number; minimum: number; maximum: number },
  description: string,
) {
  return variable(Type.Integer(range), {
    description: `${description} (Twilio's ${twilioName}, ${unit === "seconds" ? "s" : "ms"})`,
    expected: `an integer number of ${unit} from ${range.minimum} to ${range.maximum} (Twilio's range for ${twilioName})`,
  });
}

/** Every environment variable the service reads. Names are a public interface: keep them. */
export const Environment = Type.Object({
  SERVER_HOST: variable(Type.String({ default: "0.0.0.0", minLength: 1 }), {
    description: "Interface the HTTP/WebSocket server binds to",
    expected: "a host name or IP address",
  }),
  SERVER_PORT: variable(Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }), {
    description: "TCP port of the server (0 picks a free port)",
    expected: "an integer from 0 to 65535",
  }),
  SERVER_REUSE_PORT: variable(Type.Boolean({ default: false }), {
    description:
      "Share SERVER_PORT with other processes that also set this (SO_REUSEPORT, Linux); unset, start-up stops when the port is taken",
    expected: "true or false",
  }),
  WORKERS: variable(Type.String({ default: "1", pattern: "^(auto|[1-9][0-9]?)$" }), {
    description:
      "Worker processes sharing SERVER_PORT on this machine (voice-agent --workers N), supervised; auto: one per core",
    expected: "auto or a whole number from 1 to 99",
  }),
  SERVER_EXTERNAL_URL: variable(Type.Optional(Type.String({ format: "http-url" })), {
    description:
      "Public https URL at which Twilio reaches this service (webhooks and media streams)",
    expected: "an absolute http(s) URL such as https://voice.example.com",
  }),
  ENDPOINT_SECRET: variable(Type.Optional(Type.String({ minLength: 16 })), {
    description:
      "Bearer secret for the call-placing and call-record endpoints (required once Twilio is configured; 32+ characters advised)",
    expected: "at least 16 characters",
    secret: true,
  }),
  TRUSTED_PROXIES: variable(Type.Optional(Type.String({ format: "ip-list" })), {
    description:
      "Reverse proxies whose X-Forwarded-For is believed, e.g. 127.0.0.1 behind a local Caddy or nginx (unset: none)",
    expected: "comma-separated IP addresses",
  }),
  DATABASE_PATH: variable(Type.String({ default: "./data/voice-agent.db", minLength: 1 }), {
    description: "SQLite database file (created with its folder if missing; ':memory:' for none)",
    expected: "a file path",
  }),
  DATABASE_URL: variable(Type.Optional(Type.String({ format: "postgres-url" })), {
    description:
      "PostgreSQL to keep the data in, shared by every instance (unset: the SQLite file at DATABASE_PATH)",
    expected: "a postgres:// URL such as postgres://voice:password@db.internal:5432/voice",
    secret: true,
  }),
  REDIS_URL: variable(Type.Optional(Type.String({ format: "redis-url" })), {
    description:
      "Redis the instances coordinate through: stream tokens, the call limit, who holds each call (unset: this process alone)",
    expected: "a redis:// or rediss:// URL such as redis://redis.internal:6379",
    secret: true,
  }),
  REDIS_KEY_PREFIX: variable(
    Type.String({ default: "voice-agent:", minLength: 1, maxLength: 64, pattern: "^[!-~]+$" }),
    {
      description:
        "Prefix of this service's Redis keys and channels (one per service sharing a Redis)",
      expected: "1 to 64 printable characters without spaces",
    },
  ),
  CALL_EVENTS_FLUSH_MS: variable(Type.Integer({ default: 200, minimum: 1, maximum: 5_000 }), {
    description:
      "How long call events are held in memory before they are written together; a crash loses at most this long (ms)",
    expected: "an integer number of milliseconds from 1 to 5000",
  }),
  INSTANCE_HEARTBEAT_MS: variable(Type.Integer({ default: 5_000, minimum: 50, maximum: 60_000 }), {
    description:
      "How often this instance tells the others (database, Redis) it is alive, and looks for dead ones (ms)",
    expected: "an integer number of milliseconds from 50 to 60000",
  }),
  INSTANCE_LOST_AFTER_MS: variable(
    Type.Integer({ default: 20_000, minimum: 200, maximum: 600_000 }),
    {
      description:
        "An instance silent this long is dead: its live calls are ended (instance_lost) and their slots freed (ms)",
      expected:
        "an integer number of milliseconds from 200 to 600000, more than INSTANCE_HEARTBEAT_MS",
    },
  ),
  SHUTDOWN_DRAIN_MS: variable(Type.Integer({ default: 60_000, minimum: 0, maximum: 3_600_000 }), {
    description: "On SIGTERM/SIGINT, how long live calls may go on before they are hung up (ms)",
    expected: "an integer number of milliseconds from 0 to 3600000",
  }),
  SHUTDOWN_GOODBYE_MS: duration(
    5_000,
    "When the drain time is over, how long calls still live get to hear the goodbye before the sockets are closed",
  ),
  STREAM_START_TIMEOUT_MS: duration(
    5_000,
    "A media stream that has not sent a valid start by then is closed",
  ),
  MAX_PENDING_STREAMS: variable(Type.Integer({ default: 200, minimum: 1, maximum: 100_000 }), {
    description: "Media streams open at once that have not started yet; more are refused",
    expected: "an integer from 1 to 100000",
  }),
  MAX_PENDING_STREAMS_PER_CLIENT: variable(
    Type.Integer({ default: 20, minimum: 1, maximum: 100_000 }),
    {
      description: "The same, per client address (see TRUSTED_PROXIES)",
      expected: "an integer from 1 to 100000",
    },
  ),
  ALLOW_DEV_STREAMS: variable(Type.Boolean({ default: false }), {
    description:
      "Accept media streams without a one-time token (local development with scripts/dev-client.ts only)",
    expected: "true or false",
  }),
  DEFAULT_SCENARIO: variable(Type.String({ default: "dental-receptionist", minLength: 1 }), {
    description: "Scenario for a stream that names none (inbound calls, dev streams)",
    expected: "a scenario id",
  }),
  MAX_CONCURRENT_CALLS: variable(Type.Integer({ default: 20, minimum: 1, maximum: 10_000 }), {
    description:
      "Live calls (plus calls about to connect) this process takes at once; more get a polite busy message",
    expected: "an integer from 1 to 10000",
  }),
  CAMPAIGN_INBOUND_HEADROOM: variable(Type.Integer({ default: 2, minimum: 0, maximum: 10_000 }), {
    description: "Calls of MAX_CONCURRENT_CALLS that campaigns leave free for inbound callers",
    expected: "an integer from 0 to 10000",
  }),
  INBOUND_SCENARIOS: variable(
    Type.Optional(Type.String({ pattern: `^${SCENARIO_ROUTE}(,\\s*${SCENARIO_ROUTE})*$` })),
    {
      description:
        "Scenario per called number for inbound calls, e.g. +15551230000=dental-receptionist,+15559870000=other",
      expected: "comma-separated +E164=scenario-id pairs",
    },
  ),
  INBOUND_DISCLOSURE: variable(Type.Optional(Type.String({ maxLength: 500 })), {
    description:
      'Said to inbound callers before the agent answers, e.g. "This call may be recorded." (unset: nothing)',
    expected: "up to 500 characters",
  }),
  EVENTS_WEBHOOK_URL: variable(Type.Optional(Type.String({ format: "http-url" })), {
    description:
      'Where each ended call is POSTed ({"event":"call.ended","call":…}, signed with EVENTS_WEBHOOK_SECRET); unset: nothing is sent',
    expected: "an absolute http(s) URL",
  }),
  EVENTS_WEBHOOK_SECRET: variable(Type.Optional(Type.String({ minLength: 16 })), {
    description:
      "Signs the events webhook (X-Voice-Agent-Signature: t=…,v1=HMAC-SHA256); required with EVENTS_WEBHOOK_URL",
    expected: "at least 16 characters",
    secret: true,
  }),
  EVENTS_WEBHOOK_RETRY_MS: duration(
    10_000,
    "First retry of a failed events-webhook delivery; each next waits twice as long (at most 10 minutes), for up to an hour",
  ),
  RECORDING: variable(
    Type.Union([Type.Literal("off"), Type.Literal("local")], { default: "off" }),
    {
      description:
        "local: each call is recorded as a two-channel WAV (caller, and what the caller heard) in RECORDINGS_DIR; needs INBOUND_DISCLOSURE",
      expected: "off or local",
    },
  ),
  RECORDINGS_DIR: variable(Type.String({ default: "./data/recordings", minLength: 1 }), {
    description:
      "Where recordings are written (created, mode 0700); shared by every instance that serves them",
    expected: "a directory path",
  }),
  RECORDING_RETENTION_DAYS: variable(Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })), {
    description:
      "Recordings older than this are deleted (checked hourly; the call record keeps a note); unset: kept",
    expected: "an integer number of days from 1 to 3650",
  }),
  TRANSFER_NUMBER: variable(Type.Optional(Type.String({ pattern: E164_PATTERN })), {
    description:
      "Where transfer_call connects the caller (a person's phone, E.164) unless TRANSFER_NUMBERS names one for the scenario; unset: no transfers",
    expected: "an E.164 phone number such as +15551234567",
  }),
  TRANSFER_NUMBERS: variable(
    Type.Optional(Type.String({ pattern: `^${TRANSFER_ROUTE}(,\\s*${TRANSFER_ROUTE})*$` })),
    {
      description:
        "Transfer target per scenario, e.g. dental-receptionist=+15551230000,insurance-followup=+15559870000",
      expected: "comma-separated scenario-id=+E164 pairs",
    },
  ),
  TRANSFER_HOURS: variable(
    Type.Optional(
      Type.String({ pattern: `^${TRANSFER_HOURS_ENTRY}(,\\s*${TRANSFER_HOURS_ENTRY})*$` }),
    ),
    {
      description:
        "When someone takes transfers, per scenario, in the scenario's time zone, e.g. dental-receptionist=Mon-Fri 08:00-17:00; Sat 09:00-12:00 (unset for a scenario: always)",
      expected:
        "comma-separated scenario-id=hours pairs, hours like Mon-Fri 08:00-17:00; Sat 09:00-12:00",
    },
  ),
  TRANSFER_RING_TIMEOUT_S: variable(Type.Integer({ default: 25, minimum: 5, maximum: 600 }), {
    description:
      "How long a transfer rings the person before the caller is put back with the agent (Twilio's <Dial timeout>, s)",
    expected: "an integer number of seconds from 5 to 600",
  }),
  TWILIO_VALIDATE_SIGNATURES: variable(Type.Boolean({ default: true }), {
    description:
      "Check X-Twilio-Signature on Twilio's webhooks (turning it off logs a warning at start-up)",
    expected: "true or false",
  }),
  SILENCE_PROMPT_MS: duration(
    20_000,
    'Quiet time after the agent has been heard before it asks "Are you still there?"',
  ),
  SILENCE_HANGUP_MS: duration(
    15_000,
    "Further quiet time after that prompt before the agent says goodbye and hangs up",
  ),
  MAX_CALL_DURATION_MS: duration(1_800_000, "Longest call; then the agent ends it politely"),
  TOOL_TIMEOUT_MS: duration(10_000, "Longest a function call into the backend may take"),
  AGENT_CONNECT_TIMEOUT_MS: duration(
    5_000,
    "Longest wait for the Voice Agent to apply its settings",
  ),
  AGENT_KEEPALIVE_MS: duration(5_000, "KeepAlive to the Voice Agent after this long without audio"),
  AMD_VERDICT_TIMEOUT_MS: variable(
    Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000 })),
    {
      description: `Outbound: if Twilio's answering-machine verdict has not come by then (its callback lost), the callee counts as a person; must be longer than MACHINE_DETECTION_TIMEOUT_S (unset: that plus ${AMD_VERDICT_MARGIN_MS} ms) (ms)`,
      expected: "an integer number of milliseconds from 1 to 86400000",
    },
  ),
  MACHINE_DETECTION_TIMEOUT_S: twilioAmd(
    "MachineDetectionTimeout",
    "seconds",
    { default: 30, minimum: 3, maximum: 59 },
    "Outbound: longest Twilio listens for a machine's greeting to end; then it answers unknown and the agent starts, over a longer greeting",
  ),
  MACHINE_DETECTION_SPEECH_THRESHOLD_MS: twilioAmd(
    "MachineDetectionSpeechThreshold",
    "milliseconds",
    { default: 2400, minimum: 1000, maximum: 6000 },
    "Outbound: speech shorter than this counts as a person, longer as a machine",
  ),
  MACHINE_DETECTION_SPEECH_END_THRESHOLD_MS: twilioAmd(
    "MachineDetectionSpeechEndThreshold",
    "milliseconds",
    { default: 1200, minimum: 500, maximum: 5000 },
    "Outbound: silence after speech that ends it (a person's verdict comes this long after they stop)",
  ),
  MACHINE_DETECTION_SILENCE_TIMEOUT_MS: twilioAmd(
    "MachineDetectionSilenceTimeout",
    "milliseconds",
    { default: 5000, minimum: 2000, maximum: 10000 },
    "Outbound: initial silence after which Twilio answers unknown (the agent starts)",
  ),
  HANGUP_SETTLE_MS: duration(
    1_500,
    "When the agent asks to end the call before saying goodbye: how long to wait for its goodbye to start",
  ),
  HANGUP_SAFETY_MS: duration(
    15_000,
    "When ending: hang up after this long even if audio is still due",
  ),
  DEEPGRAM_API_KEY: variable(Type.Optional(Type.String({ minLength: 1 })), {
    description: "Deepgram API key (Voice Agent and TTS)",
    expected: "a Deepgram API key",
    secret: true,
  }),
  DEEPGRAM_AGENT_URL: variable(
    Type.String({ default: "wss://agent.deepgram.com/v1/agent/converse", format: "ws-url" }),
    {
      description: "Deepgram Voice Agent WebSocket URL",
      expected: "an absolute ws(s) URL",
    },
  ),
  DEEPGRAM_API_URL: variable(
    Type.String({ default: "https://api.deepgram.com", format: "http-url" }),
    {
      description: "Deepgram REST base URL (text-to-speech for voicemail and fallback prompts)",
      expected: "an absolute http(s) URL",
    },
  ),
  DEEPGRAM_MIP_OPT_OUT: variable(Type.Boolean({ default: true }), {
    description:
      "Voice Agent mip_opt_out: keep calls, which carry personal and health details, out of Deepgram's Model Improvement Program (false lets Deepgram use them; opting out may change the price, see docs/DEEPGRAM.md)",
    expected: "true or false",
  }),
  TWILIO_ACCOUNT_SID: variable(Type.Optional(Type.String({ pattern: "^AC[0-9a-fA-F]{32}$" })), {
    description: "Twilio Account SID",
    expected: "'AC' followed by 32 hexadecimal characters",
  }),
  TWILIO_AUTH_TOKEN: variable(Type.Optional(Type.String({ minLength: 1 })), {
    description: "Twilio Auth Token (REST calls and webhook signature validation)",
    expected: "a Twilio auth token",
    secret: true,
  }),
  TWILIO_PHONE_NUMBER: variable(Type.Optional(Type.String({ pattern: E164_PATTERN })), {
    description: "Twilio number that outbound calls come from, in E.164",
    expected: "an E.164 phone number such as +15551234567",
  }),
  TWILIO_API_URL: variable(Type.String({ default: "https://api.twilio.com", format: "http-url" }), {
    description: "Twilio REST base URL (point it at a local fake in tests)",
    expected: "an absolute http(s) URL",
  }),
  TWILIO_VALIDATE_STREAM_SIGNATURES: variable(Type.Boolean({ default: false }), {
    description:
      "Also require a valid X-Twilio-Signature on the media-stream WebSocket upgrade (the one-time token is always required)",
    expected: "true or false",
  }),
  LLM_PROVIDER: variable(
    Type.Union(
      THINK_PROVIDERS.map((provider) => Type.Literal(provider)),
      { default: "open_ai" },
    ),
    {
      description: "Think provider of the Voice Agent",
      expected: `one of ${THINK_PROVIDERS.join(", ")}`,
    },
  ),
  LLM_MODEL: variable(Type.Optional(Type.String({ minLength: 1 })), {
    description: `Think model of the Voice Agent, one of LLM_PROVIDER's (unset: per provider, ${THINK_PROVIDERS.map((provider) => `${DEFAULT_THINK_MODEL[provider]} for ${provider}`).join(", ")})`,
    expected: "a model name",
  }),
  VOICE_MODEL: variable(Type.String({ default: "aura-2-thalia-en", minLength: 1 }), {
    description: "Deepgram Aura voice for the agent and for voicemail",
    expected: "a voice model name",
  }),
  TTS_PROVIDER: variable(Type.Union([Type.Literal("deepgram")], { default: "deepgram" }), {
    description: "Speech provider of the Voice Agent",
    expected: "deepgram",
  }),
  STT_MODEL: variable(Type.String({ default: "flux-general-en", minLength: 1 }), {
    description: "Deepgram listen model (Flux turn-taking)",
    expected: "a model name",
  }),
  LOG_LEVEL: variable(
    Type.Union(
      LOG_LEVELS.map((level) => Type.Literal(level)),
      { default: "info" },
    ),
    {
      description: "Lowest level written to the JSON log",
      expected: `one of ${LOG_LEVELS.join(", ")}`,
    },
  ),
});
export type Environment = Static<typeof Environment>;

export type VariableName = keyof Environment;

/** The validated configuration handed to every module. Durations are milliseconds. */
export interface Config {
  server: {
    host: string;
    port: number;
    /** Listen on a port other processes listen on too (SO_REUSEPORT) instead of refusing to start. */
    reusePort: boolean;
    /** Worker processes to run on this machine (1: this process serves alone). */
    workers: number;
    /** Public base URL without a trailing slash, or undefined when not set. */
    externalUrl: string | undefined;
    endpointSecret: string | undefined;
    /** Peers whose X-Forwarded-For names the client. */
    trustedProxies: ReadonlySet<string>;
    shutdownDrainMs: number;
    shutdownGoodbyeMs: number;
  };
  databasePath: string;
  /** PostgreSQL connection URL; undefined: the SQLite file at `databasePath`. */
  databaseUrl: string | undefined;
  /** Redis for coordinating instances; undefined: this process alone. */
  redis: { url: string | undefined; keyPrefix: string };
  /** How instances watch each other: a beat every `heartbeatMs`; silent `lostAfterMs`: dead. */
  instances: { heartbeatMs: number; lostAfterMs: number };
  /** How long call events wait in memory to be written together. */
  callEventsFlushMs: number;
  streams: {
    startTimeoutMs: number;
    maxPending: number;
    maxPendingPerClient: number;
  };
  calls: {
    allowDevStreams: boolean;
    defaultScenario: string;
    maxConcurrent: number;
    /** Of `maxConcurrent`, calls campaigns leave free for inbound callers. */
    campaignInboundHeadroom: number;
    /** Called number → scenario id for inbound calls. */
    inboundScenarios: ReadonlyMap<string, string>;
    inboundDisclosure: string | undefined;
    silencePromptMs: number;
    silenceHangupMs: number;
    maxCallMs: number;
    toolTimeoutMs: number;
    agentConnectTimeoutMs: number;
    agentKeepAliveMs: number;
    /** Local fallback when Twilio's verdict does not come; longer than `twilio.machineDetection.timeoutS`. */
    amdVerdictTimeoutMs: number;
    endSettleMs: number;
    hangupSafetyMs: number;
  };
  /** Ended calls POSTed to the CRM; undefined when EVENTS_WEBHOOK_URL is unset. */
  eventsWebhook: { url: string; secret: string; retryMs: number } | undefined;
  /** Recording calls to files. */
  recording: {
    mode: "off" | "local";
    dir: string;
    /** Days a recording is kept; undefined: for ever. */
    retentionDays: number | undefined;
  };
  /** Handing a caller to a person (`transfer_call`). */
  transfer: {
    /** TRANSFER_NUMBER: the target of every scenario without its own. */
    defaultNumber: string | undefined;
    /** Scenario id → target. */
    numbers: ReadonlyMap<string, string>;
    /** Scenario id → when someone answers; a scenario not here: always. */
    hours: ReadonlyMap<string, WeeklyHours>;
    ringTimeoutS: number;
  };
  deepgram: {
    apiKey: string | undefined;
    agentUrl: string;
    apiUrl: string;
    /** Voice Agent `mip_opt_out`: calls stay out of Deepgram's Model Improvement Program. */
    mipOptOut: boolean;
  };
  twilio: {
    accountSid: string | undefined;
    authToken: string | undefined;
    phoneNumber: string | undefined;
    apiUrl: string;
    validateSignatures: boolean;
    validateStreamSignatures: boolean;
    /** Answering-machine tuning sent with every outbound call, in Twilio's own units. */
    machineDetection: {
      timeoutS: number;
      speechThresholdMs: number;
      speechEndThresholdMs: number;
      silenceTimeoutMs: number;
    };
  };
  agent: {
    llmProvider: ThinkProvider;
    llmModel: string;
    voiceModel: string;
    ttsProvider: Environment["TTS_PROVIDER"];
    sttModel: string;
  };
  logLevel: LogLevel;
}

/** Thrown by `loadConfig`; its message lists every bad variable, one a line. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

const variableNames = Object.keys(Environment.properties) as VariableName[];

function variableInfo(name: VariableName): VariableInfo {
  return Environment.properties[name] as unknown as VariableInfo;
}

/**
 * Validates an environment (normally `process.env`, which Bun fills from `.env`) into a `Config`.
 * Empty values count as unset. Throws `ConfigError` naming every invalid variable at once, including
 * pairs that do not fit: LLM_MODEL of another provider than LLM_PROVIDER, and AMD_VERDICT_TIMEOUT_MS
 * not longer than MACHINE_DETECTION_TIMEOUT_S. What is valid but doubtful is in `configWarnings`.
 * @example loadConfig({ SERVER_PORT: "9000" }).server.port // 9000
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const raw: Record<string, string> = {};
  for (const name of variableNames) {
    const value = env[name]?.trim();
    if (value) raw[name] = value;
  }
  const candidate = Value.Convert(Environment, Value.Default(Environment, { ...raw }));
  const problems = new Map<string, string>();
  for (const error of Value.Errors(Environment, candidate)) {
    const name = error.path.split("/")[1] as VariableName;
    if (problems.has(name)) continue;
    const info = variableInfo(name);
    const shown = info.secret ? "" : ` (got ${JSON.stringify(raw[name])})`;
    problems.set(name, `${name}: expected ${info.expected}${shown}`);
  }
  const valid = (name: VariableName) => !problems.has(name);
  const valued = candidate as Environment;
  if (valid("LLM_PROVIDER") && valid("LLM_MODEL") && valued.LLM_MODEL !== undefined) {
    const mismatch = modelOfAnotherProvider(valued.LLM_PROVIDER, valued.LLM_MODEL);
    if (mismatch) problems.set("LLM_MODEL", mismatch);
  }
  if (
    valid("AMD_VERDICT_TIMEOUT_MS") &&
    valid("MACHINE_DETECTION_TIMEOUT_S") &&
    valued.AMD_VERDICT_TIMEOUT_MS !== undefined &&
    valued.AMD_VERDICT_TIMEOUT_MS <= valued.MACHINE_DETECTION_TIMEOUT_S * 1000
  ) {
    const twilioMs = valued.MACHINE_DETECTION_TIMEOUT_S * 1000;
    problems.set(
      "AMD_VERDICT_TIMEOUT_MS",
      `AMD_VERDICT_TIMEOUT_MS: must be longer than MACHINE_DETECTION_TIMEOUT_S (${twilioMs} ms), or the agent starts before Twilio's verdict can come and talks over voicemail greetings; leave it unset for ${twilioMs + AMD_VERDICT_MARGIN_MS} (got ${JSON.stringify(raw.AMD_VERDICT_TIMEOUT_MS)})`,
    );
  }
  if (
    valid("INSTANCE_HEARTBEAT_MS") &&
    valid("INSTANCE_LOST_AFTER_MS") &&
    valued.INSTANCE_LOST_AFTER_MS < 2 * valued.INSTANCE_HEARTBEAT_MS
  ) {
    problems.set(
      "INSTANCE_LOST_AFTER_MS",
      `INSTANCE_LOST_AFTER_MS: must be at least twice INSTANCE_HEARTBEAT_MS (${valued.INSTANCE_HEARTBEAT_MS} ms), or one late beat ends a healthy instance's calls (got ${JSON.stringify(raw.INSTANCE_LOST_AFTER_MS)})`,
    );
  }
  if (
    valued.EVENTS_WEBHOOK_URL &&
    !valued.EVENTS_WEBHOOK_SECRET &&
    valid("EVENTS_WEBHOOK_SECRET")
  ) {
    problems.set(
      "EVENTS_WEBHOOK_SECRET",
      "EVENTS_WEBHOOK_SECRET: required with EVENTS_WEBHOOK_URL, so the receiver can tell the service's posts from anyone's; make one with: openssl rand -hex 32",
    );
  }
  if (valued.RECORDING === "local" && !valued.INBOUND_DISCLOSURE) {
    problems.set(
      "INBOUND_DISCLOSURE",
      'INBOUND_DISCLOSURE: required with RECORDING=local, so that inbound callers hear that the call is recorded (e.g. "This call may be recorded.")',
    );
  }
  if (valid("TRANSFER_HOURS")) {
    for (const [scenario, hours] of pairs(valued.TRANSFER_HOURS)) {
      try {
        parseWeeklyHours(hours);
      } catch (error) {
        problems.set(
          "TRANSFER_HOURS",
          `TRANSFER_HOURS: ${scenario}: ${(error as Error).message} (got ${JSON.stringify(raw.TRANSFER_HOURS)})`,
        );
        break;
      }
    }
  }
  if (problems.size > 0) throw new ConfigError([...problems.values()]);
  return toConfig(valued);
}

/** The problem with a model Deepgram knows for another provider only, or undefined. */
function modelOfAnotherProvider(provider: ThinkProvider, model: string): string | undefined {
  if (KNOWN_THINK_MODELS[provider].includes(model)) return undefined;
  const owner = THINK_PROVIDERS.find((other) => KNOWN_THINK_MODELS[other].includes(model));
  if (!owner) return undefined;
  return `LLM_MODEL: ${model} is a model of ${owner}, not of LLM_PROVIDER=${provider} (Deepgram would refuse the settings and every call would end in the apology); use one of ${KNOWN_THINK_MODELS[provider].join(", ")}, or leave LLM_MODEL unset for ${DEFAULT_THINK_MODEL[provider]}`;
}

/**
 * What is valid but worth a warning in the log at start-up (`loadConfig` cannot log): a think model
 * in no known list (newer than this build, or a typo Deepgram will refuse), an events webhook
 * over plain http to another machine, and campaigns left no room by their inbound headroom.
 * @example for (const warning of configWarnings(config)) logger.warn(warning);
 */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  const { llmProvider, llmModel } = config.agent;
  const known = KNOWN_THINK_MODELS[llmProvider];
  if (!known.includes(llmModel)) {
    warnings.push(
      `LLM_MODEL: ${llmModel} is not a known ${llmProvider} model (known: ${known.join(", ")}); if Deepgram refuses it, every call ends in the apology`,
    );
  }
  const hook = config.eventsWebhook ? URL.parse(config.eventsWebhook.url) : null;
  if (hook?.protocol === "http:" && !["127.0.0.1", "localhost", "[::1]"].includes(hook.hostname)) {
    warnings.push(
      "EVENTS_WEBHOOK_URL: plain http to another machine; each call's transcript and the lead's details would cross the network unencrypted (use https)",
    );
  }
  const { maxConcurrent, campaignInboundHeadroom } = config.calls;
  if (campaignInboundHeadroom >= maxConcurrent) {
    warnings.push(
      `CAMPAIGN_INBOUND_HEADROOM: ${campaignInboundHeadroom} of MAX_CONCURRENT_CALLS=${maxConcurrent} kept for inbound calls leaves none for campaigns; they will place no call`,
    );
  }
  return warnings;
}

function toConfig(env: Environment): Config {
  return {
    server: {
      host: env.SERVER_HOST,
      port: env.SERVER_PORT,
      reusePort: env.SERVER_REUSE_PORT,
      workers: env.WORKERS === "auto" ? availableParallelism() : Number(env.WORKERS),
      externalUrl: env.SERVER_EXTERNAL_URL?.replace(/\/+$/, ""),
      endpointSecret: env.ENDPOINT_SECRET,
      trustedProxies: new Set(splitList(env.TRUSTED_PROXIES ?? "")),
      shutdownDrainMs: env.SHUTDOWN_DRAIN_MS,
      shutdownGoodbyeMs: env.SHUTDOWN_GOODBYE_MS,
    },
    streams: {
      startTimeoutMs: env.STREAM_START_TIMEOUT_MS,
      maxPending: env.MAX_PENDING_STREAMS,
      maxPendingPerClient: env.MAX_PENDING_STREAMS_PER_CLIENT,
    },
    databasePath: env.DATABASE_PATH,
    databaseUrl: env.DATABASE_URL,
    redis: { url: env.REDIS_URL, keyPrefix: env.REDIS_KEY_PREFIX },
    instances: { heartbeatMs: env.INSTANCE_HEARTBEAT_MS, lostAfterMs: env.INSTANCE_LOST_AFTER_MS },
    callEventsFlushMs: env.CALL_EVENTS_FLUSH_MS,
    calls: {
      allowDevStreams: env.ALLOW_DEV_STREAMS,
      defaultScenario: env.DEFAULT_SCENARIO,
      maxConcurrent: env.MAX_CONCURRENT_CALLS,
      campaignInboundHeadroom: env.CAMPAIGN_INBOUND_HEADROOM,
      inboundScenarios: new Map(
        (env.INBOUND_SCENARIOS ?? "")
          .split(",")
          .map((pair) => pair.trim().split("=") as [string, string])
          .filter(([number]) => number !== ""),
      ),
      inboundDisclosure: env.INBOUND_DISCLOSURE,
      silencePromptMs: env.SILENCE_PROMPT_MS,
      silenceHangupMs: env.SILENCE_HANGUP_MS,
      maxCallMs: env.MAX_CALL_DURATION_MS,
      toolTimeoutMs: env.TOOL_TIMEOUT_MS,
      agentConnectTimeoutMs: env.AGENT_CONNECT_TIMEOUT_MS,
      agentKeepAliveMs: env.AGENT_KEEPALIVE_MS,
      amdVerdictTimeoutMs:
        env.AMD_VERDICT_TIMEOUT_MS ??
        env.MACHINE_DETECTION_TIMEOUT_S * 1000 + AMD_VERDICT_MARGIN_MS,
      endSettleMs: env.HANGUP_SETTLE_MS,
      hangupSafetyMs: env.HANGUP_SAFETY_MS,
    },
    eventsWebhook:
      env.EVENTS_WEBHOOK_URL && env.EVENTS_WEBHOOK_SECRET
        ? {
            url: env.EVENTS_WEBHOOK_URL,
            secret: env.EVENTS_WEBHOOK_SECRET,
            retryMs: env.EVENTS_WEBHOOK_RETRY_MS,
          }
        : undefined,
    recording: {
      mode: env.RECORDING,
      dir: env.RECORDINGS_DIR,
      retentionDays: env.RECORDING_RETENTION_DAYS,
    },
    transfer: {
      defaultNumber: env.TRANSFER_NUMBER,
      numbers: new Map(pairs(env.TRANSFER_NUMBERS)),
      hours: new Map(
        pairs(env.TRANSFER_HOURS).map(([scenario, hours]) => [scenario, parseWeeklyHours(hours)]),
      ),
      ringTimeoutS: env.TRANSFER_RING_TIMEOUT_S,
    },
    deepgram: {
      apiKey: env.DEEPGRAM_API_KEY,
      agentUrl: env.DEEPGRAM_AGENT_URL,
      apiUrl: env.DEEPGRAM_API_URL.replace(/\/+$/, ""),
      mipOptOut: env.DEEPGRAM_MIP_OPT_OUT,
    },
    twilio: {
      accountSid: env.TWILIO_ACCOUNT_SID,
      authToken: env.TWILIO_AUTH_TOKEN,
      phoneNumber: env.TWILIO_PHONE_NUMBER,
      apiUrl: env.TWILIO_API_URL.replace(/\/+$/, ""),
      validateSignatures: env.TWILIO_VALIDATE_SIGNATURES,
      validateStreamSignatures: env.TWILIO_VALIDATE_STREAM_SIGNATURES,
      machineDetection: {
        timeoutS: env.MACHINE_DETECTION_TIMEOUT_S,
        speechThresholdMs: env.MACHINE_DETECTION_SPEECH_THRESHOLD_MS,
        speechEndThresholdMs: env.MACHINE_DETECTION_SPEECH_END_THRESHOLD_MS,
        silenceTimeoutMs: env.MACHINE_DETECTION_SILENCE_TIMEOUT_MS,
      },
    },
    agent: {
      llmProvider: env.LLM_PROVIDER,
      llmModel: env.LLM_MODEL ?? DEFAULT_THINK_MODEL[env.LLM_PROVIDER],
      voiceModel: env.VOICE_MODEL,
      ttsProvider: env.TTS_PROVIDER,
      sttModel: env.STT_MODEL,
    },
    logLevel: env.LOG_LEVEL,
  };
}

export type IntegrationName = "twilio" | "deepgram";

export interface IntegrationStatus {
  configured: boolean;
  /** Variables still to set before the integration can be used. */
  missing: VariableName[];
}

const integrationLabels: Record<IntegrationName, string> = {
  twilio: "Twilio",
  deepgram: "Deepgram",
};

/** Which outside services are usable with this configuration, and what each still lacks. */
export function integrationStatus(config: Config): Record<IntegrationName, IntegrationStatus> {
  const status = (required: Partial<Record<VariableName, unknown>>): IntegrationStatus => {
    const missing = (Object.keys(required) as VariableName[]).filter((name) => !required[name]);
    return { configured: missing.length === 0, missing };
  };
  return {
    twilio: status({
      TWILIO_ACCOUNT_SID: config.twilio.accountSid,
      TWILIO_AUTH_TOKEN: config.twilio.authToken,
      TWILIO_PHONE_NUMBER: config.twilio.phoneNumber,
      SERVER_EXTERNAL_URL: config.server.externalUrl,
    }),
    deepgram: status({ DEEPGRAM_API_KEY: config.deepgram.apiKey }),
  };
}

/**
 * Guard for endpoints that need an outside service: throws a 503 naming the variables to set.
 * @example requireIntegration(config, "twilio") // before placing a call
 */
export function requireIntegration(config: Config, name: IntegrationName): void {
  const { configured, missing } = integrationStatus(config)[name];
  if (!configured) {
    throw new IntegrationNotConfiguredError(
      `${integrationLabels[name]} is not configured: set ${missing.join(", ")}`,
    );
  }
}

/** One line per variable for the docs and `--help`: name, default, description. */
export function describeEnvironment(): {
  name: VariableName;
  default?: unknown;
  description: string;
  secret: boolean;
}[] {
  return variableNames.map((name) => {
    const schema = Environment.properties[name] as unknown as TSchema & VariableInfo;
    return {
      name,
      default: schema.default,
      description: schema.description,
      secret: schema.secret === true,
    };
  });
}
