/**
 * Security issue points 1 and 11: bodies are limited per route and refused before they are read
 * (by declared length, or at the limit while streaming), the secret is checked before any body is
 * parsed, and no input (deep JSON, huge numbers) gets a 5xx: every bad input is a 4xx naming the field.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { MAX_BODY_BYTES, WEBHOOK_BODY_BYTES } from "../../src/routes/body.ts";
import { json } from "../helpers/http.ts";
import { rawRequest } from "../helpers/raw-http.ts";
import { SECRET, type SignedService, startSignedService } from "../helpers/signed-service.ts";

let running: SignedService;
beforeAll(async () => {
  running = await startSignedService();
});
afterAll(() => running.stop());

const HUGE = 120 * 1024 * 1024;
const port = () => running.service.port;
const form = { "content-type": "application/x-www-form-urlencoded" };
const jsonType = { "content-type": "application/json" };
const bearer = { authorization: `Bearer ${SECRET}` };

describe("a declared length over the limit is refused without reading the body", () => {
  test("unsigned /incoming-call of 120 MB: 413 while the body is still unsent", async () => {
    const response = await rawRequest({
      port: port(),
      path: "/incoming-call",
      headers: form,
      body: { kind: "declared", length: HUGE },
    });
    expect(response.status).toBe(413);
  });

  test("/make-call without the secret: 401 before the body; with it, 120 MB: 413", async () => {
    const anonymous = await rawRequest({
      port: port(),
      path: "/make-call",
      headers: jsonType,
      body: { kind: "declared", length: MAX_BODY_BYTES - 1 },
    });
    expect(anonymous.status).toBe(401);
    const authed = await rawRequest({
      port: port(),
      path: "/make-call",
      headers: { ...jsonType, ...bearer },
      body: { kind: "declared", length: HUGE },
    });
    expect(authed.status).toBe(413);
  });

  test("any other path: Bun refuses past the largest route limit", async () => {
    const response = await rawRequest({
      port: port(),
      path: "/no-such-route",
      headers: jsonType,
      body: { kind: "declared", length: HUGE },
    });
    expect(response.status).toBe(413);
  });
});

describe("a chunked body stops being read at the limit", () => {
  for (const [path, headers, limit] of [
    ["/incoming-call", form, WEBHOOK_BODY_BYTES],
    ["/amd-result", form, WEBHOOK_BODY_BYTES],
    ["/make-call", { ...jsonType, ...bearer }, MAX_BODY_BYTES],
    ["/leads", { ...jsonType, ...bearer }, MAX_BODY_BYTES],
  ] as const) {
    test(`${path}: 413 long before 8 MB have been sent`, async () => {
      const response = await rawRequest({
        port: port(),
        path,
        headers,
        body: { kind: "chunked", chunkBytes: 4096, maxBytes: 8 * 1024 * 1024 },
      });
      expect(response.status).toBe(413);
      expect(response.bodyBytesSent).toBeLessThan(limit + 2 * 1024 * 1024);
    });
  }

  test("/make-call without the secret: 401 before reading the chunks", async () => {
    const response = await rawRequest({
      port: port(),
      path: "/make-call",
      headers: jsonType,
      body: { kind: "chunked", chunkBytes: 4096, maxBytes: 8 * 1024 * 1024 },
    });
    expect(response.status).toBe(401);
    expect(response.bodyBytesSent).toBeLessThan(2 * 1024 * 1024);
  });
});

describe("11. every bad input is a 4xx naming the field", () => {
  const post = (path: string, body: string, headers: Record<string, string> = bearer) =>
    fetch(`${running.service.url}${path}`, {
      method: "POST",
      headers: { ...jsonType, ...headers },
      body,
    });

  test("200,000-deep JSON without the secret: 401 or 413, never 500", async () => {
    const deep = `${"[".repeat(200_000)}${"]".repeat(200_000)}`;
    for (const path of ["/make-call", "/leads"]) {
      const response = await post(path, deep, {});
      expect([401, 413]).toContain(response.status);
    }
  });

  test("deep JSON within the size limit, with the secret: 400 naming the body", async () => {
    for (const path of ["/make-call", "/leads"]) {
      const response = await post(path, `{"to":${"[".repeat(20_000)}${"]".repeat(20_000)}}`);
      expect(response.status).toBe(400);
      expect(await json(response)).toMatchObject({ code: "VALIDATION", field: "body" });
    }
  });

  test("deep JSON in a form field is just text", async () => {
    const response = await fetch(`${running.service.url}/incoming-call`, {
      method: "POST",
      headers: form,
      body: `CallSid=${"[".repeat(5000)}`,
    });
    expect(response.status).toBe(403);
  });

  test("not JSON, or not a JSON request: 400 and 415", async () => {
    const broken = await post("/make-call", '{"to":');
    expect(broken.status).toBe(400);
    expect((await json(broken)).field).toBe("body");
    const text = await fetch(`${running.service.url}/leads`, {
      method: "POST",
      headers: { "content-type": "text/plain", ...bearer },
      body: "hello",
    });
    expect(text.status).toBe(415);
    expect((await json(text)).error).toContain("application/json");
  });

  test("numbers out of range in a query: 400 naming the parameter", async () => {
    for (const [query, field] of [
      ["offset=99999999999999999999", "query.offset"],
      ["offset=1e400", "query.offset"],
      ["limit=99999999999999999999", "query.limit"],
    ]) {
      for (const path of ["/calls", "/leads"]) {
        const response = await running.authed(`${path}?${query}`);
        expect(response.status).toBe(400);
        expect((await json(response)).field).toBe(field);
      }
    }
  });

  test("over-long identifiers and filters: 400 naming them", async () => {
    const long = "x".repeat(100);
    const cases = [
      [`/calls/${long}`, "params.sid"],
      [`/leads/${long}`, "params.id"],
      [`/calls?status=${long}`, "query.status"],
    ];
    for (const [path, field] of cases) {
      const response = await running.authed(path as string);
      expect(response.status).toBe(400);
      expect((await json(response)).field).toBe(field);
    }
  });
});
