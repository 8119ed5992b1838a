/**
 * Admitting a stream when the coordination fails (Redis unreachable mid-call set-up): the stream is
 * refused as an internal error, whatever the instance took is let go, and the call's record ends
 * instead of staying "ringing" with its token gone.
 */
import { expect, test } from "bun:test";
import { CallRegistry } from "../../src/call/registry.ts";
import { systemClock } from "../../src/clock.ts";
import { LocalCoordination } from "../../src/fleet/local-coordination.ts";
import { openStore } from "../../src/store/index.ts";
import { sqliteStorage } from "../../src/store/sqlite-storage.ts";
import { FakePhone } from "../fakes/session-ports.ts";
import { captureLogger, idleBridge, testConfig } from "../helpers/context.ts";

test("a coordination failure while admitting ends the record and lets the call go", async () => {
  const config = testConfig({ DEEPGRAM_API_KEY: "dg-key" });
  const calls = new CallRegistry();
  const { logger, lines } = captureLogger();
  const store = sqliteStorage(openStore(":memory:"));
  const coordination = new LocalCoordination("instance_test", systemClock);
  const released: string[] = [];
  coordination.redeemToken = () => Promise.reject(new Error("Connection has failed"));
  const release = coordination.releaseCall.bind(coordination);
  coordination.releaseCall = (callSid) => {
    released.push(callSid);
    return release(callSid);
  };
  await store.calls.create({
    sid: "CA1",
    direction: "inbound",
    from_number: "+15557654321",
    to_number: "+15550001111",
    scenario: "dental-receptionist",
    status: "ringing",
  });
  const bridge = idleBridge(config, calls, logger, store, coordination);
  const opened = await bridge.open(
    {
      streamSid: "MZ1",
      callSid: "CA1",
      accountSid: "AC1",
      encoding: "audio/x-mulaw",
      sampleRate: 8000,
      customParameters: { token: "whatever" },
    },
    new FakePhone(),
  );
  expect(opened).toEqual({
    ok: false,
    reason: "internal error while admitting the stream",
    internal: true,
  });
  expect(released).toEqual(["CA1"]);
  expect(await store.calls.get("CA1")).toMatchObject({ end_reason: "stream_refused" });
  expect(lines.find((line) => line.msg === "could not admit a stream")).toBeDefined();
  expect(await calls.waitUntilEmpty(0)).toBe(true);
});
