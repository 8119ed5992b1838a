/**
 * A client controls its Host header. Bun accepts values (`a"b`) that leave `request.url`
 * unparsable: such a request gets an answer and a log line like any other, and it breaks nothing
 * for the requests after it. What the docs publish never carries credentials from configuration.
 */
import { afterEach, expect, test } from "bun:test";
import { json } from "../helpers/http.ts";
import { type SignedService, startSignedService } from "../helpers/signed-service.ts";

let running: SignedService | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

/** `method path` with a Host header fetch would not send; resolves with the status line's code. */
async function requestWithHost(
  port: number,
  method: string,
  path: string,
  host: string,
): Promise<number> {
  const answer = Promise.withResolvers<number>();
  let received = "";
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_socket, chunk) {
        received += chunk.toString();
        const status = /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1];
        if (status) answer.resolve(Number(status));
      },
      close() {
        answer.reject(new Error(`closed without a status line: ${received.slice(0, 80)}`));
      },
    },
  });
  const body = method === "POST" ? "CallSid=CA1" : "";
  const form =
    method === "POST"
      ? `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nX-Twilio-Signature: forged\r\n`
      : "";
  socket.write(
    `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${form}Connection: close\r\n\r\n${body}`,
  );
  try {
    return await answer.promise;
  } finally {
    socket.end();
  }
}

test("a Host header that breaks the URL gets an answer (never a 500), breaks nothing for later requests and is logged", async () => {
  running = await startSignedService();
  const { port } = new URL(running.service.url);
  for (const path of ["/docs", "/docs/json", "/calls", "/nowhere"])
    expect(await requestWithHost(Number(port), "GET", path, 'a"b')).toBeLessThan(500);
  // Twilio's webhooks check the signature over the URL: refused as unsigned, not a 500.
  for (const path of ["/incoming-call", "/call-status", "/amd-result", "/stream-status"])
    expect(await requestWithHost(Number(port), "POST", path, 'a"b')).toBe(403);
  expect((await fetch(`${running.service.url}/docs`)).status).toBe(200);
  expect((await fetch(`${running.service.url}/docs/json`)).status).toBe(200);
  expect(running.logs.filter((line) => line.level === "error")).toEqual([]);
  expect(
    running.logs.filter((line) => line.msg === "http" && line.path === "/calls").length,
  ).toBeGreaterThan(0);
});

test("the OpenAPI servers never show credentials written into SERVER_EXTERNAL_URL", async () => {
  running = await startSignedService({
    SERVER_EXTERNAL_URL: "https://twilio:hunter2@127.0.0.1/va",
  });
  const document = await json(await fetch(`${running.service.url}/docs/json`));
  expect(document.servers).toEqual([
    { url: "https://127.0.0.1/va", description: "SERVER_EXTERNAL_URL" },
  ]);
  expect(JSON.stringify(document)).not.toContain("hunter2");
});
