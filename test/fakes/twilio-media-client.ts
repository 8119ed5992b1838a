/**
 * A fake Twilio Media Streams client: plays the phone side of a `<Connect><Stream>` exactly as
 * Twilio does. Sends `connected` then `start` (custom parameters included), caller audio as 20 ms
 * `media` frames with string sequence/chunk/timestamp fields, `dtmf` and `stop`. Plays the audio it
 * receives through a queue drained at 8000 bytes/s (times `speed`), echoes each mark once the audio
 * queued before it has played, and on `clear` empties the queue and echoes every pending mark at once.
 * Records everything it receives with arrival times. Used by tests, the dev client and benchmarks.
 */

import { Conditions } from "./conditions.ts";

export interface FakeCallOptions {
  /** ws:// URL of the server's media-stream endpoint. */
  url: string;
  callSid?: string;
  streamSid?: string;
  accountSid?: string;
  customParameters?: Record<string, string>;
  /** Playback speed: 1 is real time; tests use more so a second of audio plays in milliseconds. */
  speed?: number;
  /** Keep every received message in `received` (default true; benchmarks turn it off to spare memory). */
  keepMessages?: boolean;
  /** Extra upgrade headers (e.g. X-Twilio-Signature). */
  headers?: Record<string, string>;
  /** Send connected/start at once (default true). */
  autoStart?: boolean;
}

export interface ReceivedMessage {
  /** performance.now() at arrival. */
  at: number;
  message: {
    event: string;
    streamSid?: string;
    media?: { payload: string };
    mark?: { name: string };
  };
}

/** A chunk of queued agent audio and when it will have finished playing (performance.now() time). */
interface Segment {
  end: number;
  length: number;
}

/** A mark waiting for the audio queued before it; echoed by its timer, or at once by a clear. */
interface PendingMark {
  name: string;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Bytes a base64 string decodes to, without decoding it. */
function decodedLength(base64: string): number {
  const padding = base64.endsWith("==") ? 2 : base64.endsWith("=") ? 1 : 0;
  return (base64.length / 4) * 3 - padding;
}

const MEDIA_PREFIX = '{"event":"media"';
const PAYLOAD_KEY = '"payload":"';

const FRAME_BYTES = 160;
const BYTES_PER_MS = 8;

export class FakeTwilioCall {
  readonly callSid: string;
  readonly streamSid: string;
  readonly accountSid: string;
  readonly received: ReceivedMessage[] = [];
  /** Agent audio whose playing has finished (was heard) by now. */
  get heardBytes(): number {
    this.#advance();
    return this.#heard;
  }
  /** Agent audio dropped by a clear before it played. */
  droppedBytes = 0;
  readonly echoedMarks: string[] = [];
  /** When each media frame was sent (performance.now()), for latency measurements. */
  readonly sentMediaAt: number[] = [];
  clears = 0;
  /** performance.now() of the last clear received. */
  lastClearAt = 0;
  /** Media messages received. */
  mediaReceived = 0;
  /** performance.now() of the last mark echoed (its audio had played, or a clear dropped it). */
  lastMarkEchoAt = 0;
  /** performance.now() when the socket closed, by either side. */
  closedAt = 0;
  /** Agent audio still queued (not yet played) when the socket closed, in ms: words cut off. */
  queuedMsAtClose = 0;
  readonly #socket: WebSocket;
  readonly #speed: number;
  readonly #closed = Promise.withResolvers<{ code: number; reason: string }>();
  readonly #conditions = new Conditions("fake Twilio");
  #sequence = 0;
  #chunk = 0;
  #startedAt = performance.now();
  /** When the audio queued so far will have finished playing. */
  #playhead = 0;
  #segments: Segment[] = [];
  #heard = 0;
  #pendingMarks: PendingMark[] = [];
  #endNotice: ReturnType<typeof setTimeout> | undefined;
  #lastAudio: Uint8Array | undefined;
  #lastPayload = "";
  isClosed = false;

  private constructor(
    socket: WebSocket,
    private readonly options: FakeCallOptions,
  ) {
    this.#socket = socket;
    this.#speed = options.speed ?? 1;
    this.callSid = options.callSid ?? `CA${crypto.randomUUID().replaceAll("-", "")}`;
    this.accountSid = options.accountSid ?? `AC${"0".repeat(32)}`;
    this.streamSid = options.streamSid ?? `MZ${crypto.randomUUID().replaceAll("-", "")}`;
    socket.onmessage = (event) => this.#receive(String(event.data));
    socket.onclose = (event) => {
      this.isClosed = true;
      this.closedAt = performance.now();
      this.queuedMsAtClose = Math.max(0, this.#playhead - this.closedAt) * this.#speed;
      this.#cancelPlayback();
      this.#closed.resolve({ code: event.code, reason: event.reason });
      this.#notify();
    };
  }

  /** Opens the stream; resolves once the socket is open and (by default) connected/start were sent. */
  static async connect(options: FakeCallOptions): Promise<FakeTwilioCall> {
    const socket = new WebSocket(options.url, { headers: options.headers ?? {} });
    const call = new FakeTwilioCall(socket, options);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`could not connect to ${options.url}`));
    });
    if (options.autoStart !== false) call.start();
    return call;
  }

  /** Sends `connected` and `start`. */
  start(): void {
    this.sendJson({ event: "connected", protocol: "Call", version: "1.0.0" });
    this.#startedAt = performance.now();
    this.sendJson({
      event: "start",
      sequenceNumber: this.#nextSequence(),
      streamSid: this.streamSid,
      start: {
        accountSid: this.accountSid,
        streamSid: this.streamSid,
        callSid: this.callSid,
        tracks: ["inbound"],
        mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
        customParameters: this.options.customParameters ?? {},
      },
    });
  }

  /** One `media` message carrying `audio` (any size; Twilio's own frames are 160 bytes). */
  sendMedia(audio: Uint8Array): void {
    const now = performance.now();
    this.sentMediaAt.push(now);
    if (this.isClosed) return;
    // Benchmarks send one frame object over and over: encode it once.
    if (audio !== this.#lastAudio) {
      this.#lastAudio = audio;
      this.#lastPayload = Buffer.from(audio.buffer, audio.byteOffset, audio.byteLength).toString(
        "base64",
      );
    }
    this.#socket.send(
      `{"event":"media","sequenceNumber":"${this.#nextSequence()}","streamSid":"${this.streamSid}","media":{"track":"inbound","chunk":"${++this.#chunk}","timestamp":"${Math.round(now - this.#startedAt)}","payload":"${this.#lastPayload}"}}`,
    );
  }

  /**
   * Streams caller audio as 20 ms frames: paced in real time (`realtime`, the default) or as fast as
   * the socket takes them. Resolves after the last frame was sent.
   */
  async streamAudio(
    audio: Uint8Array,
    { realtime = true }: { realtime?: boolean } = {},
  ): Promise<void> {
    const started = performance.now();
    for (let offset = 0, frame = 0; offset < audio.length; offset += FRAME_BYTES, frame++) {
      if (this.isClosed) return;
      if (realtime) {
        const due = started + frame * 20 - performance.now();
        if (due > 0) await Bun.sleep(due);
      }
      this.sendMedia(audio.subarray(offset, offset + FRAME_BYTES));
    }
  }

  sendDtmf(digit: string): void {
    this.sendJson({
      event: "dtmf",
      streamSid: this.streamSid,
      sequenceNumber: this.#nextSequence(),
      dtmf: { track: "inbound_track", digit },
    });
  }

  /** Anything at all, for malformed-input tests. */
  sendRaw(data: string | Uint8Array): void {
    this.#socket.send(data);
  }

  sendJson(message: unknown): void {
    if (!this.isClosed) this.#socket.send(JSON.stringify(message));
  }

  /**
   * The stream ends on Twilio's side: `stop`, then the socket closes. The caller hung up, or (with
   * another reason) Twilio moved the call on, e.g. a REST redirect to a `<Dial>`.
   */
  hangUp(reason = "caller hung up"): void {
    this.sendJson({
      event: "stop",
      sequenceNumber: this.#nextSequence(),
      streamSid: this.streamSid,
      stop: {
        accountSid: this.accountSid,
        callSid: this.callSid,
      },
    });
    this.#socket.close(1000, reason);
  }

  /** Resolves when the server (or we) closed the socket. */
  get closed(): Promise<{ code: number; reason: string }> {
    return this.#closed.promise;
  }

  /** Every media payload received, concatenated. */
  receivedAudio(): Buffer {
    return Buffer.concat(
      this.received
        .filter(({ message }) => message.event === "media")
        .map(({ message }) => Buffer.from(message.media?.payload ?? "", "base64")),
    );
  }

  events(): string[] {
    return this.received.map(({ message }) => message.event);
  }

  /** Resolves once `condition` holds, re-checked on every message and playback step. */
  waitFor(condition: () => boolean, what = "condition", timeoutMs = 5_000): Promise<void> {
    const waiting = this.#conditions.waitFor(condition, what, timeoutMs);
    this.#noticeEnd();
    return waiting;
  }

  #receive(text: string): void {
    const at = performance.now();
    if (this.options.keepMessages === false && text.startsWith(MEDIA_PREFIX)) {
      // Benchmark path: count the audio without parsing or decoding it.
      const start = text.indexOf(PAYLOAD_KEY) + PAYLOAD_KEY.length;
      this.#queueAudio(decodedLength(text.slice(start, text.indexOf('"', start))));
      this.#notify();
      return;
    }
    const message = JSON.parse(text) as ReceivedMessage["message"];
    if (this.options.keepMessages !== false) this.received.push({ at, message });
    if (message.event === "media") {
      this.#queueAudio(decodedLength(message.media?.payload ?? ""));
    } else if (message.event === "mark") {
      this.#queueMark(message.mark?.name ?? "");
    } else if (message.event === "clear") {
      this.clears += 1;
      this.lastClearAt = at;
      this.#advance();
      for (const segment of this.#segments) this.droppedBytes += segment.length;
      this.#segments = [];
      this.#playhead = at;
      const marks = this.#pendingMarks;
      this.#cancelPlayback();
      for (const mark of marks) this.#echo(mark.name);
    }
    this.#notify();
  }

  #queueAudio(length: number): void {
    this.mediaReceived += 1;
    this.#advance();
    const start = Math.max(performance.now(), this.#playhead);
    this.#playhead = start + length / BYTES_PER_MS / this.#speed;
    this.#segments.push({ end: this.#playhead, length });
    if (this.#conditions.waiting) this.#noticeEnd();
  }

  /** Twilio echoes a mark once the audio before it has played: one timer per mark, none per chunk. */
  #queueMark(name: string): void {
    const due = this.#playhead;
    if (due <= performance.now()) {
      this.#echo(name);
      return;
    }
    const mark: PendingMark = { name, timer: undefined };
    // Timers may fire a fraction of a millisecond early: never echo before the audio has played.
    const echoWhenPlayed = () => {
      const left = due - performance.now();
      if (left > 0) {
        mark.timer = setTimeout(echoWhenPlayed, Math.ceil(left));
        return;
      }
      this.#pendingMarks.splice(this.#pendingMarks.indexOf(mark), 1);
      this.#echo(name);
      this.#notify();
    };
    mark.timer = setTimeout(echoWhenPlayed, Math.ceil(due - performance.now()));
    this.#pendingMarks.push(mark);
  }

  /** Moves finished segments into the heard count. */
  #advance(): void {
    const now = performance.now();
    while (
      this.#segments.length > 0 &&
      (this.#segments[0]?.end ?? Number.POSITIVE_INFINITY) <= now
    ) {
      this.#heard += this.#segments.shift()?.length ?? 0;
    }
  }

  /** While someone waits on this phone, wakes them when the queued audio has finished playing. */
  #noticeEnd(): void {
    if (this.#endNotice) return;
    const delay = this.#playhead - performance.now();
    if (delay <= 0) return;
    this.#endNotice = setTimeout(() => {
      this.#endNotice = undefined;
      this.#notify();
      if (this.#conditions.waiting) this.#noticeEnd();
    }, delay + 1);
  }

  #cancelPlayback(): void {
    for (const mark of this.#pendingMarks) clearTimeout(mark.timer);
    this.#pendingMarks = [];
    clearTimeout(this.#endNotice);
    this.#endNotice = undefined;
  }

  #echo(name: string): void {
    this.echoedMarks.push(name);
    this.lastMarkEchoAt = performance.now();
    this.sendJson({
      event: "mark",
      sequenceNumber: this.#nextSequence(),
      streamSid: this.streamSid,
      mark: { name },
    });
  }

  #nextSequence(): string {
    this.#sequence += 1;
    return String(this.#sequence);
  }

  #notify(): void {
    this.#conditions.changed();
  }
}
