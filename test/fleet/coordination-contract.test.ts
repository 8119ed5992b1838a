/**
 * The coordination port's contract, in-process and on a real Redis (a key prefix per test). What
 * one instance must get from it is asserted on both; what several instances must agree on (a
 * token issued by one and redeemed on another, once; the limit across instances; holders; messages
 * to the holder; a dead instance's slots) on Redis, with separate clients as separate processes.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Coordination, StreamGrant } from "../../src/fleet/coordination.ts";
import { IpcCoordination, serveWorker } from "../../src/fleet/ipc-coordination.ts";
import { CoordinationState, LocalCoordination } from "../../src/fleet/local-coordination.ts";
import { openRedisCoordination, RedisCoordination } from "../../src/fleet/redis-coordination.ts";
import { ManualClock } from "../fakes/clock.ts";
import { eventually } from "../helpers/eventually.ts";
import { freshPrefix, redisReady, TEST_REDIS_URL, type TestPrefix } from "../helpers/redis.ts";

const grant: StreamGrant = {
  scenario: "dental-receptionist",
  direction: "inbound",
  from: "+15557654321",
  to: "+15550001111",
};
const ttl = { ringingMs: 180_000, answeredMs: 30_000 };
const NO_LIMIT = Number.POSITIVE_INFINITY;

interface Engine {
  name: string;
  ready: boolean;
  /** A coordination for instance `id`; all opened in one test share their state. */
  open(id: string, clock: ManualClock): Promise<Coordination>;
}

let prefix: TestPrefix | undefined;
const opened: Coordination[] = [];
afterEach(async () => {
  for (const coordination of opened.splice(0)) await coordination.close();
  await prefix?.clear();
  prefix = undefined;
});

/** The state the in-process instances of one test share (as a supervisor's workers do). */
let shared: CoordinationState | undefined;
afterEach(() => {
  shared = undefined;
});
const local: Engine = {
  name: "in-process",
  ready: true,
  async open(id, clock) {
    shared ??= new CoordinationState(clock, ttl);
    const coordination = new LocalCoordination(id, clock, shared);
    opened.push(coordination);
    return coordination;
  },
};
/** Workers of one supervisor: each call crosses a (simulated) JSON IPC channel, both ways. */
const overIpc = <T>(message: T): T => JSON.parse(JSON.stringify(message));
const workers: Engine = {
  name: "supervised workers (IPC)",
  ready: true,
  async open(id, clock) {
    shared ??= new CoordinationState(clock, ttl);
    const state = shared;
    let worker: IpcCoordination | undefined;
    const served = serveWorker(
      {
        instance: id,
        process: { send: (reply) => queueMicrotask(() => worker?.receive(overIpc(reply))) },
      },
      state,
      clock,
      () => ({ total: 1, alive: 1, activeCalls: state.held.size }),
    );
    worker = new IpcCoordination(id, (request) => {
      // The coordination's own requests (the metrics gathers are the supervisor's, tested apart).
      if (request.type === "call" || request.type === "workers")
        queueMicrotask(() => void served.handle(overIpc(request)));
      return true;
    });
    opened.push(worker);
    return worker;
  },
};

const redis: Engine = {
  name: "Redis",
  ready: redisReady,
  async open(id, clock) {
    prefix ??= freshPrefix();
    const coordination = await openRedisCoordination(TEST_REDIS_URL, id, clock, {
      prefix: prefix.prefix,
      ttl,
    });
    opened.push(coordination);
    return coordination;
  },
};

for (const engine of [local, workers, redis]) {
  describe.skipIf(!engine.ready)(`coordination, ${engine.name}`, () => {
    test("a token is redeemed once, for its own call, and a wrong one burns nothing", async () => {
      const clock = new ManualClock();
      const a = await engine.open("instance_a", clock);
      const token = await a.issueToken("CA1", grant, { answered: true }, NO_LIMIT);
      if (!token) throw new Error("no token");
      expect(await a.tokenPending("CA1")).toBe(true);
      const wrong = `${token.slice(0, -1)}${token.endsWith("x") ? "y" : "x"}`;
      expect(await a.redeemToken("CA1", wrong)).toBeUndefined();
      expect(await a.redeemToken("CA2", token)).toBeUndefined();
      expect(await a.redeemToken("CA1", undefined)).toBeUndefined();
      expect(await a.redeemToken("CA1", token)).toEqual({ grant, held: true });
      expect(await a.redeemToken("CA1", token)).toBeUndefined();
      expect(await a.tokenPending("CA1")).toBe(false);
    });

    test("an unused token expires, and its call is handed out once to be ended", async () => {
      const clock = new ManualClock();
      const a = await engine.open("instance_a", clock);
      const token = await a.issueToken("CA1", grant, { answered: true, extraMs: 5_000 }, NO_LIMIT);
      clock.advance(34_000);
      expect(await a.takeExpiredTokens()).toEqual([]);
      clock.advance(1_000);
      expect(await a.redeemToken("CA1", token)).toBeUndefined();
      expect(await a.takeExpiredTokens()).toEqual(["CA1"]);
      expect(await a.takeExpiredTokens()).toEqual([]);
      expect(await a.load()).toBe(0);
    });

    test("an outbound token rings long, moves to Twilio's SID, and shortens once answered", async () => {
      const clock = new ManualClock();
      const a = await engine.open("instance_a", clock);
      const token = await a.issueToken("pending:1", grant, { answered: false }, NO_LIMIT);
      await a.rekeyToken("pending:1", "CA9");
      expect(await a.tokenPending("pending:1")).toBe(false);
      clock.advance(100_000);
      expect(await a.tokenPending("CA9")).toBe(true);
      await a.tokenAnswered("CA9");
      clock.advance(30_001);
      expect(await a.redeemToken("CA9", token)).toBeUndefined();
      const revoked = await a.issueToken("CA10", grant, { answered: false }, NO_LIMIT);
      await a.revokeToken("CA10");
      expect(await a.redeemToken("CA10", revoked)).toBeUndefined();
      expect(await a.takeExpiredTokens()).toEqual(["CA9"]);
    });

    test("the limit counts live calls and tokens, and a released call frees its slot", async () => {
      const clock = new ManualClock();
      const a = await engine.open("instance_a", clock);
      const first = await a.issueToken("CA1", grant, { answered: true }, 2);
      expect(await a.issueToken("CA2", grant, { answered: true }, 2)).toBeDefined();
      expect(await a.issueToken("CA3", grant, { answered: true }, 2)).toBeUndefined();
      expect(await a.redeemToken("CA1", first)).toMatchObject({ held: true });
      expect(await a.holdCall("CA1")).toBe(false);
      expect(await a.holder("CA1")).toBe("instance_a");
      expect(await a.load()).toBe(2);
      expect(await a.issueToken("CA3", grant, { answered: true }, 2)).toBeUndefined();
      await a.releaseCall("CA1");
      expect(await a.holder("CA1")).toBeUndefined();
      expect(await a.issueToken("CA3", grant, { answered: true }, 2)).toBeDefined();
    });

    test("redeeming passes the slot from the token to the live call in one step", async () => {
      const clock = new ManualClock();
      const a = await engine.open("instance_a", clock);
      const token = await a.issueToken("CA1", grant, { answered: true }, 1);
      expect(await a.redeemToken("CA1", "wrong")).toBeUndefined();
      expect(await a.redeemToken("CA1", token)).toEqual({ grant, held: true });
      expect(await a.redeemToken("CA1", token)).toBeUndefined();
      expect(await a.holder("CA1")).toBe("instance_a");
      expect(await a.load()).toBe(1);
      expect(await a.issueToken("CA2", grant, { answered: true }, 1)).toBeUndefined();
    });

    test("a message for a call held here reaches this instance's handler", async () => {
      const a = await engine.open("instance_a", new ManualClock());
      const received: unknown[] = [];
      a.onMessage((message) => received.push(message));
      await a.send("instance_a", { kind: "verdict", callSid: "CA1", answeredBy: "human" });
      expect(received).toEqual([{ kind: "verdict", callSid: "CA1", answeredBy: "human" }]);
    });
  });
}

for (const engine of [local, workers, redis]) {
  describe.skipIf(!engine.ready)(`coordination across instances, ${engine.name}`, () => {
    test("a token issued by one instance is redeemed on another, once, however many try at once", async () => {
      const clock = new ManualClock();
      const a = await engine.open("instance_a", clock);
      const others = await Promise.all(
        ["b", "c", "d"].map((id) => engine.open(`instance_${id}`, clock)),
      );
      const token = await a.issueToken("CA1", grant, { answered: true }, NO_LIMIT);
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, index) =>
          (others[index % 3] as Coordination).redeemToken("CA1", token),
        ),
      );
      expect(results.filter((result) => result !== undefined)).toEqual([{ grant, held: true }]);
    });

    test("the limit holds across instances under a burst", async () => {
      const clock = new ManualClock();
      const instances = await Promise.all(
        ["a", "b", "c"].map((id) => engine.open(`instance_${id}`, clock)),
      );
      const issued = await Promise.all(
        Array.from({ length: 30 }, (_, index) =>
          (instances[index % 3] as Coordination).issueToken(
            `CA${index}`,
            grant,
            { answered: true },
            5,
          ),
        ),
      );
      expect(issued.filter(Boolean)).toHaveLength(5);
      expect(await (instances[1] as Coordination).load()).toBe(5);
    });

    test("a token redeemed for a call another instance holds does not take it over", async () => {
      const clock = new ManualClock();
      const a = await engine.open("instance_a", clock);
      const b = await engine.open("instance_b", clock);
      await a.holdCall("CA1");
      const token = await b.issueToken("CA1", grant, { answered: true }, NO_LIMIT);
      expect(await b.redeemToken("CA1", token)).toEqual({ grant, held: false });
      expect(await b.holder("CA1")).toBe("instance_a");
    });

    test("each instance sees who holds a call; a second instance cannot take it", async () => {
      const clock = new ManualClock();
      const a = await engine.open("instance_a", clock);
      const b = await engine.open("instance_b", clock);
      expect(await a.holdCall("CA1")).toBe(true);
      expect(await b.holdCall("CA1")).toBe(false);
      expect(await b.holder("CA1")).toBe("instance_a");
      await b.releaseCall("CA1"); // not b's to release
      expect(await b.holder("CA1")).toBe("instance_a");
    });

    test("a verdict sent from one instance reaches the holder's handler within milliseconds", async () => {
      const clock = new ManualClock();
      const a = await engine.open("instance_a", clock);
      const b = await engine.open("instance_b", clock);
      const delays: number[] = [];
      let sentAt = 0;
      let arrived: () => void = () => {};
      a.onMessage((message) => {
        expect(message).toMatchObject({ kind: "verdict", callSid: "CA1" });
        delays.push(performance.now() - sentAt);
        arrived();
      });
      for (let round = 0; round < 20; round++) {
        const delivered = new Promise<void>((resolve) => {
          arrived = resolve;
        });
        sentAt = performance.now();
        await b.send("instance_a", { kind: "verdict", callSid: "CA1", answeredBy: "human" });
        await delivered;
      }
      expect(delays).toHaveLength(20);
      expect(Math.max(...delays)).toBeLessThan(1_000);
    });
  });
}

describe.skipIf(!redisReady)("coordination across processes, Redis", () => {
  test("the slots of an instance that died stop counting, and its holds are released", async () => {
    const clock = new ManualClock();
    const a = await redis.open("instance_a", clock);
    const dying = await redis.open("instance_dying", clock);
    await dying.holdCall("CA1");
    await dying.holdCall("CA2");
    expect(await a.load()).toBe(2);
    // As after kill -9: its alive key is gone (expired), nothing else was cleaned up.
    const { RedisClient } = await import("bun");
    const raw = new RedisClient(TEST_REDIS_URL);
    await raw.del(`${prefix?.prefix}alive:instance_dying`);
    raw.close();
    expect(await a.load()).toBe(0);
    expect(await a.holder("CA1")).toBeUndefined();
    expect(await a.holdCall("CA1")).toBe(true);
    await a.releaseInstance("instance_dying");
    expect(await a.holder("CA1")).toBe("instance_a");
  });

  test("an instance still beating in Redis keeps its calls, whatever the database thinks of it", async () => {
    const clock = new ManualClock();
    const a = await redis.open("instance_a", clock);
    const b = await redis.open("instance_b", clock);
    await a.holdCall("CA1");
    await b.releaseInstance("instance_a");
    expect(await b.holder("CA1")).toBe("instance_a");
    expect(await b.load()).toBe(1);
  });

  test("after Redis forgets its scripts (a restart, SCRIPT FLUSH) they are loaded again", async () => {
    const clock = new ManualClock();
    const a = await redis.open("instance_a", clock);
    const token = await a.issueToken("CA1", grant, { answered: true }, NO_LIMIT);
    const { RedisClient } = await import("bun");
    const raw = new RedisClient(TEST_REDIS_URL);
    await raw.send("SCRIPT", ["FLUSH"]);
    raw.close();
    expect(await a.redeemToken("CA1", token)).toEqual({ grant, held: true });
    expect(await a.holdCall("CA1")).toBe(false);
  });

  test("a call that ended while Redis was unreachable is released with the next beat", async () => {
    const clock = new ManualClock();
    prefix ??= freshPrefix();
    const { RedisClient } = await import("bun");
    const client = new RedisClient(TEST_REDIS_URL);
    let unreachable = false;
    const flaky = new Proxy(client, {
      get(target, property) {
        const value = Reflect.get(target, property);
        if (property === "send")
          return (command: string, args: string[]) =>
            unreachable
              ? Promise.reject(new Error("Connection closed"))
              : target.send(command, args);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const a = new RedisCoordination(flaky, await client.duplicate(), "instance_a", clock, {
      prefix: prefix.prefix,
      heartbeatMs: 1_000,
    });
    await a.start();
    opened.push(a);
    await a.holdCall("CA1");
    unreachable = true;
    await expect(a.releaseCall("CA1")).rejects.toThrow("Connection closed");
    unreachable = false;
    expect(await a.holder("CA1")).toBe("instance_a");
    clock.advance(1_000);
    await eventually(async () => (await a.holder("CA1")) === undefined, "released by the beat");
  });
});

describe("a worker whose supervisor is gone", () => {
  test("fails its coordination at once when the channel is closed, or when no answer comes", async () => {
    const orphan = new IpcCoordination("instance_w", () => false);
    await expect(orphan.load()).rejects.toThrow("the supervisor is gone");
    const unanswered = new IpcCoordination("instance_w", () => true, 20);
    await expect(unanswered.holdCall("CA1")).rejects.toThrow("the supervisor did not answer");
  });
});
