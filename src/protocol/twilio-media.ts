/**
 * Pure codec for Twilio Media Streams (bidirectional `<Connect><Stream>`): decodes what Twilio sends
 * into a discriminated union and builds what the server sends back. Never throws: anything malformed
 * or unknown decodes to `{ event: "ignored", reason }`.
 */
import { type Static, Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";

/** Largest base64 media payload accepted (Twilio sends 160 bytes = 216 characters per frame). */
export const MAX_MEDIA_PAYLOAD_CHARS = 16_384;

const StartMessage = Type.Object({
  event: Type.Literal("start"),
  streamSid: Type.String({ minLength: 1 }),
  start: Type.Object({
    accountSid: Type.String(),
    streamSid: Type.String({ minLength: 1 }),
    callSid: Type.String({ minLength: 1 }),
    tracks: Type.Optional(Type.Array(Type.String())),
    mediaFormat: Type.Object({
      encoding: Type.String(),
      sampleRate: Type.Number(),
      channels: Type.Number(),
    }),
    customParameters: Type.Optional(Type.Record(Type.String(), Type.String())),
  }),
});

const MediaMessage = Type.Object({
  event: Type.Literal("media"),
  streamSid: Type.String(),
  media: Type.Object({
    track: Type.Optional(Type.String()),
    chunk: Type.Optional(Type.String()),
    timestamp: Type.Optional(Type.String()),
    payload: Type.String({ maxLength: MAX_MEDIA_PAYLOAD_CHARS }),
  }),
});

const MarkMessage = Type.Object({
  event: Type.Literal("mark"),
  streamSid: Type.String(),
  mark: Type.Object({ name: Type.String() }),
});

const DtmfMessage = Type.Object({
  event: Type.Literal("dtmf"),
  streamSid: Type.String(),
  dtmf: Type.Object({ digit: Type.String(), track: Type.Optional(Type.String()) }),
});

const StopMessage = Type.Object({
  event: Type.Literal("stop"),
  streamSid: Type.String(),
  stop: Type.Optional(
    Type.Object({
      accountSid: Type.Optional(Type.String()),
      callSid: Type.Optional(Type.String()),
    }),
  ),
});

const ConnectedMessage = Type.Object({ event: Type.Literal("connected") });

const checkers = {
  connected: TypeCompiler.Compile(ConnectedMessage),
  start: TypeCompiler.Compile(StartMessage),
  media: TypeCompiler.Compile(MediaMessage),
  mark: TypeCompiler.Compile(MarkMessage),
  dtmf: TypeCompiler.Compile(DtmfMessage),
  stop: TypeCompiler.Compile(StopMessage),
};

export interface StreamStart {
  streamSid: string;
  callSid: string;
  accountSid: string;
  encoding: string;
  sampleRate: number;
  /** Flat string map from the TwiML `<Parameter>` elements. */
  customParameters: Record<string, string>;
}

/** A message from Twilio, decoded. `media.audio` is raw mu-law bytes. */
export type TwilioInbound =
  | { event: "connected" }
  | { event: "start"; start: StreamStart }
  | { event: "media"; audio: Buffer }
  | { event: "mark"; name: string }
  | { event: "dtmf"; digit: string }
  | { event: "stop" }
  | { event: "ignored"; reason: string };

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function ignored(reason: string): TwilioInbound {
  return { event: "ignored", reason };
}

/**
 * Decodes one WebSocket message from Twilio: a JSON string, or the object a framework already parsed.
 * @example decodeTwilio('{"event":"mark","streamSid":"MZ1","mark":{"name":"a1"}}') // { event: "mark", name: "a1" }
 */
export function decodeTwilio(message: unknown): TwilioInbound {
  let value = message;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return ignored("not JSON");
    }
  }
  if (typeof value !== "object" || value === null) return ignored("not a JSON object");
  const event = (value as { event?: unknown }).event;
  switch (event) {
    case "media": {
      if (!checkers.media.Check(value)) return ignored("malformed media");
      const payload = (value as Static<typeof MediaMessage>).media.payload;
      if (payload.length % 4 !== 0 || !BASE64.test(payload))
        return ignored("media payload is not base64");
      return { event: "media", audio: Buffer.from(payload, "base64") };
    }
    case "mark":
      return checkers.mark.Check(value)
        ? { event: "mark", name: (value as Static<typeof MarkMessage>).mark.name }
        : ignored("malformed mark");
    case "start": {
      if (!checkers.start.Check(value)) return ignored("malformed start");
      const { start } = value as Static<typeof StartMessage>;
      return {
        event: "start",
        start: {
          streamSid: start.streamSid,
          callSid: start.callSid,
          accountSid: start.accountSid,
          encoding: start.mediaFormat.encoding,
          sampleRate: start.mediaFormat.sampleRate,
          customParameters: start.customParameters ?? {},
        },
      };
    }
    case "connected":
      return checkers.connected.Check(value)
        ? { event: "connected" }
        : ignored("malformed connected");
    case "dtmf":
      return checkers.dtmf.Check(value)
        ? { event: "dtmf", digit: (value as Static<typeof DtmfMessage>).dtmf.digit }
        : ignored("malformed dtmf");
    case "stop":
      return checkers.stop.Check(value) ? { event: "stop" } : ignored("malformed stop");
    default:
      return ignored(
        typeof event === "string" ? `unknown event ${event.slice(0, 40)}` : "no event",
      );
  }
}

/**
 * Builds the server → Twilio messages of one stream. The stream SID is escaped once, so each audio
 * frame costs one base64 encode and one string concatenation.
 */
export class TwilioEncoder {
  readonly #mediaPrefix: string;
  readonly #markPrefix: string;
  readonly #clear: string;

  constructor(streamSid: string) {
    const sid = JSON.stringify(streamSid);
    this.#mediaPrefix = `{"event":"media","streamSid":${sid},"media":{"payload":"`;
    this.#markPrefix = `{"event":"mark","streamSid":${sid},"mark":{"name":`;
    this.#clear = `{"event":"clear","streamSid":${sid}}`;
  }

  /** `media` with raw mu-law 8 kHz audio (no header). */
  media(audio: Uint8Array): string {
    // Agent audio arrives as a Buffer already: no wrapper object per frame.
    const bytes = Buffer.isBuffer(audio)
      ? audio
      : Buffer.from(audio.buffer, audio.byteOffset, audio.byteLength);
    return `${this.#mediaPrefix}${bytes.toString("base64")}"}}`;
  }

  /** `mark`: Twilio echoes it once all audio queued before it has played (or was cleared). */
  mark(name: string): string {
    return `${this.#markPrefix}${JSON.stringify(name)}}}`;
  }

  /** `clear`: empties Twilio's playback queue and echoes every pending mark. */
  clear(): string {
    return this.#clear;
  }
}
