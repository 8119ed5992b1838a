/** The Deepgram key check (`GET /v1/projects`) against the fake Deepgram REST API and against servers that fail. */
import { afterAll, describe, expect, test } from "bun:test";
import {
  checkDeepgramKey,
  describeDeepgramKeyCheck,
  logDeepgramKeyCheck,
} from "../../src/adapters/deepgram-keys.ts";
import { FakeTtsServer } from "../fakes/tts-server.ts";
import { freePort } from "../fakes/twilio-webhooks.ts";
import { captureLogger } from "../helpers/context.ts";

const KEY = "dg-valid-key-0123456789";
const SCOPED = "dg-scoped-key-0123456789";
const WRONG = "dg-wrong-key-0123456789";
const deepgram = FakeTtsServer.start(KEY);
deepgram.scopedKeys.add(SCOPED);
/** Accepts the connection and never answers. */
const silent = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise(() => {}) });
const broken = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: () =>
    Response.json(
      { err_code: "INTERNAL_SERVER_ERROR", err_msg: "Something broke.", request_id: "r-1" },
      { status: 500 },
    ),
});
afterAll(() => {
  deepgram.stop();
  silent.stop(true);
  broken.stop(true);
});

const check = (apiKey: string, apiUrl = deepgram.url, timeoutMs = 2_000) =>
  checkDeepgramKey({ apiUrl, apiKey, timeoutMs });

describe("checkDeepgramKey", () => {
  test("the right key: 200, the projects named; sent as `Authorization: Token <key>`", async () => {
    const result = await check(KEY, `${deepgram.url}/`);
    expect(result).toEqual({ verdict: "valid", projects: ["Fake project"] });
    expect(deepgram.projectRequests.at(-1)?.authorization).toBe(`Token ${KEY}`);
    expect(describeDeepgramKeyCheck(result)).toBe(
      "Deepgram accepted the API key (1 project: Fake project)",
    );
  });

  test("a wrong key: 401, rejected, in Deepgram's words and without the key", async () => {
    const result = await check(WRONG);
    expect(result).toEqual({ verdict: "rejected", status: 401, message: "Invalid credentials." });
    const text = describeDeepgramKeyCheck(result);
    expect(text).toBe("Deepgram rejected the API key (HTTP 401: Invalid credentials.)");
    expect(text).not.toContain(WRONG);
  });

  test("a key without the projects scope: 403, valid but said so", async () => {
    const result = await check(SCOPED);
    expect(result.verdict).toBe("limited");
    const text = describeDeepgramKeyCheck(result);
    expect(text).toStartWith("Deepgram accepted the API key, but it lacks the scope");
    expect(text).toContain("HTTP 403");
  });

  test("nothing listening: unreachable, not rejected", async () => {
    const result = await check(KEY, `http://127.0.0.1:${freePort()}`);
    expect(result.verdict).toBe("unreachable");
    const text = describeDeepgramKeyCheck(result);
    expect(text).toStartWith("could not reach Deepgram to check the API key");
    expect(text).not.toContain("rejected");
  });

  test("no answer in time: unreachable, naming the time limit", async () => {
    const result = await check(KEY, `http://127.0.0.1:${silent.port}`, 50);
    expect(result).toEqual({
      verdict: "unreachable",
      message: `no answer from http://127.0.0.1:${silent.port} within 0.05 s (time-out)`,
    });
  });

  test("another answer (500): not checked, with Deepgram's message", async () => {
    const result = await check(KEY, `http://127.0.0.1:${broken.port}`);
    expect(result).toEqual({ verdict: "unexpected", status: 500, message: "Something broke." });
    expect(describeDeepgramKeyCheck(result)).toBe(
      "Deepgram answered HTTP 500: Something broke.; the API key could not be checked",
    );
  });
});

describe("logDeepgramKeyCheck (the service's start-up check)", () => {
  test("a rejected key is a warning naming the problem, never the key", async () => {
    const { logger, lines } = captureLogger();
    await logDeepgramKeyCheck({ apiUrl: deepgram.url, apiKey: WRONG }, logger);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "warn", verdict: "rejected" });
    expect(String(lines[0]?.msg)).toStartWith("Deepgram rejected the API key (HTTP 401");
    expect(JSON.stringify(lines)).not.toContain(WRONG);
  });

  test("a valid key is an info line; an aborted check logs nothing", async () => {
    const { logger, lines } = captureLogger();
    await logDeepgramKeyCheck({ apiUrl: deepgram.url, apiKey: KEY }, logger);
    expect(lines).toMatchObject([{ level: "info", verdict: "valid" }]);
    const aborted = new AbortController();
    const pending = logDeepgramKeyCheck(
      { apiUrl: `http://127.0.0.1:${silent.port}`, apiKey: KEY, signal: aborted.signal },
      logger,
    );
    aborted.abort();
    await pending;
    expect(lines).toHaveLength(1);
  });
});
