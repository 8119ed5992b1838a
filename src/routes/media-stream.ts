/**
 * `WS /twilio`: the Twilio Media Streams endpoint. Per connection (keyed by Elysia's `ws.id`, never by
 * the wrapper object, which is new on every event) it waits for `start`, asks the bridge for a call
 * session, then hands every decoded frame to that session. A refused stream is closed before any
 * agent connection is opened. Until its `start`, a stream is unauthenticated: it must send it within
 * STREAM_START_TIMEOUT_MS, and only so many such streams may be open at once, per client address
 * and in total, so idle sockets cannot use up the process's file descriptors.
 */
import { Elysia } from "elysia";
import { streamSignatureValid } from "../adapters/twilio-webhooks.ts";
import type { CallBridge } from "../call/bridge.ts";
import type { CallSession, PhoneChannel } from "../call/session.ts";
import type { Clock, Timer } from "../clock.ts";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { decodeTwilio } from "../protocol/twilio-media.ts";
import type { ClientAddresses } from "./client-address.ts";

/** Close code for a refused stream (policy violation). */
const REFUSED = 1008;
/** Close code when setting the call up failed on our side. */
const INTERNAL_ERROR = 1011;
/** Close code for "try again later": too many streams waiting for their start. */
const TRY_AGAIN_LATER = 1013;

export class TooManyPendingStreamsError extends AppError {
  constructor() {
    super(429, "TOO_MANY_PENDING_STREAMS", "Too many media streams are waiting to start");
  }
}

/** Counts streams that have not started yet, per client address and in total. */
class PendingStreams {
  #total = 0;
  readonly #byClient = new Map<string, number>();

  constructor(private readonly limits: { maxPending: number; maxPendingPerClient: number }) {}

  full(client: string): boolean {
    return (
      this.#total >= this.limits.maxPending ||
      (this.#byClient.get(client) ?? 0) >= this.limits.maxPendingPerClient
    );
  }

  /** @returns false (and counts nothing) when the client or the process has no room left */
  add(client: string): boolean {
    if (this.full(client)) return false;
    this.#total += 1;
    this.#byClient.set(client, (this.#byClient.get(client) ?? 0) + 1);
    return true;
  }

  remove(client: string): void {
    this.#total -= 1;
    const left = (this.#byClient.get(client) ?? 1) - 1;
    if (left > 0) this.#byClient.set(client, left);
    else this.#byClient.delete(client);
  }
}

export interface MediaStreamDeps {
  bridge: CallBridge;
  config: Config;
  clients: ClientAddresses;
  clock: Clock;
  logger: Logger;
}

interface Connection {
  phone: PhoneChannel;
  /** Set while the stream has not started: its client address and its start deadline. */
  pending?: { client: string; deadline: Timer };
  /** Why this stream may not be bridged whatever its start says (e.g. a bad upgrade signature). */
  refusal?: string;
  session?: CallSession;
  refused?: boolean;
  ignoredBeforeStart: number;
}

export function mediaStreamRoutes({ bridge, config, clients, clock, logger }: MediaStreamDeps) {
  const connections = new Map<string, Connection>();
  const pendingStreams = new PendingStreams(config.streams);

  /** The stream has started (or is gone): it no longer counts as pending. */
  const settle = (connection: Connection) => {
    if (!connection.pending) return;
    connection.pending.deadline.cancel();
    pendingStreams.remove(connection.pending.client);
    connection.pending = undefined;
  };

  const receive = (
    connection: Connection,
    message: unknown,
    close: (code: number, reason: string) => void,
  ) => {
    if (connection.refused) return;
    const decoded = decodeTwilio(message);
    if (connection.session) {
      connection.session.handlePhone(decoded);
      return;
    }
    if (decoded.event === "start") {
      settle(connection);
      const opened = connection.refusal
        ? bridge.refuse(decoded.start, connection.refusal)
        : bridge.open(decoded.start, connection.phone);
      if (opened.ok) connection.session = opened.session;
      else {
        connection.refused = true;
        close(opened.internal ? INTERNAL_ERROR : REFUSED, opened.reason.slice(0, 120));
      }
    } else if (decoded.event === "ignored" && connection.ignoredBeforeStart++ === 0) {
      logger.warn("ignored message before stream start", { reason: decoded.reason });
    }
  };

  return new Elysia({ name: "media-stream" }).ws("/twilio", {
    detail: { hide: true },
    beforeHandle({ request, server }) {
      // Refused before the upgrade when already full; counted exactly in `open`.
      const client = clients.of(request, server?.requestIP(request)?.address);
      if (pendingStreams.full(client)) throw new TooManyPendingStreamsError();
    },
    open(ws) {
      const raw = ws.raw;
      const client = clients.of(ws.data.request, raw.remoteAddress);
      if (!pendingStreams.add(client)) {
        raw.close(TRY_AGAIN_LATER, "too many streams waiting to start");
        return;
      }
      const connection: Connection = {
        phone: {
          send: (text, then) => {
            if (then === undefined) raw.sendText(text);
            // Corked: both frames leave in one write.
            else
              raw.cork(() => {
                raw.sendText(text);
                raw.sendText(then);
              });
          },
          close: () => raw.close(1000, "call ended"),
        },
        ignoredBeforeStart: 0,
        pending: {
          client,
          deadline: clock.setTimeout(() => {
            logger.warn("media stream sent no start in time", {
              timeoutMs: config.streams.startTimeoutMs,
            });
            raw.close(REFUSED, "no start");
          }, config.streams.startTimeoutMs),
        },
      };
      if (config.twilio.validateStreamSignatures) {
        const signature = ws.data.request.headers.get("x-twilio-signature");
        if (!streamSignatureValid(config, signature))
          connection.refusal = "missing or wrong X-Twilio-Signature on the upgrade";
      }
      connections.set(ws.id, connection);
      // Hot path: Elysia dispatches each frame through `raw.data.message`, which wraps, parses and
      // awaits per message. Fifty frames a second per call go straight to the codec instead. If a
      // future Elysia dispatches differently, the `message` handler below still serves.
      const data = raw.data as { message?: unknown };
      if (typeof data.message === "function") {
        const close = (code: number, reason: string) => raw.close(code, reason);
        data.message = (_socket: unknown, message: string | Buffer) =>
          receive(connection, message, close);
      }
    },
    message(ws, message) {
      const connection = connections.get(ws.id);
      if (connection) receive(connection, message, (code, reason) => ws.raw.close(code, reason));
    },
    close(ws) {
      const connection = connections.get(ws.id);
      connections.delete(ws.id);
      if (!connection) return;
      settle(connection);
      connection.session?.phoneClosed();
    },
  });
}
