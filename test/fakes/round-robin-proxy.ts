/**
 * A load balancer for fleet tests, on loopback: HTTP requests and WebSocket upgrades go to the
 * backends in turn, so a call's webhooks, its API requests and its media stream land on different
 * instances. Like nginx with `proxy_next_upstream error http_503 non_idempotent`, a backend that
 * refuses the connection or answers 503 is skipped for the next one; a backend can be taken out
 * and put back (a rolling restart). WebSocket frames are relayed both ways unchanged.
 */
import type { ServerWebSocket } from "bun";

interface Relay {
  backend: WebSocket;
  /** Frames from the client before the backend socket opened. */
  queued: (string | Buffer)[];
}

export class RoundRobinProxy {
  #next = 0;
  readonly #server: ReturnType<typeof Bun.serve<Relay>>;
  /** Paths (by prefix) sent to a chosen backend first instead of the next in turn. */
  readonly prefer = new Map<string, number>();
  /** Where each request or upgrade went, by backend index: [path, backend]. */
  readonly routed: { path: string; backend: number; upgrade: boolean }[] = [];

  private constructor(
    readonly backends: (string | undefined)[],
    port: number,
  ) {
    this.#server = Bun.serve<Relay>({
      hostname: "127.0.0.1",
      port,
      fetch: (request, server) => this.#handle(request, server),
      websocket: {
        open: (client) => RoundRobinProxy.pipe(client),
        message: (client, message) => {
          const relay = client.data;
          if (relay.backend.readyState === WebSocket.OPEN) relay.backend.send(message);
          else relay.queued.push(message);
        },
        close: (client) => client.data.backend.close(),
      },
    });
  }

  /** `backends`: base http URLs; `port`: the address the services name as their public one. */
  static start(backends: string[], port = 0): RoundRobinProxy {
    return new RoundRobinProxy([...backends], port);
  }

  get url(): string {
    return `http://127.0.0.1:${this.#server.port}`;
  }

  /** Takes a backend out of the rotation (undefined) or puts one in at `index`. */
  set(index: number, backend: string | undefined): void {
    this.backends[index] = backend;
  }

  stop(): void {
    this.#server.stop(true);
  }

  /** The backends to try for one request, starting with the preferred one or the next in turn. */
  #order(path: string): { backend: string; index: number }[] {
    const preferred = [...this.prefer].find(([prefix]) => path.startsWith(prefix))?.[1];
    const first = preferred ?? this.#next;
    const order: { backend: string; index: number }[] = [];
    for (let step = 0; step < this.backends.length; step++) {
      const index = (first + step) % this.backends.length;
      const backend = this.backends[index];
      if (backend) order.push({ backend, index });
    }
    this.#next = (this.#next + 1) % this.backends.length;
    return order;
  }

  async #handle(request: Request, server: Bun.Server<Relay>): Promise<Response | undefined> {
    const url = new URL(request.url);
    const path = `${url.pathname}${url.search}`;
    const upgrade = request.headers.get("upgrade")?.toLowerCase() === "websocket";
    const body = upgrade || request.method === "GET" ? undefined : await request.arrayBuffer();
    for (const { backend, index } of this.#order(path)) {
      if (upgrade) {
        const opened = await this.#openBackend(backend, path, request.headers);
        if (!opened) continue;
        this.routed.push({ path, backend: index, upgrade });
        const relay: Relay = { backend: opened, queued: [] };
        if (!server.upgrade(request, { data: relay })) {
          opened.close();
          return new Response("expected a websocket", { status: 400 });
        }
        return undefined;
      }
      let response: Response;
      try {
        response = await fetch(`${backend}${path}`, {
          method: request.method,
          headers: request.headers,
          body,
          redirect: "manual",
        });
      } catch {
        continue; // refused: the next backend
      }
      if (response.status === 503) continue;
      this.routed.push({ path, backend: index, upgrade });
      return response;
    }
    return new Response("no backend available", { status: 502 });
  }

  /** A socket to the backend, or undefined when it refuses (then the next one is tried). */
  #openBackend(backend: string, path: string, headers: Headers): Promise<WebSocket | undefined> {
    const forwarded: Record<string, string> = {};
    const signature = headers.get("x-twilio-signature");
    if (signature) forwarded["x-twilio-signature"] = signature;
    const socket = new WebSocket(`${backend.replace(/^http/, "ws")}${path}`, {
      headers: forwarded,
    });
    socket.binaryType = "nodebuffer";
    return new Promise((resolve) => {
      socket.onopen = () => resolve(socket);
      socket.onerror = () => resolve(undefined);
      socket.onclose = () => resolve(undefined);
    });
  }

  /** Joins an accepted client to its backend socket once the upgrade completed. */
  static pipe(client: ServerWebSocket<Relay>): void {
    const { backend, queued } = client.data;
    backend.onmessage = (event) => client.send(event.data as string | Buffer);
    backend.onclose = (event) => client.close(event.code, event.reason);
    for (const message of queued.splice(0)) backend.send(message);
  }
}
