import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LiveCall } from "../src/call/registry.ts";
import { openStore } from "../src/store/index.ts";
import { captureLogger, testConfig } from "./helpers/context.ts";
import { json } from "./helpers/http.ts";
import { startTestService } from "./helpers/test-service.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "voice-agent-service-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function start(drainMs: number) {
  const { logger, lines } = captureLogger();
  const config = testConfig({
    DATABASE_PATH: join(dir, "db", "voice-agent.db"),
    SHUTDOWN_DRAIN_MS: String(drainMs),
  });
  return { service: await startTestService(config, logger), lines, path: config.databasePath };
}

test("serves /health over a real socket on a random port", async () => {
  const { service, lines } = await start(0);
  expect(service.port).toBeGreaterThan(0);
  const response = await fetch(`${service.url}/health`);
  expect(response.status).toBe(200);
  expect((await json(response)).status).toBe("ok");
  expect(lines[0]).toMatchObject({ msg: "listening", port: service.port });
  await service.shutdown("test");
});

test("shutdown waits for live calls to finish, then closes server and database", async () => {
  const { service, path } = await start(60_000);
  let hungUp = false;
  const call: LiveCall = {
    callSid: "CA1",
    hangUp: async () => {
      hungUp = true;
    },
    terminate: () => {},
  };
  service.calls.register(call);
  await service.store.leads.create({ first_name: "Kept", last_name: "Lead" });

  const stopping = service.shutdown("SIGTERM");
  const draining = await fetch(`${service.url}/health`);
  expect(draining.status).toBe(503);
  expect(service.calls.register({ ...call, callSid: "CA2" })).toBe("draining");

  service.calls.unregister("CA1");
  await stopping;
  expect(hungUp).toBe(false);
  await expect(fetch(`${service.url}/health`)).rejects.toThrow();
  await expect(service.shutdown("again")).resolves.toBeUndefined();

  const reopened = openStore(path);
  expect(reopened.leads.list(10).map((lead) => lead.first_name)).toEqual(["Kept"]);
  reopened.close();
});

test("calls still live after the drain time are hung up", async () => {
  const { service, lines } = await start(10);
  const reasons: string[] = [];
  service.calls.register({
    callSid: "CA1",
    hangUp: async (reason) => {
      reasons.push(reason);
      service.calls.unregister("CA1");
    },
    terminate: () => {},
  });
  await service.shutdown("SIGTERM");
  expect(reasons).toEqual(["service shutting down"]);
  expect(lines.map((line) => line.msg)).toContain("drain time over, hanging up live calls");
});

test("without ENDPOINT_SECRET, call records answer direct loopback clients but not relayed ones", async () => {
  const { service } = await start(0);
  expect((await fetch(`${service.url}/calls`)).status).toBe(200);
  const relayed = await fetch(`${service.url}/calls`, {
    headers: { "x-forwarded-for": "203.0.113.9" },
  });
  expect(relayed.status).toBe(401);
  await service.shutdown("test");
});

test("turning Twilio signature checks off is logged as a warning at start-up", async () => {
  const { logger, lines } = captureLogger();
  const config = testConfig({
    DATABASE_PATH: join(dir, "warn.db"),
    TWILIO_VALIDATE_SIGNATURES: "false",
  });
  const service = await startTestService(config, logger);
  expect(
    lines.find((line) => String(line.msg).startsWith("TWILIO_VALIDATE_SIGNATURES is off")),
  ).toMatchObject({ level: "warn" });
  await service.shutdown("test");
});

test("every HTTP request is logged once with its status; health checks only at debug", async () => {
  const { service, lines } = await start(0);
  await fetch(`${service.url}/health`);
  await fetch(`${service.url}/calls/CA404?from=%2B15551234567`);
  // The line is written after the response has gone out, so it may trail the fetch by a tick or two.
  const http = () => lines.filter((line) => line.msg === "http");
  for (let tick = 0; tick < 200 && http().length < 2; tick++) await Bun.sleep(1);
  await service.shutdown("test");
  expect(
    http().map(({ level, method, path, status }) => ({ level, method, path, status })),
  ).toEqual([
    { level: "debug", method: "GET", path: "/health", status: 200 },
    { level: "info", method: "GET", path: "/calls/CA404", status: 404 },
  ]);
  expect(JSON.stringify(http())).not.toContain("15551234567");
});
