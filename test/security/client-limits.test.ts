/**
 * Security issue points 4 and 14: streams that never start are closed and capped per client and in
 * total; wrong secrets are throttled per client. The client is the peer, or the first untrusted
 * X-Forwarded-For hop when the peer is a trusted proxy.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { clientAddress } from "../../src/routes/client-address.ts";
import { ManualClock } from "../fakes/clock.ts";
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

  test("are capped per client address; others still get in, and a started stream frees its place", async () => {
    running = await startSignedService({
      MAX_PENDING_STREAMS_PER_CLIENT: "3",
      TRUSTED_PROXIES: "127.0.0.1",
    });
    const url = streamUrl(running);
    const from = (client: string) => ({ "x-forwarded-for": client });
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await idleStream(url, from("203.0.113.7")));
    expect(held.every((stream) => stream.opened)).toBe(true);
    expect((await idleStream(url, from("203.0.113.7"))).opened).toBe(false);
    expect((await idleStream(url, from("198.51.100.1"))).opened).toBe(true);

    held[0]?.socket.close();
    await held[0]?.closed;
    // The server notices the close a moment after the client does.
    let reopened = false;
    for (let tries = 0; tries < 200 && !reopened; tries++) {
      reopened = (await idleStream(url, from("203.0.113.7"))).opened;
      if (!reopened) await Bun.sleep(1);
    }
    expect(reopened).toBe(true);
  });

  test("X-Forwarded-For from a peer that is not a trusted proxy is ignored", async () => {
    running = await startSignedService({ MAX_PENDING_STREAMS_PER_CLIENT: "2" });
    const url = streamUrl(running);
    await idleStream(url, { "x-forwarded-for": "203.0.113.1" });
    await idleStream(url, { "x-forwarded-for": "203.0.113.2" });
    expect((await idleStream(url, { "x-forwarded-for": "203.0.113.3" })).opened).toBe(false);
  });

  test("are capped in total", async () => {
    running = await startSignedService({
      MAX_PENDING_STREAMS: "2",
      TRUSTED_PROXIES: "127.0.0.1",
    });
    const url = streamUrl(running);
    await idleStream(url, { "x-forwarded-for": "203.0.113.1" });
    await idleStream(url, { "x-forwarded-for": "203.0.113.2" });
    expect((await idleStream(url, { "x-forwarded-for": "203.0.113.3" })).opened).toBe(false);
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

  test("a secret shorter than 32 characters is accepted with a warning at start-up", async () => {
    running = await startSignedService({ ENDPOINT_SECRET: "sixteen-chars-ok" });
    expect(
      running.logs.find((line) => String(line.msg).startsWith("ENDPOINT_SECRET is shorter")),
    ).toMatchObject({ level: "warn" });
  });
});
