/**
 * `WS /twilio`: the Twilio Media Streams endpoint. Per connection (keyed by Elysia's `ws.id`, never by
 * the wrapper object, which is new on every event) it waits for `start`, asks the bridge for a call
 * session, then hands every decoded frame to that session. A refused stream is closed before any
 * agent connection is opened. Until its `start`, a stream is unauthenticated: it must send it within
 * STREAM_START_TIMEOUT_MS, in a few small messages, and only so many such streams may be open at
 * once, per client address and in total (the oldest is closed to make room), so idle sockets cannot
 * use up the process's file descriptors nor its event loop, and cannot crowd out Twilio's streams,
 * which send their `start` within milliseconds of opening.
 */
import { Elysia } from "elysia";
import { InvalidSignatureError, streamSignatureValid } from "../adapters/twilio-webhooks.ts";
import type { CallBridge } from "../call/bridge.ts";
import type { CallRegistry } from "../call/registry.ts";
import type { CallSession, PhoneChannel } from "../call/session.ts";
import type { Clock, Timer } from "../clock.ts";
import type { Config } from "../config.ts";
import { ShuttingDownError } from "../errors.ts";
import type { Coordination } from "../fleet/coordination.ts";
import type { Logger } from "../log.ts";
import { decodeTwilio, type TwilioInbound } from "../protocol/twilio-media.ts";
import type { ClientAddresses } from "./client-address.ts";

/** Close code for a refused stream (policy violation). */
const REFUSED = 1008;
/** Close code when setting the call up failed on our side. */
const INTERNAL_ERROR = 1011;
/** Close code for "try again later": too many streams waiting to start. */
const TRY_AGAIN_LATER = 1013;

/** Before its `start` a stream sends `connected` and `start` (under 1 KB each); nothing bigger. */
export const MAX_PRESTART_MESSAGE_BYTES = 8 * 1024;
/** Messages a stream may send before its `start` (Twilio sends one, `connected`). */
export const MAX_PRESTART_MESSAGES = 16;

/** A stream waiting for its `start`, as the pending pool knows it. */
interface PendingStream {
  client: string;
  deadline: Timer;
  /** Closes the socket to make room for a newer stream. */
  evict(): void;
}

/**
 * Streams that have not started yet, per client address and in total. When a limit is reached the
 * oldest such stream (of that client, or of all) is closed to make room: a genuine stream starts
 * within milliseconds, so to crowd it out a flood would have to fill the whole limit in that time.
 */
class PendingStreams {
  /** Insertion order is age order. */
  readonly #all = new Set<PendingStream>();
  readonly #byClient = new Map<string, Set<PendingStream>>();

  constructor(private readonly limits: { maxPending: number; maxPendingPerClient: number }) {}

  add(stream: PendingStream): void {
    const own = this.#byClient.get(stream.client) ?? new Set();
    if (own.size >= this.limits.maxPendingPerClient) this.#evictOldest(own);
    if (this.#all.size >= this.limits.maxPending) this.#evictOldest(this.#all);
    own.add(stream);
    this.#byClient.set(stream.client, own);
    this.#all.add(stream);
  }

  /** @returns false when the stream was no longer pending (already started, evicted or gone) */
  remove(stream: PendingStream): boolean {
    if (!this.#all.delete(stream)) return false;
    stream.deadline.cancel();
    const own = this.#byClient.get(stream.client);
    own?.delete(stream);
    if (own?.size === 0) this.#byClient.delete(stream.client);
    return true;
  }

  #evictOldest(streams: Set<PendingStream>): void {
    const oldest = streams.values().next().value;
    if (oldest && this.remove(oldest)) oldest.evict();
  }
}

export interface MediaStreamDeps {
  bridge: CallBridge;
  calls: CallRegistry;
  coordination: Coordination;
  config: Config;
  clients: ClientAddresses;
  clock: Clock;
  logger: Logger;
}

/**
 * What arrives while the bridge sets the call up (the store answers asynchronously): caller frames
 * (they cannot go to an agent yet, but are counted, and recorded when calls are), then other
 * messages, up to a few, in order.
 */
interface Opening {
  /** The first frames as received; later ones (a set-up slower than a few seconds) only counted. */
  media: TwilioInbound[];
  mediaFrames: number;
  others: TwilioInbound[];
  /** The socket closed meanwhile. */
  closed: boolean;
}

/** Caller frames kept while a call is set up: 5 s (set-up takes milliseconds). */
const MAX_FRAMES_WHILE_OPENING = 250;
/** Messages other than audio a stream sends while its call is set up (`stop`, a keypad press). */
const MAX_MESSAGES_WHILE_OPENING = 16;
/**
 * A caller frame beyond those kept while the call was set up: counted by the session, and 20 ms of
 * silence in a recording, which keeps its time.
 */
const HELD_FRAME: TwilioInbound = { event: "media", audio: Buffer.alloc(160, 0xff) };

interface Connection {
  phone: PhoneChannel;
  /** Set while the stream has not started. */
  pending?: PendingStream;
  /** Set between `start` and the session being ready. */
  opening?: Opening;
  session?: CallSession;
  refused?: boolean;
  messagesBeforeStart: number;
  ignoredBeforeStart: number;
}

/** Bytes in a frame as it arrived (text or binary). */
function frameSize(message: unknown): number {
  if (typeof message === "string") return message.length;
  return message instanceof Uint8Array ? message.byteLength : 0;
}

export function mediaStreamRoutes({
  bridge,
  calls,
  coordination,
  config,
  clients,
  clock,
  logger,
}: MediaStreamDeps) {
  const connections = new Map<string, Connection>();
  const pendingStreams = new PendingStreams(config.streams);

  /** The stream has started (or is gone): it no longer counts as pending. */
  const settle = (connection: Connection) => {
    if (connection.pending) pendingStreams.remove(connection.pending);
    connection.pending = undefined;
  };

  const receive = (
    connection: Connection,
    message: unknown,
    close: (code: number, reason: string) => void,
  ) => {
    if (connection.refused) return;
    if (connection.session) {
      connection.session.handlePhone(decodeTwilio(message));
      return;
    }
    if (connection.opening) {
      const decoded = decodeTwilio(message);
      if (decoded.event === "media") {
        connection.opening.mediaFrames += 1;
        if (connection.opening.media.length < MAX_FRAMES_WHILE_OPENING)
          connection.opening.media.push(decoded);
      } else if (connection.opening.others.length < MAX_MESSAGES_WHILE_OPENING)
        connection.opening.others.push(decoded);
      return;
    }
    if (
      frameSize(message) > MAX_PRESTART_MESSAGE_BYTES ||
      ++connection.messagesBeforeStart > MAX_PRESTART_MESSAGES
    ) {
      connection.refused = true;
      settle(connection);
      close(REFUSED, "too much before start");
      return;
    }
    const decoded = decodeTwilio(message);
    if (decoded.event === "start") {
      settle(connection);
      const opening: Opening = { media: [], mediaFrames: 0, others: [], closed: false };
      connection.opening = opening;
      void bridge.open(decoded.start, connection.phone).then(
        (opened) => {
          connection.opening = undefined;
          if (!opened.ok) {
            connection.refused = true;
            if (!opening.closed)
              close(opened.internal ? INTERNAL_ERROR : REFUSED, opened.reason.slice(0, 120));
            return;
          }
          const { session } = opened;
          connection.session = session;
          // What came meanwhile, in the session's own accounting and order.
          for (const frame of opening.media) session.handlePhone(frame);
          for (let frame = opening.media.length; frame < opening.mediaFrames; frame++)
            session.handlePhone(HELD_FRAME);
          for (const other of opening.others) session.handlePhone(other);
          if (opening.closed) session.phoneClosed();
        },
        (error: unknown) => {
          connection.opening = undefined;
          connection.refused = true;
          logger.error("could not open the call's stream", { error });
          if (!opening.closed) close(INTERNAL_ERROR, "internal error while setting up the call");
        },
      );
    } else if (decoded.event === "ignored" && connection.ignoredBeforeStart++ === 0) {
      logger.warn("ignored message before stream start", { reason: decoded.reason });
    }
  };

  return new Elysia({ name: "media-stream" }).ws("/twilio", {
    detail: { hide: true },
    async beforeHandle({ request }) {
      // A draining instance of a fleet takes no new stream, and says so before the token is used:
      // the balancer sends the upgrade to another instance (nginx: proxy_next_upstream http_503).
      if (calls.draining && coordination.kind !== "local") throw new ShuttingDownError();
      // With stream signatures on, a stranger's upgrade is refused before it costs a socket.
      if (
        config.twilio.validateStreamSignatures &&
        !(await streamSignatureValid(config, request.headers.get("x-twilio-signature")))
      ) {
        bridge.refusedStreams += 1;
        throw new InvalidSignatureError("Missing or wrong X-Twilio-Signature on the upgrade");
      }
    },
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
        messagesBeforeStart: 0,
        ignoredBeforeStart: 0,
      };
      connection.pending = {
        client: clients.of(ws.data.request, raw.remoteAddress),
        deadline: clock.setTimeout(() => {
          logger.warn("media stream sent no start in time", {
            timeoutMs: config.streams.startTimeoutMs,
          });
          settle(connection);
          raw.close(REFUSED, "no start");
        }, config.streams.startTimeoutMs),
        evict: () => raw.close(TRY_AGAIN_LATER, "too many streams waiting to start"),
      };
      pendingStreams.add(connection.pending);
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
      if (connection.opening) connection.opening.closed = true;
      connection.session?.phoneClosed();
    },
  });
}
