#!/usr/bin/env bun
/**
 * What coordinating a fleet through Redis costs a call, measured against Redis itself: two
 * instances' `RedisCoordination`s on one Redis (a fresh key prefix, deleted afterwards), and
 * - a call's coordination from start to end (token issued with the limit check, redeemed with the
 *   call held, released), one call at a time and `--concurrency` at once;
 * - a verdict sent by one instance to the instance holding the call (publish → handler);
 * - the reference: a bare `PING` round trip on a third connection, in the same run.
 * Prints p50 / p99 / max in milliseconds and each figure's ratio to the reference. Results go in
 * docs/PERFORMANCE.md.
 *
 *   bun run scripts/bench-coordination.ts [--redis redis://127.0.0.1:6379] [--calls 2000] [--concurrency 50]
 */
import { parseArgs } from "node:util";
import { RedisClient } from "bun";
import { systemClock } from "../src/clock.ts";
import { openRedisCoordination } from "../src/fleet/redis-coordination.ts";

const { values } = parseArgs({
  options: {
    redis: { type: "string", default: process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379" },
    calls: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "50" },
  },
});
const calls = Number(values.calls);
const concurrency = Number(values.concurrency);
if (!Number.isInteger(calls) || calls < 10) throw new Error("--calls must be an integer ≥ 10");
if (!Number.isInteger(concurrency) || concurrency < 1)
  throw new Error("--concurrency must be a positive integer");

// The tests' helper makes the key prefix and deletes its keys afterwards, on the Redis given here.
process.env.TEST_REDIS_URL = values.redis;
const keys = (await import("../test/helpers/redis.ts")).freshPrefix();
const prefix = keys.prefix;
const options = { prefix, heartbeatMs: 5_000, aliveMs: 60_000 };
const a = await openRedisCoordination(values.redis, "instance_a", systemClock, options);
const b = await openRedisCoordination(values.redis, "instance_b", systemClock, options);
const raw = new RedisClient(values.redis);
const grant = { scenario: "bench", direction: "inbound" as const, from: "+1", to: "+2" };

/** Times `work` `count` times, `parallel` at once. @returns milliseconds, sorted */
async function time(count: number, parallel: number, work: (index: number) => Promise<void>) {
  const durations: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const index = next++;
        const started = performance.now();
        await work(index);
        durations.push(performance.now() - started);
      }
    }),
  );
  return durations.sort((x, y) => x - y);
}

const at = (sorted: number[], share: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1)] ?? 0;

/** A whole call's coordination: token on A (a webhook), redeemed and held on B (the stream), released. */
const aCall = async (index: number) => {
  const sid = `CAbench${index}`;
  const token = await a.issueToken(sid, grant, { answered: true }, 1_000_000);
  if (!(await b.redeemToken(sid, token))?.held) throw new Error("token not redeemed");
  await b.releaseCall(sid);
};

let delivered: (() => void) | undefined;
a.onMessage(() => delivered?.());
/** A verdict from B to A, which holds the call: until A's handler has it. */
const aVerdict = async () => {
  const arrived = new Promise<void>((resolve) => {
    delivered = resolve;
  });
  await b.send("instance_a", { kind: "verdict", callSid: "CA1", answeredBy: "human" });
  await arrived;
};

// Warm up connections and scripts.
await time(50, 1, aCall);
await time(50, 1, aVerdict);
const rows: [string, number[]][] = [
  [
    "PING round trip (reference)",
    await time(calls, 1, async () => void (await raw.send("PING", []))),
  ],
  ["a call's coordination, one at a time", await time(calls, 1, aCall)],
  [`a call's coordination, ${concurrency} at once`, await time(calls, concurrency, aCall)],
  ["a verdict to the holding instance", await time(calls, 1, aVerdict)],
];
const reference = rows[0]?.[1] ?? [];
console.log(`Redis ${values.redis}, ${calls} each\n`);
console.log("figure                                     p50 ms   p99 ms   max ms   p99 / PING p99");
for (const [label, sorted] of rows) {
  const ratio = at(sorted, 0.99) / at(reference, 0.99);
  console.log(
    `${label.padEnd(42)} ${at(sorted, 0.5).toFixed(3).padStart(7)}  ${at(sorted, 0.99).toFixed(3).padStart(7)}  ${(sorted.at(-1) ?? 0).toFixed(3).padStart(7)}   ${ratio.toFixed(1)}×`,
  );
}

await a.close();
await b.close();
await keys.clear();
raw.close();
