/** The test preload keeps every test on loopback: a remote fetch or WebSocket fails, naming the host. */
import { expect, test } from "bun:test";

test("fetch and WebSocket to a remote host fail; loopback works", async () => {
  await expect(fetch("https://api.deepgram.com/v1/projects")).rejects.toThrow(
    "a test tried to reach api.deepgram.com",
  );
  expect(() => new WebSocket("wss://agent.deepgram.com/v1/agent/converse")).toThrow(
    "tests stay on loopback",
  );
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("ok") });
  expect(await (await fetch(`http://127.0.0.1:${server.port}/`)).text()).toBe("ok");
  server.stop(true);
});
