/**
 * Property-based fuzzing of every HTTP entry point with fast-check: thousands of random and mutated
 * webhook forms (unsigned and correctly signed), API bodies, content types and query strings, sent
 * to the running service while a real call is live on it. Nothing may answer 5xx, and the call must
 * go on unaffected.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import fc from "fast-check";
import twilio from "twilio";
import type { FakeTwilioCall } from "../fakes/twilio-media-client.ts";
import { FakeTwilioRest } from "../fakes/twilio-rest-server.ts";
import { openStream } from "../fakes/twilio-webhooks.ts";
import type { FakeAgentSession } from "../fakes/voice-agent-server.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  CALLER,
  SECRET,
  type SignedService,
  startSignedService,
} from "../helpers/signed-service.ts";

let running: SignedService;
let rest: FakeTwilioRest;
let phone: FakeTwilioCall;
let session: FakeAgentSession;

beforeAll(async () => {
  rest = FakeTwilioRest.start(ACCOUNT_SID, AUTH_TOKEN);
  running = await startSignedService({
    TWILIO_API_URL: rest.url,
    MAX_CONCURRENT_CALLS: "10000",
    // Thousands of failed secrets from one test client must not lock it out of the checks below.
    TRUSTED_PROXIES: "127.0.0.1",
  });
  const xml = await (await running.incoming("CAlive0001")).text();
  phone = await openStream(xml, "CAlive0001");
  session = await running.agent.nextSession();
  await phone.waitFor(() => phone.heardBytes > 0, "greeting heard");
});

afterAll(async () => {
  phone.hangUp();
  await running.stop();
  rest.stop();
});

/** In-process, on the same app that serves the live call's socket. */
const handle = (request: Request) => running.service.app.handle(request);
const url = (path: string) => `http://127.0.0.1${path}`;

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "",
    "CA",
    "CA123",
    "human",
    "machine_end_beep",
    "in-progress",
    "completed",
    "NaN",
  ),
  fc.constantFrom(
    "__proto__",
    "constructor",
    "prototype",
    "\u0000",
    "\u202e",
    "%00",
    "[".repeat(500),
  ),
);
const twilioFields = fc.constantFrom(
  "CallSid",
  "AccountSid",
  "From",
  "To",
  "CallStatus",
  "AnsweredBy",
  "MachineDetectionDuration",
  "CallDuration",
  "Direction",
  "StreamSid",
  "StreamEvent",
  "StreamError",
  "__proto__",
);
const form = fc.dictionary(fc.oneof(twilioFields, fc.string({ maxLength: 12 })), text, {
  maxKeys: 8,
});
const webhookPaths = fc.constantFrom(
  "/incoming-call",
  "/amd-result",
  "/call-status",
  "/stream-status",
);

test("webhook forms, unsigned or correctly signed: never 5xx", async () => {
  await fc.assert(
    fc.asyncProperty(webhookPaths, form, fc.boolean(), async (path, params, sign) => {
      const headers: Record<string, string> = {
        "content-type": "application/x-www-form-urlencoded",
      };
      if (sign) {
        headers["x-twilio-signature"] = twilio.getExpectedTwilioSignature(
          AUTH_TOKEN,
          `${running.publicUrl}${path}`,
          { ...params },
        );
      }
      const response = await handle(
        new Request(url(path), {
          method: "POST",
          headers,
          body: new URLSearchParams(params).toString(),
        }),
      );
      expect(response.status).toBeLessThan(500);
    }),
    { numRuns: 3000 },
  );
});

const leadLike = fc.record(
  {
    first_name: text,
    last_name: text,
    phone: fc.oneof(text, fc.constant(CALLER)),
    property_address: text,
    year_built: fc.oneof(fc.integer(), fc.double(), text),
    square_footage: fc.oneof(fc.integer(), fc.constant(Number.MAX_SAFE_INTEGER)),
  },
  { requiredKeys: [] },
);
const apiBody = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  leadLike,
  fc.record(
    {
      to: fc.oneof(text, fc.constant("+15551234567")),
      lead: fc.oneof(leadLike, fc.jsonValue({ maxDepth: 2 })),
      lead_id: fc.oneof(text, fc.jsonValue({ maxDepth: 1 })),
    },
    { requiredKeys: [] },
  ),
);

test("API bodies with the secret: never 5xx", async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom("/make-call", "/leads"), apiBody, async (path, body) => {
      const response = await handle(
        new Request(url(path), {
          method: "POST",
          headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        }),
      );
      expect(response.status).toBeLessThan(500);
    }),
    { numRuns: 2000 },
  );
});

test("objects that shadow toString or valueOf (no string form) are a 400, not a 500", async () => {
  // Found by the property above: Elysia's validation message turns the value into a string.
  for (const body of [
    { lead_id: { toString: null } },
    { lead: { first_name: "A", last_name: "B", notes: { valueOf: 1, toString: "x" } } },
    { to: "+15551234567", lead: { toString: null } },
  ])
    for (const path of ["/make-call", "/leads"]) {
      const response = await handle(
        new Request(url(path), {
          method: "POST",
          headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        }),
      );
      expect(response.status).toBe(400);
    }
});

test("a control character in an id or a Twilio field is a 400 naming it (found on PostgreSQL)", async () => {
  for (const [path, field] of [
    ["/leads/lead%00x", "params.id"],
    ["/calls/CA%00x", "params.sid"],
    ["/calls?status=%00", "query.status"],
  ] as const) {
    const response = await handle(
      new Request(url(path), { headers: { authorization: `Bearer ${SECRET}` } }),
    );
    expect(response.status).toBe(400);
    expect(((await response.json()) as { field: string }).field).toBe(field);
  }
  const nulLead = await handle(
    new Request(url("/make-call"), {
      method: "POST",
      headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json" },
      body: JSON.stringify({ to: "+15551234567", lead_id: "lead\u0000" }),
    }),
  );
  expect(nulLead.status).toBe(400);
  expect(((await nulLead.json()) as { field: string }).field).toBe("body.lead_id");
  for (const [path, params, field] of [
    ["/amd-result", { CallSid: "CAlive0001", AnsweredBy: "\u0000" }, "body.AnsweredBy"],
    ["/call-status", { CallSid: "CA\u0000", CallStatus: "completed" }, "body.CallSid"],
    ["/incoming-call", { CallSid: "CAnul0001", From: "+1\u0000", To: "+15550001111" }, "body.From"],
  ] as const) {
    const response = await running.signed(path, params);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { field: string }).field).toBe(field);
  }
});

test("deeply nested or malformed JSON text with the secret: never 5xx", async () => {
  const nested = fc
    .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom("[", '{"a":'), fc.boolean())
    .map(([depth, open, closed]) => {
      const close = open === "[" ? "]" : "}";
      return `${open.repeat(depth)}1${closed ? close.repeat(depth) : ""}`;
    });
  const wrapped = nested.map((inner) => `{"to":"+15551234567","lead":${inner}}`);
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("/make-call", "/leads"),
      fc.oneof(nested, wrapped, fc.string({ maxLength: 200 })),
      async (path, body) => {
        const response = await handle(
          new Request(url(path), {
            method: "POST",
            headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json" },
            body,
          }),
        );
        expect(response.status).toBeLessThan(500);
      },
    ),
    { numRuns: 500 },
  );
});

test("raw bytes under any content type, to every route: never 5xx", async () => {
  const paths = fc.constantFrom(
    "/make-call",
    "/leads",
    "/incoming-call",
    "/amd-result",
    "/call-status",
    "/calls",
    "/health",
    "/nowhere",
  );
  const types = fc.oneof(
    fc.constantFrom(
      "application/json",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "text/plain",
      "application/octet-stream",
      "",
    ),
    fc.string({ maxLength: 30 }),
  );
  await fc.assert(
    fc.asyncProperty(
      paths,
      types,
      fc.uint8Array({ maxLength: 300 }),
      fc.boolean(),
      async (path, type, bytes, authed) => {
        const headers: Record<string, string> = {};
        if (type) headers["content-type"] = type;
        if (authed) headers.authorization = `Bearer ${SECRET}`;
        const response = await handle(
          new Request(url(path), { method: "POST", headers, body: bytes }),
        );
        expect(response.status).toBeLessThan(500);
      },
    ),
    { numRuns: 2000 },
  );
});

test("query strings and path segments of the listings: never 5xx", async () => {
  const segment = fc.oneof(text, fc.string({ maxLength: 80 }));
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("/calls", "/leads", "/calls/", "/leads/"),
      segment,
      fc.dictionary(
        fc.constantFrom("limit", "offset", "status", "x"),
        fc.oneof(text, fc.bigInt().map(String)),
      ),
      async (base, tail, query) => {
        const path = base.endsWith("/") ? `${base}${encodeURIComponent(tail) || "x"}` : base;
        const response = await handle(
          new Request(url(`${path}?${new URLSearchParams(query)}`), {
            headers: { authorization: `Bearer ${SECRET}` },
          }),
        );
        expect(response.status).toBeLessThan(500);
      },
    ),
    { numRuns: 2000 },
  );
});

test("the live call went on unaffected", async () => {
  session.say("Still here.", 200);
  const heard = phone.heardBytes;
  await phone.waitFor(() => phone.heardBytes >= heard + 200 * 8, "agent audio after the fuzzing");
  expect(running.service.calls.get("CAlive0001")).toBeDefined();
  expect((await running.service.store.calls.get("CAlive0001"))?.ended_at).toBeNull();
  expect(prototypeKeys()).toEqual([]);
});

/** Anything fuzzing may have added to Object.prototype. */
function prototypeKeys(): string[] {
  return Object.keys(Object.prototype);
}
