/**
 * Security issue points 4 and 14: streams that never start are closed and capped per client and in
 * total; wrong secrets are throttled per client. The client is the peer, or the first untrusted
 * X-Forwarded-For hop when the peer is a trusted proxy.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { clientAddress, limitKey } from "../../src/routes/client-address.ts";
import { ManualClock } from "../fakes/clock.ts";
import { openStream } from "../fakes/twilio-webhooks.ts";
import { json } from "../helpers/http.ts";
import { SECRET, type SignedService, startSignedService } from "../helpers/signed-service.ts";

let running: SignedService | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

/** A WebSocket to /twilio that says `connected` and then nothing. */
async function idleStream(url: string, headers: Record<string, string> = {}) {
  const socket = new WebSocket(url, { headers } as unknown as string[]);
  const closed = Promise.withResolvers<{ code: number; at: number }>();
  socket.addEventListener("close", (event) =>
    closed.resolve({ code: event.code, at: performance.now() }),
  );
  const opened = await new Promise<boolean>((resolve) => {
    socket.addEventListener("open", () => resolve(true));
    socket.addEventListener("error", () => resolve(false));
  });
  if (opened)
    socket.send(JSON.stringify({ event: "connected", protocol: "Call", version: "1.0.0" }));
  return { socket, opened, closed: closed.promise };
}

const streamUrl = (service: SignedService) => `${service.service.url.replace("http", "ws")}/twilio`;

describe("4. streams that never start", () => {
  test("are closed once STREAM_START_TIMEOUT_MS has passed", async () => {
    running = await startSignedService({ STREAM_START_TIMEOUT_MS: "150" });
    const opened = performance.now();
    const idle = await idleStream(streamUrl(running));
    expect(idle.opened).toBe(true);
    const closed = await idle.closed;
    expect(closed.code).toBe(1008);
    expect(closed.at - opened).toBeGreaterThanOrEqual(140);
  });

  test("are capped per client address: the client's oldest is closed to make room, others untouched", async () => {
    running = await startSignedService({
      MAX_PENDING_STREAMS_PER_CLIENT: "3",
      TRUSTED_PROXIES: "127.0.0.1",
    });
    const url = streamUrl(running);
    const from = (client: string) => ({ "x-forwarded-for": client });
    const other = await idleStream(url, from("198.51.100.1"));
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await idleStream(url, from("203.0.113.7")));
    const newest = await idleStream(url, from("203.0.113.7"));
    expect(newest.opened).toBe(true);
    expect((await held[0]?.closed)?.code).toBe(1013);
    const stillOpen = [other, held[1], held[2], newest].map((stream) => stream?.socket.readyState);
    expect(stillOpen).toEqual(Array(4).fill(WebSocket.OPEN));
  });

  test("X-Forwarded-For from a peer that is not a trusted proxy is ignored", async () => {
    running = await startSignedService({ MAX_PENDING_STREAMS_PER_CLIENT: "2" });
    const url = streamUrl(running);
    const first = await idleStream(url, { "x-forwarded-for": "203.0.113.1" });
    await idleStream(url, { "x-forwarded-for": "203.0.113.2" });
    await idleStream(url, { "x-forwarded-for": "203.0.113.3" });
    expect((await first.closed).code).toBe(1013);
  });

  test("are capped in total: the oldest of all is closed to make room", async () => {
    running = await startSignedService({ MAX_PENDING_STREAMS: "2", TRUSTED_PROXIES: "127.0.0.1" });
    const url = streamUrl(running);
    const first = await idleStream(url, { "x-forwarded-for": "203.0.113.1" });
    const second = await idleStream(url, { "x-forwarded-for": "203.0.113.2" });
    await idleStream(url, { "x-forwarded-for": "203.0.113.3" });
    expect((await first.closed).code).toBe(1013);
    expect(second.socket.readyState).toBe(WebSocket.OPEN);
  });

  test("a flood of idle streams does not keep a real call out", async () => {
    running = await startSignedService({
      MAX_PENDING_STREAMS: "5",
      MAX_PENDING_STREAMS_PER_CLIENT: "5",
    });
    const url = streamUrl(running);
    for (let i = 0; i < 12; i++) await idleStream(url);
    const xml = await (await running.incoming("CA4000")).text();
    const phone = await openStream(xml, "CA4000");
    const session = await running.agent.nextSession();
    expect(session.settings).toMatchObject({ tags: ["inbound", "dental-receptionist"] });
    phone.hangUp();
  });

  test("may send only a few small messages before their start", async () => {
    running = await startSignedService();
    const url = streamUrl(running);
    const big = await idleStream(url);
    big.socket.send(JSON.stringify({ event: "media", media: { payload: "A".repeat(9_000) } }));
    expect((await big.closed).code).toBe(1008);
    const chatty = await idleStream(url);
    for (let i = 0; i < 20; i++) chatty.socket.send(JSON.stringify({ event: "mark" }));
    expect((await chatty.closed).code).toBe(1008);
    expect(running.service.bridge.refusedStreams).toBe(0);
  });

  test("with stream signatures on, an unsigned upgrade is refused before it is counted", async () => {
    running = await startSignedService({
      TWILIO_VALIDATE_STREAM_SIGNATURES: "true",
      MAX_PENDING_STREAMS: "1",
    });
    for (let i = 0; i < 5; i++) expect((await idleStream(streamUrl(running))).opened).toBe(false);
    expect(running.service.bridge.refusedStreams).toBe(5);
  });
});

describe("the client address", () => {
  const trusted = new Set(["127.0.0.1", "10.0.0.5"]);
  test("is the peer unless the peer is a trusted proxy", () => {
    expect(clientAddress("203.0.113.9", "198.51.100.1", trusted)).toBe("203.0.113.9");
    expect(clientAddress("127.0.0.1", null, trusted)).toBe("127.0.0.1");
  });
  test("behind trusted proxies: the first untrusted hop from the right", () => {
    expect(clientAddress("127.0.0.1", "198.51.100.1", trusted)).toBe("198.51.100.1");
    expect(clientAddress("::ffff:127.0.0.1", "1.1.1.1, 198.51.100.1, 10.0.0.5", trusted)).toBe(
      "198.51.100.1",
    );
  });
  test("for limits, an IPv6 client is its /64", () => {
    expect(limitKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(limitKey("2001:0db8:0001:0002:ffff:0:0:1")).toBe("2001:db8:1:2::/64");
    expect(limitKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(limitKey("203.0.113.9")).toBe("203.0.113.9");
  });
  test("a spoofed left-most hop does not help", () => {
    expect(clientAddress("127.0.0.1", "6.6.6.6, 198.51.100.1", trusted)).toBe("198.51.100.1");
  });
});

describe("14. wrong secrets", () => {
  const attempt = (secret: string, client = "203.0.113.50") =>
    fetch(`${running?.service.url}/calls`, {
      headers: { authorization: `Bearer ${secret}`, "x-forwarded-for": client },
    });

  test("ten a minute per client, then 429 with Retry-After, even for the right one; others unaffected", async () => {
    const clock = new ManualClock(new Date().toISOString());
    running = await startSignedService({ TRUSTED_PROXIES: "127.0.0.1" }, { clock });
    for (let i = 0; i < 10; i++) expect((await attempt(`wrong-${i}`)).status).toBe(401);
    const refused = await attempt("wrong-again");
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await json(refused)).code).toBe("TOO_MANY_FAILED_ATTEMPTS");
    expect((await attempt(SECRET)).status).toBe(429);
    expect((await attempt(SECRET, "198.51.100.7")).status).toBe(200);
    clock.advance(60_000);
    expect((await attempt(SECRET)).status).toBe(200);
  });

  test("rotating addresses inside one IPv6 /64 does not reset the count", async () => {
    running = await startSignedService({ TRUSTED_PROXIES: "127.0.0.1" });
    for (let i = 0; i < 10; i++) await attempt("wrong", `2001:db8:1:2::${(i + 1).toString(16)}`);
    expect((await attempt("wrong", "2001:db8:1:2:ffff::99")).status).toBe(429);
    expect((await attempt(SECRET, "2001:db8:1:3::1")).status).toBe(200);
  });

  test("behind a local proxy that is not trusted, a warning says to set TRUSTED_PROXIES", async () => {
    running = await startSignedService();
    await attempt(SECRET);
    await attempt(SECRET);
    const warnings = running.logs.filter((line) => String(line.msg).includes("TRUSTED_PROXIES"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: "warn" });
  });

  test("a secret shorter than 32 characters is accepted with a warning at start-up", async () => {
    running = await startSignedService({ ENDPOINT_SECRET: "sixteen-chars-ok" });
    expect(
      running.logs.find((line) => String(line.msg).startsWith("ENDPOINT_SECRET is shorter")),
    ).toMatchObject({ level: "warn" });
  });
});
