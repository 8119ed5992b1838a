/**
 * A Redis restart under a running fleet: a Redis server of the test's own (its port, no disk) is
 * killed and started again; the instances' coordination works again by itself, and messages for an
 * instance's calls reach it again (its channel subscribed anew). Skipped where there is no
 * `redis-server` to start.
 */
import { afterEach, test } from "bun:test";
import type { Subprocess } from "bun";
import { systemClock } from "../../src/clock.ts";
import {
  openRedisCoordination,
  type RedisCoordination,
} from "../../src/fleet/redis-coordination.ts";
import { freePort } from "../fakes/twilio-webhooks.ts";
import { eventually } from "../helpers/eventually.ts";

const redisServer = Bun.which("redis-server");
if (!redisServer) console.warn("skipping the Redis restart test: no redis-server on PATH");

let server: Subprocess | undefined;
const opened: RedisCoordination[] = [];
afterEach(async () => {
  for (const coordination of opened.splice(0)) await coordination.close().catch(() => {});
  server?.kill("SIGKILL");
  await server?.exited;
});

/** A Redis server on `port`, answering. */
async function startRedis(port: number): Promise<Subprocess> {
  const child = Bun.spawn(
    [
      redisServer as string,
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
    ],
    { stdout: "ignore", stderr: "ignore" },
  );
  const probe = async () => {
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: { data() {}, error() {} },
    }).catch(() => undefined);
    socket?.end();
    return socket !== undefined;
  };
  await eventually(probe, "the test's Redis listening", 5_000);
  return child;
}

test.skipIf(!redisServer)(
  "after Redis restarts, tokens and verdicts work again",
  async () => {
    const port = freePort();
    const url = `redis://127.0.0.1:${port}`;
    server = await startRedis(port);
    const options = { prefix: "outage:", heartbeatMs: 100, aliveMs: 2_000 };
    const a = await openRedisCoordination(url, "instance_a", systemClock, options);
    const b = await openRedisCoordination(url, "instance_b", systemClock, options);
    opened.push(a, b);
    const received: string[] = [];
    a.onMessage((message) => received.push(message.callSid));
    await b.send("instance_a", { kind: "verdict", callSid: "CA-before", answeredBy: "human" });
    await eventually(() => received.includes("CA-before"), "a verdict before the restart");

    server.kill("SIGKILL");
    await server.exited;
    // What /health reports: this instance cannot reach Redis (a balancer sends calls elsewhere).
    await eventually(() => !a.reachable, "the outage noticed by a beat", 5_000);
    server = await startRedis(port);
    await eventually(() => a.reachable, "Redis reachable again", 10_000);

    const grant = { scenario: "s", direction: "inbound" as const, from: "+1", to: "+2" };
    await eventually(
      async () =>
        (await b.issueToken("CA-after", grant, { answered: true }, 10).catch(() => undefined)) !==
        undefined,
      "a token issued again",
      10_000,
    );
    await eventually(
      async () => {
        await b
          .send("instance_a", { kind: "verdict", callSid: "CA-after", answeredBy: "human" })
          .catch(() => {});
        return received.includes("CA-after");
      },
      "a verdict after the restart",
      10_000,
    );
  },
  30_000,
);
