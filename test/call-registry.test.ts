import { expect, test } from "bun:test";
import { CallRegistry, type LiveCall } from "../src/call/registry.ts";

function fakeCall(callSid: string, registry: CallRegistry) {
  const hungUp: string[] = [];
  const call: LiveCall = {
    callSid,
    hangUp: async (reason) => {
      hungUp.push(reason);
      registry.unregister(callSid);
    },
    terminate: () => registry.unregister(callSid),
  };
  return { call, hungUp };
}

test("calls are registered once, by SID", () => {
  const registry = new CallRegistry();
  const { call } = fakeCall("CA1", registry);
  expect(registry.register(call)).toBe("registered");
  expect(registry.register(fakeCall("CA1", registry).call)).toBe("duplicate");
  expect(registry.get("CA1")).toBe(call);
  expect(registry.size).toBe(1);
  registry.unregister("CA1");
  expect(registry.size).toBe(0);
  expect(registry.get("CA1")).toBeUndefined();
});

test("once draining, new calls are refused and live ones stay", () => {
  const registry = new CallRegistry();
  registry.register(fakeCall("CA1", registry).call);
  registry.stopAccepting();
  expect(registry.draining).toBe(true);
  expect(registry.register(fakeCall("CA2", registry).call)).toBe("draining");
  expect(registry.size).toBe(1);
});

test("waitUntilEmpty resolves true as soon as the last call ends", async () => {
  const registry = new CallRegistry();
  expect(await registry.waitUntilEmpty(0)).toBe(true);
  registry.register(fakeCall("CA1", registry).call);
  registry.register(fakeCall("CA2", registry).call);
  const waiting = registry.waitUntilEmpty(60_000);
  registry.unregister("CA1");
  queueMicrotask(() => registry.unregister("CA2"));
  expect(await waiting).toBe(true);
});

test("the drain also waits for a stream still being set up, which then registers or is refused", async () => {
  const registry = new CallRegistry();
  const setUp = registry.opening();
  let empty = false;
  const waiting = registry.waitUntilEmpty(60_000).then((result) => {
    empty = result;
  });
  await Bun.sleep(0);
  expect(empty).toBe(false);
  registry.register(fakeCall("CA1", registry).call);
  setUp();
  setUp(); // once only
  await Bun.sleep(0);
  expect(empty).toBe(false);
  registry.unregister("CA1");
  await waiting;
  expect(empty).toBe(true);
});

test("waitUntilEmpty resolves false when calls outlast the timeout", async () => {
  const registry = new CallRegistry();
  registry.register(fakeCall("CA1", registry).call);
  expect(await registry.waitUntilEmpty(5)).toBe(false);
  expect(registry.size).toBe(1);
});

test("hangUpAll hangs up every live call with the reason", async () => {
  const registry = new CallRegistry();
  const first = fakeCall("CA1", registry);
  const second = fakeCall("CA2", registry);
  registry.register(first.call);
  registry.register(second.call);
  await registry.hangUpAll("service shutting down", 1_000);
  expect(first.hungUp).toEqual(["service shutting down"]);
  expect(second.hungUp).toEqual(["service shutting down"]);
  expect(registry.size).toBe(0);
});
