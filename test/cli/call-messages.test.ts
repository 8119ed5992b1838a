/**
 * The call command's words: phone numbers checked before anything is sent, server URLs read as the
 * service's base URL, fetch failures and the server's refusals explained. Servers are tiny
 * Bun.serve stand-ins on loopback that answer as the service (or something else) would.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CALL_USAGE, e164Problem, safeForSecret, serviceBaseUrl } from "../../src/cli/call.ts";
import { healthProof } from "../../src/health-proof.ts";
import { isLoopbackHost } from "../../src/loopback.ts";
import { runCall } from "../helpers/call-command.ts";

const E164_RULE = "phone numbers are written in E.164, e.g. +15551234567";

/**
 * A stand-in server: answers GET /health as a voice-agent holding `standInSecret` (with the proof
 * the call command asks for), POST /make-call with `reply`.
 */
const standInSecret = "from-the-file-0123456789";
let reply: { status: number; body: unknown } = { status: 200, body: {} };
let posts = 0;
/** True: the stand-in answers /health as a voice-agent but cannot prove it holds the secret. */
let impostor = false;
let server: ReturnType<typeof Bun.serve>;
beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      const { pathname, searchParams } = new URL(request.url);
      if (pathname === "/health") {
        const nonce = searchParams.get("proof");
        return Response.json({
          status: "ok",
          version: "test",
          ...(nonce && impostor === false ? { proof: healthProof(standInSecret, nonce) } : {}),
        });
      }
      if (pathname === "/make-call" && request.method === "POST") {
        posts++;
        return typeof reply.body === "string"
          ? new Response(reply.body, { status: reply.status })
          : Response.json(reply.body, { status: reply.status });
      }
      return Response.json({ error: "No route", code: "NOT_FOUND" }, { status: 404 });
    },
  });
});
afterAll(() => server.stop(true));

const url = () => `http://127.0.0.1:${server.port}`;

describe("phone numbers", () => {
  test("E.164 numbers pass", () => {
    for (const number of ["+15551234567", "+442079460958", "+12"])
      expect(e164Problem("--to", number)).toBeNull();
  });

  test("common North American spellings get the rule and the E.164 number offered", () => {
    for (const number of [
      "555-123-4567",
      "(555) 123-4567",
      "555.123.4567",
      "5551234567",
      "15551234567",
      "1-555-123-4567",
      "+1 555 123 4567",
      "+1 (555) 123-4567",
    ]) {
      const problem = e164Problem("--to", number) ?? "";
      expect(problem).toStartWith(`--to ${number}: ${E164_RULE}`);
      expect(problem).toContain("did you mean +15551234567?");
      expect(problem).not.toContain("Expected string to match");
    }
    expect(e164Problem("--to", "555-123-4567")).toContain(
      "10 digits read as a North American number",
    );
  });

  test("the international 00 prefix is offered as +", () => {
    expect(e164Problem("--to", "0044 20 7946 0958")).toContain("did you mean +442079460958?");
  });

  test("nothing is offered when the number is not plain", () => {
    for (const number of ["555", "123-4567", "07700 900123", "call me", "+0123456", "1234567890"]) {
      const problem = e164Problem("--to", number) ?? "";
      expect(problem).toContain(E164_RULE);
      expect(problem).not.toContain("did you mean");
    }
  });

  test("the command refuses a bad --to before sending anything, and never dials the guess", async () => {
    const before = posts;
    for (const number of ["555-123-4567", "15551234567", "(555) 123-4567"]) {
      const { code, out, err } = await runCall([
        "--to",
        number,
        "--server",
        url(),
        "--secret",
        "s",
      ]);
      expect(code).toBe(64);
      expect(out).toBe("");
      expect(err).toContain(E164_RULE);
      expect(err).toContain("did you mean +15551234567?");
    }
    expect(posts).toBe(before);
  });
});

describe("server URLs", () => {
  test("a path naming one of the service's pages is dropped, with a note", () => {
    expect(serviceBaseUrl("http://127.0.0.1:8080/docs", "--server")).toEqual({
      url: "http://127.0.0.1:8080",
      note: "--server: using http://127.0.0.1:8080 (left out /docs: the command needs the service's base URL, not one of its pages)",
    });
    expect(serviceBaseUrl("https://voice.example.com/docs/json", "--server")).toMatchObject({
      url: "https://voice.example.com",
    });
    expect(serviceBaseUrl("https://example.com/voice/make-call", "--server")).toMatchObject({
      url: "https://example.com/voice",
    });
    expect(serviceBaseUrl("http://127.0.0.1:8080/health?x=1", "--server")).toMatchObject({
      url: "http://127.0.0.1:8080",
    });
  });

  test("a base URL, with or without a proxy prefix, is kept as it is", () => {
    expect(serviceBaseUrl("http://127.0.0.1:8080/", "--server")).toEqual({
      url: "http://127.0.0.1:8080",
    });
    expect(serviceBaseUrl("https://example.com/voice/", "--server")).toEqual({
      url: "https://example.com/voice",
    });
  });

  test("what is not an http(s) URL is refused with an example", async () => {
    expect(serviceBaseUrl("127.0.0.1:8080", "--server")).toEqual({
      error: "--server 127.0.0.1:8080 is not a URL: write it like http://127.0.0.1:8080",
    });
    expect(serviceBaseUrl("localhost:8080", "--server")).toEqual({
      error: "--server localhost:8080 is not an http(s) URL: write it like http://127.0.0.1:8080",
    });
    const { code, err } = await runCall(["--to", "+15551234567", "--server", "localhost:8080"]);
    expect(code).toBe(64);
    expect(err).toContain("write it like http://127.0.0.1:8080");
  });
});

describe("the server's refusals", () => {
  const call = (extra: string[] = []) =>
    runCall(["--to", "+15551234567", "--server", url(), "--secret", "s", ...extra]);

  test("a 400 naming body.to becomes the E.164 rule, not the schema's words", async () => {
    reply = {
      status: 400,
      body: {
        error: "body.to: Expected string to match '^\\+[1-9][0-9]{1,14}$'",
        code: "VALIDATION",
        field: "body.to",
      },
    };
    const to = await call();
    expect(to.code).toBe(1);
    expect(to.err).toBe(`400: the server refused --to +15551234567: ${E164_RULE}`);
    expect(to.err).not.toContain("Expected string");
  });

  test("a 404 that is not the lead lookup's gets no lead hint", async () => {
    reply = {
      status: 404,
      body: { error: "No route for POST /make-call", code: "NOT_FOUND" },
    };
    const route = await call(["--lead-id", "lead_1"]);
    expect(route.err).not.toContain("no such lead");
    expect(route.err).toContain(`${url()}/make-call was not found`);
    reply = { status: 404, body: "<html>Not Found</html>" };
    const html = await call(["--lead-id", "lead_1"]);
    expect(html.err).not.toContain("no such lead");
    expect(html.err).toContain("--server should be the service's base URL");
    reply = { status: 404, body: { error: "No lead lead_1", code: "NOT_FOUND" } };
    const lead = await call(["--lead-id", "lead_1"]);
    expect(lead.err).toContain("no such lead: check --lead-id");
  });

  test("codes pick the hint: the call limit, Twilio, configuration, shutdown, a proxy", async () => {
    const cases: [number, unknown, string][] = [
      [429, { error: "limit", code: "TOO_MANY_CALLS" }, "concurrent-call limit"],
      [502, { error: "Twilio said no", code: "TWILIO_ERROR" }, "Twilio refused the call"],
      [503, { error: "x", code: "INTEGRATION_NOT_CONFIGURED" }, "voice-agent setup"],
      [503, { error: "x", code: "SHUTTING_DOWN" }, "shutting down"],
      [502, "<html>Bad Gateway</html>", "a reverse proxy?"],
    ];
    for (const [status, body, hint] of cases) {
      reply = { status, body };
      const { code, err } = await call();
      expect(code).toBe(1);
      expect(err).toContain(hint);
    }
  });

  test("a missing secret points at --env-file and the service's env file", async () => {
    reply = { status: 401, body: { error: "Missing bearer token", code: "UNAUTHORIZED" } };
    const { err } = await runCall(["--to", "+15551234567", "--server", url()]);
    expect(err).toContain(
      "pass --secret, set ENDPOINT_SECRET, or read the service's with --env-file /etc/voice-agent/voice-agent.env (with sudo)",
    );
  });

  test("two lead options at once are a usage error, not the server's 400", async () => {
    const { code, err } = await runCall([
      "--to",
      "+15551234567",
      "--lead-id",
      "lead_1",
      "--lead-name",
      "Dana Reyes",
    ]);
    expect(code).toBe(64);
    expect(err).toBe(
      "give one of --lead-name, --lead-file and --lead-id, not --lead-name and --lead-id",
    );
  });
});

describe("call --help", () => {
  test("every option's description starts in the same column", () => {
    const options = CALL_USAGE.split("\n").filter((line) => /^ {2}--/.test(line));
    expect(options.length).toBe(7);
    const columns = options.map((line) => /^ {2}--\S+(?: \S+)? +/.exec(line)?.[0].length);
    expect(new Set(columns).size).toBe(1);
    for (const line of CALL_USAGE.split("\n")) expect(line.length).toBeLessThanOrEqual(100);
    const continuation = CALL_USAGE.split("\n").filter((line) => /^ {4,}[^\s[]/.test(line));
    expect(continuation.length).toBe(2);
    for (const line of continuation) expect(line.search(/\S/)).toBe(columns[0] ?? 0);
  });
});

describe("where the secret may go", () => {
  test("a redirect is reported, not followed with the lead", async () => {
    reply = { status: 307, body: "" };
    const before = posts;
    const result = await runCall(["--to", "+15551234567", "--server", url(), "--secret", "s"]);
    expect(posts).toBe(before + 1);
    expect(result.code).toBe(69);
    expect(result.err).toContain("redirects (307)");
  });

  test("a process on the local port that cannot prove it holds the secret never gets it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "call-env-"));
    const envFile = join(dir, "service.env");
    await Bun.write(envFile, `ENDPOINT_SECRET=${standInSecret}\nSERVER_PORT=${server.port}\n`);
    impostor = true;
    const before = posts;
    const result = await runCall(["--to", "+15551234567", "--env-file", envFile]);
    impostor = false;
    rmSync(dir, { recursive: true, force: true });
    expect(posts).toBe(before);
    expect(result.code).toBe(69);
    expect(result.err).toContain("cannot prove it holds this ENDPOINT_SECRET");
  });

  test("plain http to another machine never gets the secret", () => {
    // Judged before any connection: no request leaves for the other machine.
    expect(safeForSecret("http://192.0.2.10:8080")).toBe(false);
    expect(safeForSecret("http://voice.example.com")).toBe(false);
    expect(safeForSecret("https://voice.example.com")).toBe(true);
    expect(safeForSecret("http://127.0.0.1:8080")).toBe(true);
  });

  test("with --env-file, a ./.env or the shell cannot point the secret elsewhere", async () => {
    const dir = mkdtempSync(join(tmpdir(), "call-env-"));
    const envFile = join(dir, "service.env");
    await Bun.write(envFile, `ENDPOINT_SECRET=${standInSecret}\nSERVER_PORT=${server.port}\n`);
    reply = { status: 200, body: { call_sid: "CA1", lead_id: "lead_1" } };
    const result = await runCall(["--to", "+15551234567", "--env-file", envFile], {
      // What Bun would have loaded from a ./.env in the current folder.
      SERVER_PORT: "9",
      SERVER_HOST: "127.0.0.2",
    });
    rmSync(dir, { recursive: true, force: true });
    expect(result.out).toContain(`via http://127.0.0.1:${server.port} (the local service)`);
    expect(result.code).toBe(0);
  });
});

test("every loopback address counts as this machine, as the wizard and the service count it", () => {
  for (const host of ["localhost", "127.0.0.1", "127.0.0.2", "[::1]", "::1"])
    expect(isLoopbackHost(host)).toBe(true);
  for (const host of ["127.0.0.1.example.com", "192.0.2.10", "localhost.example.com"])
    expect(isLoopbackHost(host)).toBe(false);
  expect(safeForSecret("http://127.0.0.2:9")).toBe(true);
});
