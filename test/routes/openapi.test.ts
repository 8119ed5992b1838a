/**
 * The OpenAPI document as an operator's tools and the reference page read it: the servers the
 * snippets use, the bearer scheme required by default, every response each route can give (checked
 * against what the routes really answer, both ways), integer paging parameters, named request
 * examples, Twilio's webhooks apart, and a favicon that is neither a 404 nor an info log line.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import twilio from "twilio";
import { TwilioApiError } from "../../src/adapters/twilio-rest.ts";
import type { CallPlacer } from "../../src/routes/make-call.ts";
import { INTEGRATIONS_ENV, testApp } from "../helpers/context.ts";
import { eventually } from "../helpers/eventually.ts";
import { json } from "../helpers/http.ts";

const SECRET = "openapi-test-endpoint-secret";
const PUBLIC_URL = "https://voice.example.com";
const LEAD = { first_name: "Ada", last_name: "Lovelace" };
const CALL_SID = `CA${"ab".repeat(16)}`;

interface Options {
  env?: Record<string, string>;
  /** How Twilio answers a call placed: its SID, or this error. */
  twilio?: "places" | "refuses";
}

function build({ env = {}, twilio: placing = "places" }: Options = {}) {
  const placer: CallPlacer = {
    placeCall: async () => {
      if (placing === "refuses")
        throw new TwilioApiError("Twilio refused to place the call: The 'To' number is not valid");
      return { sid: `CA${"cd".repeat(16)}`, status: "queued" };
    },
    hangUp: async () => {},
  };
  return testApp({ ...INTEGRATIONS_ENV, ENDPOINT_SECRET: SECRET, ...env }, placer);
}

type Built = ReturnType<typeof build>;

interface OpenApi {
  openapi: string;
  servers: { url: string }[];
  security: unknown[];
  paths: Record<string, Record<string, Operation>>;
  webhooks: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, unknown> };
}

interface Operation {
  description?: string;
  security?: unknown[];
  parameters?: { name: string; in: string; schema: Record<string, unknown> }[];
  requestBody?: {
    content: Record<string, { schema: unknown; examples?: Record<string, { value: unknown }> }>;
  };
  responses: Record<
    string,
    {
      description: string;
      content?: Record<string, { schema: unknown; examples?: Record<string, { value: unknown }> }>;
    }
  >;
}

async function documentOf(built: Built, origin = "http://localhost"): Promise<OpenApi> {
  const response = await built.app.handle(new Request(`${origin}/docs/json`));
  expect(response.status).toBe(200);
  return (await json(response)) as OpenApi;
}

/** An operation by "METHOD /path", from `paths` or `webhooks`. */
function operation(document: OpenApi, key: string): Operation {
  const [method = "", path = ""] = key.split(" ");
  const found = (document.paths[path] ?? document.webhooks[path])?.[method.toLowerCase()];
  if (!found) throw new Error(`${key} is not documented`);
  return found;
}

/** The codes a documented status lists in its examples. */
const documentedCodes = (op: Operation, status: number) =>
  Object.values(op.responses[status]?.content?.["application/json"]?.examples ?? {}).map(
    (example) => (example.value as { code: string }).code,
  );

/** The documented operations, as "METHOD /path". */
const OPERATIONS = [
  "GET /health",
  "GET /calls",
  "GET /calls/{sid}",
  "POST /leads",
  "GET /leads",
  "GET /leads/{id}",
  "POST /make-call",
  "POST /amd-result",
  "POST /call-status",
  "POST /stream-status",
  "POST /incoming-call",
];

describe("the OpenAPI document", () => {
  test("names the server: the origin the request reached, or SERVER_EXTERNAL_URL when set", async () => {
    const local = await documentOf(
      build({ env: { SERVER_EXTERNAL_URL: "" } }),
      "http://127.0.0.1:8080",
    );
    expect(local.servers.map((server) => server.url)).toEqual(["http://127.0.0.1:8080"]);
    const configured = await documentOf(build({ env: { SERVER_EXTERNAL_URL: `${PUBLIC_URL}/` } }));
    expect(configured.servers.map((server) => server.url)).toEqual([PUBLIC_URL]);
  });

  test("is OpenAPI 3.1 with the bearer scheme required by default; health and webhooks say what they need", async () => {
    const document = await documentOf(build());
    expect(document.openapi).toBe("3.1.0");
    expect(document.components.securitySchemes.bearerAuth).toMatchObject({
      type: "http",
      scheme: "bearer",
    });
    expect(document.security).toEqual([{ bearerAuth: [] }]);
    expect(operation(document, "GET /health").security).toEqual([]);
    for (const key of ["GET /calls", "POST /leads", "POST /make-call"])
      expect(operation(document, key).security).toEqual([{ bearerAuth: [] }]);
    expect(operation(document, "POST /incoming-call").security).toEqual([{ twilioSignature: [] }]);
  });

  test("documents the errors of each route with the service's error shape and example bodies", async () => {
    const document = await documentOf(build());
    const statuses = (key: string) => Object.keys(operation(document, key).responses).map(Number);
    for (const key of ["POST /make-call", "POST /leads", "GET /leads", "GET /calls"])
      expect(statuses(key)).toEqual(expect.arrayContaining([400, 401, 429]));
    expect(statuses("GET /calls/{sid}")).toContain(404);
    expect(statuses("GET /leads/{id}")).toContain(404);
    expect(statuses("POST /make-call")).toEqual(expect.arrayContaining([404, 413, 429, 502, 503]));
    expect(statuses("POST /leads")).toContain(413);
    expect(statuses("POST /incoming-call")).toEqual(expect.arrayContaining([403, 409, 413]));
    expect(documentedCodes(operation(document, "POST /make-call"), 429).sort()).toEqual([
      "TOO_MANY_CALLS",
      "TOO_MANY_FAILED_ATTEMPTS",
    ]);
    for (const key of OPERATIONS) {
      for (const [status, response] of Object.entries(operation(document, key).responses)) {
        expect(response.description).not.toBe("");
        // /health's 503 answers its own body (status: draining).
        if (Number(status) < 400 || `${key} ${status}` === "GET /health 503") continue;
        const media = response.content?.["application/json"];
        expect(media?.schema).toMatchObject({
          type: "object",
          required: ["error", "code"],
          properties: { error: {}, code: {}, field: {} },
        });
        const examples = Object.values(media?.examples ?? {});
        expect(examples.length).toBeGreaterThan(0);
        for (const { value } of examples)
          expect(Object.keys(value as object)).toEqual(expect.arrayContaining(["error", "code"]));
      }
    }
  });

  test("limit and offset are integers with their bounds and defaults", async () => {
    const document = await documentOf(build());
    for (const key of ["GET /calls", "GET /leads"]) {
      const parameters = Object.fromEntries(
        (operation(document, key).parameters ?? []).map((p) => [p.name, p.schema]),
      );
      expect(parameters.limit).toEqual({
        type: "integer",
        minimum: 1,
        maximum: 200,
        default: 20,
        description: expect.any(String),
      });
      expect(parameters.offset).toEqual({
        type: "integer",
        minimum: 0,
        maximum: 1_000_000_000,
        default: 0,
        description: expect.any(String),
      });
    }
  });

  test("offers a named example for each request shape, in the one media type each route reads", async () => {
    const document = await documentOf(build());
    const content = (key: string) => operation(document, key).requestBody?.content ?? {};
    const makeCall = content("POST /make-call");
    expect(Object.keys(makeCall)).toEqual(["application/json"]);
    const examples = makeCall["application/json"]?.examples ?? {};
    expect(examples.demo?.value).toEqual({ to: "+15551234567" });
    expect(examples.inline?.value).toMatchObject({
      to: "+15551234567",
      lead: { first_name: "Alex" },
    });
    expect(examples.stored?.value).toMatchObject({ lead_id: expect.stringMatching(/^lead_/) });
    expect(Object.keys(content("POST /leads")["application/json"]?.examples ?? {})).toEqual([
      "complete",
      "minimal",
    ]);
    for (const key of OPERATIONS.filter((each) => /amd-result|status|incoming/.test(each))) {
      expect(Object.keys(content(key))).toEqual(["application/x-www-form-urlencoded"]);
      expect(content(key)["application/x-www-form-urlencoded"]?.examples?.twilio).toBeDefined();
    }
  });

  test("lists Twilio's webhooks under webhooks, saying who calls them and why the page cannot", async () => {
    const document = await documentOf(build());
    expect(Object.keys(document.paths).sort()).toEqual([
      "/calls",
      "/calls/{sid}",
      "/calls/{sid}/recording",
      "/campaigns",
      "/campaigns/{id}",
      "/campaigns/{id}/cancel",
      "/campaigns/{id}/leads",
      "/campaigns/{id}/pause",
      "/campaigns/{id}/resume",
      "/dnc",
      "/dnc/{number}",
      "/health",
      "/leads",
      "/leads/import",
      "/leads/{id}",
      "/make-call",
      "/metrics",
    ]);
    expect(Object.keys(document.webhooks).sort()).toEqual([
      "/amd-result",
      "/call-status",
      "/incoming-call",
      "/stream-status",
      "/transfer-result",
      "/transfer-whisper",
    ]);
    for (const item of Object.values(document.webhooks))
      expect(item.post?.description).toContain(
        "Called by Twilio, form-encoded and signed with X-Twilio-Signature",
      );
    expect(JSON.stringify(document)).not.toContain('"x-');
  });
});

/** A request a route really answers, and the operation that documents it. */
interface Case {
  operation: string;
  name: string;
  options?: Options;
  /** What must be true before the request (stored data, a full or draining service). */
  before?: (built: Built) => void | Promise<void>;
  path: string;
  method?: string;
  /** Without the bearer secret. */
  anonymous?: boolean;
  headers?: Record<string, string>;
  json?: unknown;
  body?: string;
  /** Form fields posted as Twilio posts them, signed unless `signed` is false. */
  form?: Record<string, string>;
  signed?: boolean;
}

const NO_TWILIO = {
  env: { TWILIO_ACCOUNT_SID: "", TWILIO_AUTH_TOKEN: "", TWILIO_PHONE_NUMBER: "" },
};

const storeLead = (built: Built) => {
  built.store.leads.create({ ...LEAD });
};

const storeCall = (built: Built) => {
  built.store.calls.create({
    sid: CALL_SID,
    direction: "inbound",
    from_number: "+15557654321",
    to_number: "+15550001111",
    scenario: "dental-receptionist",
    status: "ringing",
  });
};

/** Ten wrong secrets from the same client: the next request is throttled. */
const wrongSecrets = async (built: Built) => {
  for (let attempt = 0; attempt < 10; attempt++)
    await built.app.handle(
      new Request("http://localhost/leads", { headers: { authorization: "Bearer wrong" } }),
    );
};

const fillLines = (built: Built) => {
  built.calls.register({ callSid: "CA1", hangUp: async () => {}, terminate: () => {} });
};

/** The guard's refusals, for a route behind the secret. */
function guarded(operation: string, path: string, method = "GET", json?: unknown): Case[] {
  return [
    { operation, name: "no secret", path, method, json, anonymous: true },
    { operation, name: "throttled", path, method, json, before: wrongSecrets },
    ...(method === "GET"
      ? []
      : [
          {
            operation,
            name: "cross-site",
            path,
            method,
            json,
            headers: { origin: "https://elsewhere.example" },
          },
        ]),
  ];
}

const big = "x".repeat(64 * 1024);
const incoming = { CallSid: CALL_SID, From: "+15557654321", To: "+15550001111" };
const streamReport = {
  CallSid: CALL_SID,
  StreamSid: `MZ${"1".repeat(32)}`,
  StreamEvent: "stream-started",
};

/** Twilio's webhooks' shared refusals, each with a valid form for the route. */
function webhook(operation: string, path: string, form: Record<string, string>): Case[] {
  return [
    { operation, name: "unsigned", path, method: "POST", form, signed: false },
    { operation, name: "too large", path, method: "POST", form: { ...form, Padding: big } },
    { operation, name: "JSON", path, method: "POST", json: form },
    { operation, name: "Twilio not configured", path, method: "POST", form, options: NO_TWILIO },
    { operation, name: "missing field", path, method: "POST", form: { CallSid: CALL_SID } },
  ];
}

const CASES: Case[] = [
  { operation: "GET /health", name: "serving", path: "/health", anonymous: true },
  {
    operation: "GET /health",
    name: "draining",
    path: "/health",
    anonymous: true,
    before: (built) => built.calls.stopAccepting(),
  },

  { operation: "GET /calls", name: "listed", path: "/calls?limit=5" },
  { operation: "GET /calls", name: "limit=0", path: "/calls?limit=0" },
  { operation: "GET /calls", name: "offset=abc", path: "/calls?offset=abc" },
  ...guarded("GET /calls", "/calls"),

  { operation: "GET /calls/{sid}", name: "found", path: `/calls/${CALL_SID}`, before: storeCall },
  { operation: "GET /calls/{sid}", name: "unknown", path: "/calls/CAnope" },
  { operation: "GET /calls/{sid}", name: "too short", path: "/calls/x" },
  ...guarded("GET /calls/{sid}", "/calls/CAnope"),

  { operation: "POST /leads", name: "stored", path: "/leads", method: "POST", json: LEAD },
  { operation: "POST /leads", name: "empty", path: "/leads", method: "POST", json: {} },
  {
    operation: "POST /leads",
    name: "not JSON",
    path: "/leads",
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{",
  },
  {
    operation: "POST /leads",
    name: "too large",
    path: "/leads",
    method: "POST",
    json: { ...LEAD, source: big },
  },
  {
    operation: "POST /leads",
    name: "text/plain",
    path: "/leads",
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: JSON.stringify(LEAD),
  },
  ...guarded("POST /leads", "/leads", "POST", LEAD),

  { operation: "GET /leads", name: "listed", path: "/leads" },
  { operation: "GET /leads", name: "limit=201", path: "/leads?limit=201" },
  ...guarded("GET /leads", "/leads"),

  { operation: "GET /leads/{id}", name: "unknown", path: "/leads/lead_nope" },
  { operation: "GET /leads/{id}", name: "too long", path: `/leads/${"l".repeat(65)}` },
  {
    operation: "GET /leads/{id}",
    name: "found",
    path: "/leads/",
    before: async (built) => {
      storeLead(built);
    },
  },
  ...guarded("GET /leads/{id}", "/leads/lead_nope"),

  ...[
    { name: "demo lead", json: { to: "+15557654321" } },
    { name: "inline lead", json: { to: "+15557654321", lead: LEAD } },
    { name: "not E.164", json: { to: "555-1234" } },
    { name: "lead and lead_id", json: { to: "+15557654321", lead: LEAD, lead_id: "lead_x" } },
    { name: "unknown lead_id", json: { to: "+15557654321", lead_id: "lead_nope" } },
    { name: "too large", json: { to: "+15557654321", padding: big } },
    { name: "lines full", json: { to: "+15557654321" }, before: fillLines },
    {
      name: "Twilio refuses",
      json: { to: "+15557654321" },
      options: { twilio: "refuses" as const },
    },
    { name: "Twilio not configured", json: { to: "+15557654321" }, options: NO_TWILIO },
    {
      name: "Deepgram not configured",
      json: { to: "+15557654321" },
      options: { env: { DEEPGRAM_API_KEY: "" } },
    },
    {
      name: "shutting down",
      json: { to: "+15557654321" },
      before: (built: Built) => built.calls.stopAccepting(),
    },
    {
      name: "on the do-not-call list",
      json: { to: "+15557654321" },
      before: async (built: Built) => {
        await built.store.dnc.add(
          [{ number: "+15557654321", reason: null, source: "api" }],
          new Date().toISOString(),
        );
      },
    },
  ].map((each) => ({
    operation: "POST /make-call",
    path: "/make-call",
    method: "POST",
    ...each,
    options: { env: { MAX_CONCURRENT_CALLS: "1" }, ...each.options },
  })),
  {
    operation: "POST /make-call",
    name: "form post",
    path: "/make-call",
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "to=%2B15557654321",
  },
  ...guarded("POST /make-call", "/make-call", "POST", { to: "+15557654321" }),

  {
    operation: "POST /amd-result",
    name: "verdict",
    path: "/amd-result",
    method: "POST",
    form: { CallSid: CALL_SID, AnsweredBy: "human" },
  },
  ...webhook("POST /amd-result", "/amd-result", { CallSid: CALL_SID, AnsweredBy: "human" }),
  {
    operation: "POST /call-status",
    name: "ringing",
    path: "/call-status",
    method: "POST",
    form: { CallSid: CALL_SID, CallStatus: "ringing" },
  },
  ...webhook("POST /call-status", "/call-status", { CallSid: CALL_SID, CallStatus: "ringing" }),
  {
    operation: "POST /stream-status",
    name: "started",
    path: "/stream-status",
    method: "POST",
    form: streamReport,
  },
  ...webhook("POST /stream-status", "/stream-status", streamReport),
  {
    operation: "POST /incoming-call",
    name: "answered",
    path: "/incoming-call",
    method: "POST",
    form: incoming,
  },
  {
    operation: "POST /incoming-call",
    name: "replayed",
    path: "/incoming-call",
    method: "POST",
    form: incoming,
    before: storeCall,
  },
  ...webhook("POST /incoming-call", "/incoming-call", incoming),
];

/** Sends a case to a fresh service; its status and error code. */
async function answer(each: Case): Promise<{ status: number; code?: string }> {
  const built = build(each.options);
  await each.before?.(built);
  let path = each.path;
  if (path === "/leads/") path += (await built.store.leads.list(1, 0))[0]?.id;
  const headers: Record<string, string> = each.anonymous
    ? {}
    : { authorization: `Bearer ${SECRET}` };
  let body = each.body;
  if (each.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(each.json);
  }
  if (each.form) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    if (each.signed !== false)
      headers["x-twilio-signature"] = twilio.getExpectedTwilioSignature(
        INTEGRATIONS_ENV.TWILIO_AUTH_TOKEN,
        `${PUBLIC_URL}${path}`,
        each.form,
      );
    body = new URLSearchParams(each.form).toString();
  }
  Object.assign(headers, each.headers);
  const response = await built.app.handle(
    new Request(`http://localhost${path}`, {
      method: each.method ?? "GET",
      headers,
      ...(body === undefined ? {} : { body }),
    }),
  );
  const text = await response.text();
  const code = response.status >= 400 ? (JSON.parse(text) as { code: string }).code : undefined;
  return { status: response.status, ...(code ? { code } : {}) };
}

describe("the documented responses are the ones the routes give", () => {
  let document: OpenApi;
  let answers: ({ each: Case } & Awaited<ReturnType<typeof answer>>)[];
  beforeAll(async () => {
    document = await documentOf(build());
    answers = await Promise.all(CASES.map(async (each) => ({ each, ...(await answer(each)) })));
  });

  for (const key of OPERATIONS) {
    const mine = () => answers.filter(({ each }) => each.operation === key);

    test(`${key}: every answer is documented, with its error code`, () => {
      const op = operation(document, key);
      expect(mine().length).toBeGreaterThan(0);
      for (const { each, status, code } of mine()) {
        const where = `${key} ${each.name} answered ${status} ${code ?? ""}`;
        expect(Object.keys(op.responses), where).toContain(String(status));
        if (code) expect(documentedCodes(op, status), where).toContain(code);
      }
    });

    test(`${key}: every documented status is given (but 500)`, () => {
      const given = new Set(mine().map(({ status }) => String(status)));
      const documented = Object.keys(operation(document, key).responses).filter(
        (status) => status !== "500",
      );
      expect(documented.filter((status) => !given.has(status))).toEqual([]);
    });
  }
});

describe("the favicon", () => {
  for (const path of ["/favicon.ico", "/favicon.svg"])
    test(`${path} is a small embedded SVG, logged at debug`, async () => {
      const { app, lines } = build();
      const response = await app.handle(new Request(`http://localhost${path}`));
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("image/svg+xml");
      const svg = await response.text();
      expect(svg).toStartWith("<svg");
      expect(svg.length).toBeLessThan(1024);
      const logged = await eventually(
        () => lines.find((line) => line.msg === "http" && line.path === path),
        "the access log line",
      );
      expect(logged).toMatchObject({ level: "debug", status: 200 });
    });
});
