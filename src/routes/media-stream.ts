/**
 * `WS /twilio`: the Twilio Media Streams endpoint. Per connection (keyed by Elysia's `ws.id`, never by
 * the wrapper object, which is new on every event) it waits for `start`, asks the bridge for a call
 * session, then hands every decoded frame to that session. A refused stream is closed before any
 * agent connection is opened.
 */
import { Elysia } from "elysia";
import { streamSignatureValid } from "../adapters/twilio-webhooks.ts";
import type { CallBridge } from "../call/bridge.ts";
import type { CallSession, PhoneChannel } from "../call/session.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { decodeTwilio } from "../protocol/twilio-media.ts";

/** Close code for a refused stream (policy violation). */
const REFUSED = 1008;
/** Close code when setting the call up failed on our side. */
const INTERNAL_ERROR = 1011;

interface Connection {
  phone: PhoneChannel;
  /** Why this stream may not be bridged whatever its start says (e.g. a bad upgrade signature). */
  refusal?: string;
  session?: CallSession;
  refused?: boolean;
  ignoredBeforeStart: number;
}

export function mediaStreamRoutes(bridge: CallBridge, config: Config, logger: Logger) {
  const connections = new Map<string, Connection>();

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
    open(ws) {
      const raw = ws.raw;
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
      connection?.session?.phoneClosed();
    },
  });
}
