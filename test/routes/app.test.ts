import { describe, expect, test } from "bun:test";
import { t } from "elysia";
import type { LiveCall } from "../../src/call/registry.ts";
import { requireIntegration } from "../../src/config.ts";
import { NotFoundError } from "../../src/errors.ts";
import { proofHolds } from "../../src/health-proof.ts";
import { healthRoutes } from "../../src/routes/health.ts";
import { INTEGRATIONS_ENV, testApp } from "../helpers/context.ts";
import { eventually } from "../helpers/eventually.ts";
import { json } from "../helpers/http.ts";

const build = (env: Record<string, string> = {}) => testApp(env);

const get = (path: string) => new Request(`http://localhost${path}`);

const liveCall = (callSid: string): LiveCall => ({
  callSid,
  hangUp: async () => {},
  terminate: () => {},
});

describe("GET /health", () => {
  test("proves it holds ENDPOINT_SECRET for a nonce, without the secret; nothing without one", async () => {
    const secret = "health-proof-secret-0123456789";
    const { app } = build({ ENDPOINT_SECRET: secret });
    const nonce = "a".repeat(64);
    const answered = await json(await app.handle(get(`/health?proof=${nonce}`)));
    expect(proofHolds(secret, nonce, answered.proof)).toBe(true);
    expect(proofHolds(secret, "another nonce", answered.proof)).toBe(false);
    expect(JSON.stringify(answered)).not.toContain(secret);
    // A nonce past its length, or no secret to prove: no proof, and no error either.
    expect((await json(await app.handle(get(`/health?proof=${nonce}b`)))).proof).toBeUndefined();
    const open = build().app;
    expect((await json(await open.handle(get(`/health?proof=${nonce}`)))).proof).toBeUndefined();
  });

  test("reports version, live calls and missing integrations", async () => {
    const { app, calls } = build();
    calls.register(liveCall("CA1"));
    const response = await app.handle(get("/health"));
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual({
      status: "ok",
      version: "1.2.3",
      activeCalls: 1,
      integrations: {
        twilio: {
          configured: false,
          missing: [
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "TWILIO_PHONE_NUMBER",
            "SERVER_EXTERNAL_URL",
          ],
        },
        deepgram: { configured: false, missing: ["DEEPGRAM_API_KEY"] },
      },
    });
  });

  test("reports configured integrations", async () => {
    const body = await json(await build(INTEGRATIONS_ENV).app.handle(get("/health")));
    expect(body.integrations).toEqual({
      twilio: { configured: true, missing: [] },
      deepgram: { configured: true, missing: [] },
    });
  });

  test("answers 503 draining once shutdown began", async () => {
    const { app, calls } = build();
    calls.stopAccepting();
    const response = await app.handle(get("/health"));
    expect(response.status).toBe(503);
    expect((await json(response)).status).toBe("draining");
  });
});

describe("docs", () => {
  test("the OpenAPI document is served, named and versioned", async () => {
    const response = await build().app.handle(get("/docs/json"));
    expect(response.status).toBe(200);
    const document = await json(response);
    expect(document.openapi).toStartWith("3.");
    expect(document.info).toMatchObject({ title: "Voice Agent API", version: "1.2.3" });
    // What it lists (and that the plumbing is hidden): test/routes/openapi.test.ts.
  });

  test("the docs page loads its script from this server, not a CDN", async () => {
    const response = await build().app.handle(get("/docs"));
    expect(response.status).toBe(200);
    const html = await response.text();
    const sources = [...html.matchAll(/<script[^>]*\ssrc="([^"]+)"/g)].map((match) => match[1]);
    expect(sources).toEqual(["/docs/assets/scalar.js"]);
    expect(html).not.toMatch(/https?:\/\/(cdn|unpkg|fonts)\./);
    expect(html).toContain('data-url="docs/json"');
    expect(html).toContain('"proxyUrl":""');
  });

  test("the reference UI script is served from the bundled package", async () => {
    const response = await build().app.handle(get("/docs/assets/scalar.js"));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toStartWith("text/javascript");
    expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(1_000_000);
  });

  test("the root redirects to the docs", async () => {
    const response = await build().app.handle(get("/"));
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("/docs");
  });
});

describe("errors", () => {
  test("an unknown route is a JSON 404", async () => {
    const response = await build().app.handle(get("/no-such-thing"));
    expect(response.status).toBe(404);
    expect(await json(response)).toEqual({
      error: "No route for GET /no-such-thing",
      code: "NOT_FOUND",
    });
  });

  test("validation errors answer 400 naming the field", async () => {
    const app = build().app.post("/echo", ({ body }) => body, {
      body: t.Object({
        to: t.String({ pattern: "^\\+[1-9][0-9]{1,14}$" }),
        name: t.Optional(t.String()),
      }),
    });
    const bad = await app.handle(
      new Request("http://localhost/echo", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ to: "555" }),
      }),
    );
    expect(bad.status).toBe(400);
    const body = await json(bad);
    expect(body).toMatchObject({ code: "VALIDATION", field: "body.to" });
    expect(body.error).toStartWith("body.to: ");

    const missing = await app.handle(
      new Request("http://localhost/echo", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "x" }),
      }),
    );
    expect(await json(missing)).toMatchObject({ code: "VALIDATION", field: "body.to" });
  });

  test("a body that is not JSON answers 400", async () => {
    const app = build().app.post("/echo", ({ body }) => body, {
      body: t.Object({ to: t.String() }),
    });
    const response = await app.handle(
      new Request("http://localhost/echo", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{not json",
      }),
    );
    expect(response.status).toBe(400);
    expect((await json(response)).code).toBeOneOf(["PARSE", "VALIDATION"]);
  });

  test("typed errors keep their status and code", async () => {
    const { app, config } = build();
    app
      .get("/missing-thing", () => {
        throw new NotFoundError("No lead lead_123");
      })
      .get("/needs-twilio", () => {
        requireIntegration(config, "twilio");
        return "placed";
      });
    const notFound = await app.handle(get("/missing-thing"));
    expect(notFound.status).toBe(404);
    expect(await json(notFound)).toEqual({ error: "No lead lead_123", code: "NOT_FOUND" });
    const unavailable = await app.handle(get("/needs-twilio"));
    expect(unavailable.status).toBe(503);
    expect(await json(unavailable)).toEqual({
      error:
        "Twilio is not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_PHONE_NUMBER, SERVER_EXTERNAL_URL",
      code: "INTEGRATION_NOT_CONFIGURED",
    });
  });

  test("unexpected errors answer a bare 500 and are logged", async () => {
    const { app, lines } = build();
    app.get("/boom", () => {
      throw new Error("database password is hunter2");
    });
    const response = await app.handle(get("/boom"));
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: "Internal server error", code: "INTERNAL" });
    expect(text).not.toContain("hunter2");
    expect(lines.find((line) => line.msg === "unhandled error")).toMatchObject({
      level: "error",
      path: "/boom",
    });
  });
});

describe("call records", () => {
  const SECRET = "s3cret-s3cret-s3cret";
  const authed = (path: string, secret = SECRET) =>
    new Request(`http://localhost${path}`, { headers: { authorization: `Bearer ${secret}` } });

  function withCall() {
    const built = build({ ENDPOINT_SECRET: SECRET });
    built.store.calls.create({
      sid: "CA1",
      direction: "inbound",
      from_number: "+15557654321",
      to_number: "+15550001111",
      scenario: "dental-receptionist",
      status: "in-progress",
    });
    built.store.calls.appendEvent("CA1", {
      kind: "transcript",
      data: { role: "user", text: "Hi" },
    });
    return built;
  }

  test("need the bearer secret", async () => {
    const { app } = withCall();
    const missing = await app.handle(get("/calls"));
    expect(missing.status).toBe(401);
    expect(await json(missing)).toEqual({
      error: "Missing Authorization: Bearer <ENDPOINT_SECRET>",
      code: "UNAUTHORIZED",
    });
    const wrong = await app.handle(authed("/calls", "not-the-secret"));
    expect(wrong.status).toBe(401);
    expect((await json(wrong)).error).toBe("Wrong endpoint secret");
  });

  test("without a configured secret, a request that is not from loopback is refused and told why", async () => {
    const response = await build().app.handle(get("/calls"));
    expect(response.status).toBe(401);
    expect((await json(response)).error).toContain(
      "ENDPOINT_SECRET is not set, so only local requests are accepted",
    );
  });

  test("list and detail with the timeline", async () => {
    const { app } = withCall();
    const list = await json(await app.handle(authed("/calls?limit=5")));
    expect(list).toMatchObject({
      limit: 5,
      offset: 0,
      calls: [{ sid: "CA1", status: "in-progress" }],
    });
    const detail = await json(await app.handle(authed("/calls/CA1")));
    expect(detail.call.sid).toBe("CA1");
    expect(detail.duration_ms).toBeNull();
    expect(detail.timeline).toMatchObject([
      { kind: "transcript", data: { role: "user", text: "Hi" } },
    ]);
  });

  test("an unknown call is 404 and a bad query is 400 naming the field", async () => {
    const { app } = withCall();
    const missing = await app.handle(authed("/calls/CA404"));
    expect(missing.status).toBe(404);
    expect(await json(missing)).toEqual({ error: "No call CA404", code: "NOT_FOUND" });
    const bad = await app.handle(authed("/calls?limit=5000"));
    expect(bad.status).toBe(400);
    expect((await json(bad)).field).toBe("query.limit");
  });

  test("the secret guard does not leak onto other routes", async () => {
    const { app } = withCall();
    expect((await app.handle(get("/health"))).status).toBe(200);
  });
});

describe("POST /make-call when the call cannot be recorded after Twilio placed it", () => {
  test("the placed call is hung up at once and the answer is 503 CALL_NOT_RECORDED (a retry rings once)", async () => {
    const secret = "make-call-secret-0123456789abcdef";
    const hungUp: string[] = [];
    const built = testApp(
      { ...INTEGRATIONS_ENV, ENDPOINT_SECRET: secret },
      {
        placeCall: async () => ({ sid: `CA${"ef".repeat(16)}`, status: "queued" }),
        hangUp: async (callSid) => {
          hungUp.push(callSid);
        },
      },
    );
    built.store.calls.ensure = () => Promise.reject(new Error("Connection closed"));
    const response = await built.app.handle(
      new Request("http://localhost/make-call", {
        method: "POST",
        headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
        body: JSON.stringify({ to: "+15557654321" }),
      }),
    );
    expect(response.status).toBe(503);
    expect(await json(response)).toMatchObject({ code: "CALL_NOT_RECORDED" });
    expect(hungUp).toEqual([`CA${"ef".repeat(16)}`]);
    expect(
      built.lines.find((line) => line.msg === "a placed call could not be recorded; hanging it up"),
    ).toBeDefined();
  });
});

describe("GET /health when the database or Redis cannot be reached", () => {
  test("503, status unavailable, naming what: a balancer stops sending calls here", async () => {
    const health = healthRoutes({
      version: "1.2.3",
      secret: undefined,
      integrations: {
        twilio: { configured: true, missing: [] },
        deepgram: { configured: true, missing: [] },
      },
      activeCalls: () => 2,
      draining: () => false,
      unreachable: () => ["redis"],
    });
    const response = await health.handle(get("/health"));
    expect(response.status).toBe(503);
    expect(await json(response)).toMatchObject({
      status: "unavailable",
      unreachable: ["redis"],
      activeCalls: 2,
    });
  });
});

describe("GET /calls/:sid with a message the caller left", () => {
  test("answers the message with the record (its schema includes it)", async () => {
    const secret = "calls-secret-0123456789abcdef";
    const built = testApp({ ENDPOINT_SECRET: secret });
    await built.store.calls.create({
      sid: "CA1",
      direction: "inbound",
      from_number: "+15557654321",
      to_number: "+15550001111",
      scenario: "dental-receptionist",
      status: "in-progress",
    });
    const message = {
      caller_name: "Jamie Fox",
      callback_number: "+15557654321",
      message: "Please call back.",
      taken_at: "2026-03-02T15:00:00.000Z",
    };
    await built.store.calls.update("CA1", { message, outcome: "message_taken" });
    const response = await built.app.handle(
      new Request("http://localhost/calls/CA1", { headers: { authorization: `Bearer ${secret}` } }),
    );
    expect(response.status).toBe(200);
    expect((await json(response)).call).toMatchObject({ message, outcome: "message_taken" });
  });
});

test("the access log reports the status actually sent: a redirect is a 302, probes at debug", async () => {
  const { app, lines } = build();
  expect((await app.handle(get("/"))).status).toBe(302);
  await app.handle(get("/health"));
  await eventually(() => lines.filter((line) => line.msg === "http").length === 2, "both lines");
  const logged = lines.filter((line) => line.msg === "http");
  expect(logged.map((line) => [line.path, line.status, line.level])).toEqual([
    ["/", 302, "info"],
    ["/health", 200, "debug"],
  ]);
});
