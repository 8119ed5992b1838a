import { expect, test } from "bun:test";
import { createLogger, tryLogged } from "../src/log.ts";
import { ManualClock } from "./fakes/clock.ts";

function capture(level: "debug" | "info" | "warn" | "error") {
  const lines: string[] = [];
  const logger = createLogger({
    level,
    write: (line) => lines.push(line),
    clock: new ManualClock(),
  });
  return { logger, lines };
}

test("one JSON object a line with time, level, message and fields", () => {
  const { logger, lines } = capture("info");
  logger.info("call started", { callSid: "CA1" });
  expect(lines).toHaveLength(1);
  expect(JSON.parse(lines[0] ?? "")).toEqual({
    time: "2026-03-02T15:00:00.000Z",
    level: "info",
    msg: "call started",
    callSid: "CA1",
  });
});

test("lines below the level are dropped", () => {
  const { logger, lines } = capture("warn");
  logger.debug("d");
  logger.info("i");
  logger.warn("w");
  logger.error("e");
  expect(lines.map((line) => JSON.parse(line).level)).toEqual(["warn", "error"]);
});

test("child loggers add their fields to every line", () => {
  const { logger, lines } = capture("debug");
  logger.child({ callSid: "CA9" }).child({ scenario: "dental" }).debug("x", { n: 1 });
  expect(JSON.parse(lines[0] ?? "")).toMatchObject({ callSid: "CA9", scenario: "dental", n: 1 });
});

test("secrets are redacted by key at any depth", () => {
  const { logger, lines } = capture("info");
  logger.info("config", {
    ENDPOINT_SECRET: "s3cret-value",
    twilio: { authToken: "tw-token", accountSid: "AC1" },
    headers: [{ Authorization: "Bearer abc" }],
    deepgram: { apiKey: "dg-key" },
  });
  const line = lines[0] ?? "";
  for (const secret of ["s3cret-value", "tw-token", "Bearer abc", "dg-key"])
    expect(line).not.toContain(secret);
  expect(JSON.parse(line)).toMatchObject({
    ENDPOINT_SECRET: "[redacted]",
    twilio: { authToken: "[redacted]", accountSid: "AC1" },
    headers: [{ Authorization: "[redacted]" }],
  });
});

test("errors keep their name and message", () => {
  const { logger, lines } = capture("info");
  logger.error("failed", { error: new RangeError("too far") });
  expect(JSON.parse(lines[0] ?? "").error).toMatchObject({
    name: "RangeError",
    message: "too far",
  });
});

test("tryLogged runs the work, and logs instead of throwing when it fails", () => {
  const { logger, lines } = capture("info");
  let ran = false;
  tryLogged(logger, "step failed", { step: "a" }, () => {
    ran = true;
  });
  expect(ran).toBe(true);
  expect(lines).toHaveLength(0);
  expect(() =>
    tryLogged(logger, "step failed", { step: "b" }, () => {
      throw new Error("boom");
    }),
  ).not.toThrow();
  expect(JSON.parse(lines[0] ?? "{}")).toMatchObject({
    level: "error",
    msg: "step failed",
    step: "b",
    error: { message: "boom" },
  });
});
