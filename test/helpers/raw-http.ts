/**
 * HTTP/1.1 spoken by hand over a TCP socket, for what fetch cannot do: declare a length and never
 * send it, stream a chunked body until the server answers, count what the server let through.
 */

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Body bytes this client had written when the response arrived. */
  bodyBytesSent: number;
}

export interface RawRequestOptions {
  port: number;
  method?: string;
  path: string;
  headers: Record<string, string>;
  /**
   * `declared`: send the headers only (a Content-Length the body never fills). `chunked`: send
   * `chunkBytes`-sized chunks until the server answers or `maxBytes` are sent.
   */
  body:
    | { kind: "declared"; length: number }
    | { kind: "chunked"; chunkBytes: number; maxBytes: number };
  timeoutMs?: number;
}

/** Sends the request and resolves with the server's answer and how much of the body it took. */
export async function rawRequest(options: RawRequestOptions): Promise<RawResponse> {
  const { port, method = "POST", path, headers, body, timeoutMs = 5_000 } = options;
  const answered = Promise.withResolvers<string>();
  let received = "";
  let sent = 0;
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_socket, data) {
        received += data.toString("latin1");
        if (received.includes("\r\n\r\n")) answered.resolve(received);
      },
      close() {
        answered.resolve(received);
      },
      error(_socket, error) {
        answered.reject(error);
      },
    },
  });
  const lines = [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body.kind === "declared") lines.push(`Content-Length: ${body.length}`);
  else lines.push("Transfer-Encoding: chunked");
  socket.write(`${lines.join("\r\n")}\r\n\r\n`);
  let done = false;
  answered.promise.finally(() => {
    done = true;
  });
  if (body.kind === "chunked") {
    const chunk = `${body.chunkBytes.toString(16)}\r\n${"a".repeat(body.chunkBytes)}\r\n`;
    while (!done && sent < body.maxBytes) {
      if (socket.write(chunk) === 0) await Bun.sleep(1);
      else sent += body.chunkBytes;
      await Bun.sleep(0);
    }
  }
  const timer = setTimeout(() => answered.reject(new Error("no answer in time")), timeoutMs);
  const text = await answered.promise.finally(() => clearTimeout(timer));
  // Let the body of the answer arrive too (it follows the head closely).
  await Bun.sleep(5);
  socket.end();
  const [head = "", ...rest] = (received || text).split("\r\n\r\n");
  const [statusLine = "", ...headerLines] = head.split("\r\n");
  return {
    status: Number(statusLine.split(" ")[1]),
    headers: Object.fromEntries(
      headerLines.map((line) => {
        const colon = line.indexOf(":");
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
      }),
    ),
    body: rest.join("\r\n\r\n"),
    bodyBytesSent: sent,
  };
}
