/**
 * The compiled binary answers exactly as the source does. Both run side by side as child processes
 * with the same environment (endpoint secret, Twilio on a fake of its own each, Deepgram on closed
 * loopback ports) and get the same requests in the same order: every route's refusals (query,
 * params, bodies, media types, sizes, auth, cross-site, signatures, unknown routes) and some
 * successes. Status, headers and body must be equal; only ids, tokens and times made at run time
 * are normalised. A minifier that renames what a dependency looks up by name shows up here.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import twilio from "twilio";
import { FakeTwilioRest } from "./fakes/twilio-rest-server.ts";
import { compiledBinary, REPO } from "./helpers/compiled-binary.ts";
import { NO_DEEPGRAM_REST } from "./helpers/context.ts";
import { listeningUrl } from "./helpers/listening.ts";

const SECRET = "parity-endpoint-secret-0123456789";
const AUTH_TOKEN = "parity-twilio-auth-token";
const ACCOUNT_SID = `AC${"7".repeat(32)}`;
/** Both services' public URL, so TwiML and signatures do not depend on the local port. */
const PUBLIC_URL = "https://voice.example.com";
const OFFICE = "+15550001111";
const CALLER = "+15557654321";
/** An inbound call's SID: not hex, so it is never normalised, and it sorts after Twilio's. */
const INBOUND_SID = `CA${"z".repeat(32)}`;
const MAX_JSON_BYTES = 64 * 1024;
const MAX_FORM_BYTES = 16 * 1024;

interface Probe {
  name: string;
  /** The status the source gives (the binary must give the same). */
  status: number;
  method?: string;
  /** `{lead}` and `{call}` stand for what earlier probes saved on the same side. */
  path: string;
  /** Without the bearer secret (it is sent by default). */
  anonymous?: boolean;
  headers?: Record<string, string>;
  /** Sent as application/json unless `headers` name another type. */
  json?: unknown;
  /** A raw body. */
  body?: string;
  /** Form fields, sent as Twilio posts them, signed for PUBLIC_URL. */
  form?: Record<string, string>;
  /** Instead of the right signature: this one, or none (null). */
  signature?: string | null;
  /** Remembers the answer's lead id (`id`) or call SID (`call_sid`) for later probes. */
  saves?: "lead" | "call";
}

const lead = { first_name: "Ada", last_name: "Lovelace" };
const incoming = { CallSid: INBOUND_SID, AccountSid: ACCOUNT_SID, From: CALLER, To: OFFICE };
const nested = (depth: number): unknown => (depth === 0 ? {} : { to: nested(depth - 1) });

const PROBES: Probe[] = [
  { name: "health", status: 200, path: "/health", anonymous: true },
  { name: "OpenAPI document", status: 200, path: "/docs/json", anonymous: true },
  { name: "docs page", status: 200, path: "/docs", anonymous: true },
  { name: "unknown route", status: 404, path: "/no-such-route" },
  { name: "unknown method", status: 404, method: "DELETE", path: "/calls" },
  { name: "GET /make-call", status: 404, path: "/make-call" },

  { name: "calls without a secret", status: 401, path: "/calls", anonymous: true },
  {
    name: "calls with a wrong secret",
    status: 401,
    path: "/calls",
    anonymous: true,
    headers: { authorization: "Bearer wrong-secret-wrong-secret" },
  },
  {
    name: "calls with Basic auth",
    status: 401,
    path: "/calls",
    anonymous: true,
    headers: { authorization: `Basic ${btoa(`x:${SECRET}`)}` },
  },
  { name: "leads without a secret", status: 401, path: "/leads", anonymous: true },
  {
    name: "make-call without a secret",
    status: 401,
    method: "POST",
    path: "/make-call",
    anonymous: true,
    json: { to: CALLER },
  },

  { name: "calls limit=0", status: 400, path: "/calls?limit=0" },
  { name: "calls limit=201", status: 400, path: "/calls?limit=201" },
  { name: "calls limit=abc", status: 400, path: "/calls?limit=abc" },
  { name: "calls limit=1.5", status: 400, path: "/calls?limit=1.5" },
  { name: "calls limit=-5", status: 400, path: "/calls?limit=-5" },
  { name: "calls limit=1e9", status: 400, path: "/calls?limit=1e9" },
  { name: "calls offset=-1", status: 400, path: "/calls?offset=-1" },
  { name: "calls offset=abc", status: 400, path: "/calls?offset=abc" },
  { name: "calls offset past the deepest page", status: 400, path: "/calls?offset=1000000001" },
  { name: "calls status too long", status: 400, path: `/calls?status=${"x".repeat(33)}` },
  { name: "calls sid too short", status: 400, path: "/calls/x" },
  { name: "calls sid too long", status: 400, path: `/calls/CA${"1".repeat(64)}` },
  { name: "unknown call", status: 404, path: "/calls/CAnope" },
  { name: "leads limit=0", status: 400, path: "/leads?limit=0" },
  { name: "leads limit=201", status: 400, path: "/leads?limit=201" },
  { name: "leads limit=abc", status: 400, path: "/leads?limit=abc" },
  { name: "leads offset=-1", status: 400, path: "/leads?offset=-1" },
  { name: "lead id too long", status: 400, path: `/leads/${"l".repeat(65)}` },
  { name: "unknown lead", status: 404, path: "/leads/lead_nope" },

  { name: "lead: empty object", status: 400, method: "POST", path: "/leads", json: {} },
  {
    name: "lead: blank first name",
    status: 400,
    method: "POST",
    path: "/leads",
    json: { ...lead, first_name: " " },
  },
  {
    name: "lead: control character",
    status: 400,
    method: "POST",
    path: "/leads",
    json: { ...lead, last_name: "Love\u0000lace" },
  },
  {
    name: "lead: year built too early",
    status: 400,
    method: "POST",
    path: "/leads",
    json: { ...lead, year_built: 1500 },
  },
  {
    name: "lead: year built as a string",
    status: 400,
    method: "POST",
    path: "/leads",
    json: { ...lead, year_built: "1999" },
  },
  {
    name: "lead: fractional square footage",
    status: 400,
    method: "POST",
    path: "/leads",
    json: { ...lead, square_footage: 12.5 },
  },
  {
    name: "lead: bad email",
    status: 400,
    method: "POST",
    path: "/leads",
    json: { ...lead, email: "not an email" },
  },
  {
    name: "lead: unknown field (dropped)",
    status: 201,
    method: "POST",
    path: "/leads",
    json: { ...lead, admin: true },
  },
  { name: "lead: array body", status: 400, method: "POST", path: "/leads", json: [lead] },
  { name: "lead: null body", status: 400, method: "POST", path: "/leads", json: null },
  {
    name: "lead: invalid JSON",
    status: 400,
    method: "POST",
    path: "/leads",
    headers: { "content-type": "application/json" },
    body: "{",
  },
  {
    name: "lead: empty body",
    status: 400,
    method: "POST",
    path: "/leads",
    headers: { "content-type": "application/json" },
    body: "",
  },
  { name: "lead: nested too deep", status: 400, method: "POST", path: "/leads", json: nested(40) },
  {
    name: "lead: text/plain",
    status: 415,
    method: "POST",
    path: "/leads",
    headers: { "content-type": "text/plain" },
    body: JSON.stringify(lead),
  },
  {
    name: "lead: larger than the limit",
    status: 413,
    method: "POST",
    path: "/leads",
    json: { ...lead, source: "x".repeat(MAX_JSON_BYTES) },
  },
  {
    name: "lead: cross-site origin",
    status: 403,
    method: "POST",
    path: "/leads",
    headers: { origin: "https://evil.example" },
    json: lead,
  },
  { name: "lead stored", status: 201, method: "POST", path: "/leads", json: lead, saves: "lead" },
  { name: "lead read back", status: 200, path: "/leads/{lead}" },

  { name: "make-call: empty object", status: 400, method: "POST", path: "/make-call", json: {} },
  {
    name: "make-call: not E.164",
    status: 400,
    method: "POST",
    path: "/make-call",
    json: { to: "555-1234" },
  },
  {
    name: "make-call: number as a number",
    status: 400,
    method: "POST",
    path: "/make-call",
    json: { to: 15557654321 },
  },
  {
    name: "make-call: unknown field (dropped)",
    status: 200,
    method: "POST",
    path: "/make-call",
    json: { to: CALLER, from: OFFICE },
  },
  {
    name: "make-call: invalid inline lead",
    status: 400,
    method: "POST",
    path: "/make-call",
    json: { to: CALLER, lead: { first_name: "Ada" } },
  },
  {
    name: "make-call: empty lead_id",
    status: 400,
    method: "POST",
    path: "/make-call",
    json: { to: CALLER, lead_id: "" },
  },
  {
    name: "make-call: lead and lead_id",
    status: 400,
    method: "POST",
    path: "/make-call",
    json: { to: CALLER, lead, lead_id: "{lead}" },
  },
  {
    name: "make-call: unknown lead_id",
    status: 404,
    method: "POST",
    path: "/make-call",
    json: { to: CALLER, lead_id: "lead_nope" },
  },
  {
    name: "make-call: no content type",
    status: 415,
    method: "POST",
    path: "/make-call",
    body: JSON.stringify({ to: CALLER }),
  },
  {
    name: "make-call: form post",
    status: 415,
    method: "POST",
    path: "/make-call",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: `to=${encodeURIComponent(CALLER)}`,
  },
  {
    name: "make-call: larger than Bun's limit",
    status: 413,
    method: "POST",
    path: "/make-call",
    json: { to: CALLER, padding: "x".repeat(MAX_JSON_BYTES + 1024) },
  },
  {
    name: "make-call: cross-site fetch",
    status: 403,
    method: "POST",
    path: "/make-call",
    headers: { "sec-fetch-site": "cross-site" },
    json: { to: CALLER },
  },
  {
    name: "make-call placed",
    status: 200,
    method: "POST",
    path: "/make-call",
    json: { to: CALLER, lead_id: "{lead}" },
    saves: "call",
  },
  {
    name: "make-call with the demo lead",
    status: 200,
    method: "POST",
    path: "/make-call",
    json: { to: CALLER },
  },

  {
    name: "incoming-call unsigned",
    status: 403,
    method: "POST",
    path: "/incoming-call",
    form: incoming,
    signature: null,
  },
  {
    name: "incoming-call wrongly signed",
    status: 403,
    method: "POST",
    path: "/incoming-call",
    form: incoming,
    signature: "bm90IGEgc2lnbmF0dXJl",
  },
  {
    name: "incoming-call as JSON",
    status: 415,
    method: "POST",
    path: "/incoming-call",
    json: incoming,
  },
  {
    name: "incoming-call larger than the webhook limit",
    status: 413,
    method: "POST",
    path: "/incoming-call",
    form: { ...incoming, Padding: "x".repeat(MAX_FORM_BYTES) },
  },
  {
    name: "incoming-call with a bad CallSid",
    status: 400,
    method: "POST",
    path: "/incoming-call",
    form: { ...incoming, CallSid: "XX1" },
  },
  {
    name: "incoming-call without From",
    status: 400,
    method: "POST",
    path: "/incoming-call",
    form: { CallSid: INBOUND_SID, To: OFFICE },
  },
  {
    name: "incoming-call answered",
    status: 200,
    method: "POST",
    path: "/incoming-call",
    form: incoming,
  },
  {
    name: "incoming-call replayed",
    status: 409,
    method: "POST",
    path: "/incoming-call",
    form: incoming,
  },
  {
    name: "amd-result without AnsweredBy",
    status: 400,
    method: "POST",
    path: "/amd-result",
    form: { CallSid: "{call}" },
  },
  {
    name: "amd-result with a bad duration",
    status: 400,
    method: "POST",
    path: "/amd-result",
    form: { CallSid: "{call}", AnsweredBy: "human", MachineDetectionDuration: "soon" },
  },
  {
    name: "call-status without CallStatus",
    status: 400,
    method: "POST",
    path: "/call-status",
    form: { CallSid: "{call}" },
  },
  {
    name: "call-status ringing",
    status: 204,
    method: "POST",
    path: "/call-status",
    form: { CallSid: "{call}", CallStatus: "ringing" },
  },
  {
    name: "stream-status with an unknown event",
    status: 400,
    method: "POST",
    path: "/stream-status",
    form: { CallSid: INBOUND_SID, StreamSid: `MZ${"1".repeat(32)}`, StreamEvent: "exploded" },
  },

  { name: "calls listed", status: 200, path: "/calls?limit=5&offset=0" },
  { name: "calls filtered by status", status: 200, path: "/calls?status=ringing" },
  { name: "the placed call", status: 200, path: "/calls/{call}" },
  { name: "leads listed", status: 200, path: "/leads?limit=10" },
];

interface Side {
  url: string;
  process: Bun.Subprocess<"ignore", "pipe", "pipe">;
  twilio: FakeTwilioRest;
  saved: Partial<Record<"lead" | "call", string>>;
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

let folder: string;
let source: Side;
let binary: Side;
/** Whatever started, stopped after the tests even when the other one failed to start. */
const started: Side[] = [];

/** Starts `command` in an empty folder with the shared environment and its own fake Twilio. */
async function start(command: string[]): Promise<Side> {
  const twilioFake = FakeTwilioRest.start(ACCOUNT_SID, AUTH_TOKEN);
  const child = Bun.spawn(command, {
    cwd: mkdtempSync(join(folder, "run-")),
    env: {
      PATH: process.env.PATH ?? "",
      SERVER_HOST: "127.0.0.1",
      SERVER_PORT: "0",
      SERVER_EXTERNAL_URL: PUBLIC_URL,
      ENDPOINT_SECRET: SECRET,
      DATABASE_PATH: ":memory:",
      SHUTDOWN_DRAIN_MS: "100",
      DEEPGRAM_API_KEY: "parity-deepgram-key",
      DEEPGRAM_API_URL: NO_DEEPGRAM_REST,
      DEEPGRAM_AGENT_URL: "ws://127.0.0.1:9/v1/agent/converse",
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_PHONE_NUMBER: OFFICE,
      TWILIO_API_URL: twilioFake.url,
      INBOUND_SCENARIOS: `${OFFICE}=dental-receptionist`,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const side = { url: "", process: child, twilio: twilioFake, saved: {} };
  started.push(side);
  side.url = await listeningUrl(child.stdout, () => new Response(child.stderr).text());
  return side;
}

async function stop(side: Side): Promise<void> {
  side.process.kill("SIGTERM");
  await side.process.exited;
  side.twilio.stop();
}

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), "voice-agent-parity-"));
  [source, binary] = await Promise.all([
    start([process.execPath, "run", join(REPO, "src/main.ts")]),
    compiledBinary().then((path) => start([path])),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all(started.map(stop));
  rmSync(folder, { recursive: true, force: true });
});

/** `{lead}` and `{call}` replaced by what this side saved. */
function fill(text: string, side: Side): string {
  return text.replaceAll(/\{(lead|call)\}/g, (_, key: "lead" | "call") => side.saved[key] ?? "");
}

/** Ids, tokens and times made at run time; everything else must match byte for byte. */
function normalise(text: string): string {
  return text
    .replaceAll(/lead_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "lead_<id>")
    .replaceAll(/CA[0-9a-f]{32}/g, "CA<sid>")
    .replaceAll(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g, "<time>")
    .replaceAll(/(name="token" value=")[^"]*/g, "$1<token>");
}

async function send(probe: Probe, side: Side): Promise<Answer> {
  const path = fill(probe.path, side);
  const headers: Record<string, string> = probe.anonymous
    ? {}
    : { authorization: `Bearer ${SECRET}` };
  let body: string | undefined = probe.body;
  if (probe.json !== undefined) {
    headers["content-type"] = "application/json";
    body = fill(JSON.stringify(probe.json), side);
  }
  if (probe.form) {
    const form = Object.fromEntries(
      Object.entries(probe.form).map(([key, value]) => [key, fill(value, side)]),
    );
    headers["content-type"] = "application/x-www-form-urlencoded";
    const signature =
      probe.signature === undefined
        ? twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${PUBLIC_URL}${path}`, form)
        : probe.signature;
    if (signature !== null) headers["x-twilio-signature"] = signature;
    body = new URLSearchParams(form).toString();
  }
  Object.assign(headers, probe.headers);
  const response = await fetch(`${side.url}${path}`, {
    method: probe.method ?? "GET",
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  if (probe.saves && response.ok) {
    const answer = JSON.parse(text);
    side.saved[probe.saves] = probe.saves === "lead" ? answer.id : answer.call_sid;
  }
  const answerHeaders = Object.fromEntries(response.headers);
  delete answerHeaders.date;
  return { status: response.status, headers: answerHeaders, body: normalise(text) };
}

describe("the compiled binary answers as the source does", () => {
  for (const probe of PROBES) {
    test(`${probe.method ?? "GET"} ${probe.path}: ${probe.name}`, async () => {
      const [fromSource, fromBinary] = await Promise.all([
        send(probe, source),
        send(probe, binary),
      ]);
      expect(fromBinary).toEqual(fromSource);
      expect(fromSource.status).toBe(probe.status);
    });
  }
});
