/**
 * A call's recording (RECORDING=local): a two-channel 8 kHz mu-law WAV, left the caller, right what
 * the caller heard of the agent. The caller's audio is the clock: Twilio sends it without gaps (20 ms
 * frames, silence included), so sample n of the left channel is n/8 ms into the stream. Agent audio
 * is laid down where the phone plays it, after what is still queued or else now; a `clear` (barge-in)
 * takes back what had not been played by then. Everything behind the present is final and goes to
 * the file every ~500 ms as one positional write on the I/O thread pool, never per frame. The header
 * says "size unknown" while the file grows, which players read to the end of the file, and gets its
 * real sizes when the recording closes, or, for a file a crash left behind, at start-up and hourly
 * (`Recordings`). A stream that comes back after a transfer appends to its call's file. A recording
 * fails alone: an error in it is logged, it stops and lets go of its buffers, and the call goes on.
 */

import { constants, write } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { chmod, mkdir, open, readdir, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../log.ts";
import type { RecordingInfo } from "../store/calls.ts";

/** Bytes per sample frame (one mu-law byte per channel). */
const FRAME = 2;
const HEADER_BYTES = 44;
/** Samples (per channel) behind the present gathered before one write: 500 ms. */
const FLUSH_SAMPLES = 4000;
/** Mu-law silence. */
const SILENCE = 0xff;
/** RIFF and data sizes while the file grows: players read such a data chunk to the end of the file. */
const UNKNOWN_SIZE = 0xffffffff;
/** A file this long untouched is no longer being written (a live call writes every 500 ms). */
const ABANDONED_AFTER_MS = 60_000;

/** The 44-byte header of a 2-channel 8 kHz mu-law (format 7) WAV with `dataBytes` of samples. */
export function wavHeader(dataBytes: number | undefined): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.write("RIFF", 0, "ascii");
  header.writeUInt32LE(dataBytes === undefined ? UNKNOWN_SIZE : 36 + dataBytes, 4);
  header.write("WAVEfmt ", 8, "ascii");
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(7, 20);
  header.writeUInt16LE(2, 22);
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(8000 * FRAME, 28);
  header.writeUInt16LE(FRAME, 32);
  header.writeUInt16LE(8, 34);
  header.write("data", 36, "ascii");
  header.writeUInt32LE(dataBytes ?? UNKNOWN_SIZE, 40);
  return header;
}

const infoOf = (file: string, dataBytes: number): RecordingInfo => ({
  file,
  duration_ms: Math.round(dataBytes / FRAME / 8),
  bytes: HEADER_BYTES + dataBytes,
});

/** What the session tells a recording; none of it waits on the disk, none of it throws. */
export interface CallRecording {
  /** One frame of the caller's audio, as received. */
  caller(audio: Uint8Array): void;
  /** The caller's time passes but their words are not kept (before they heard the disclosure). */
  silence(bytes: number): void;
  /** Agent audio sent to the phone, which plays it after what it still has queued. */
  agent(audio: Uint8Array): void;
  /** The phone dropped what it had not played yet (barge-in). */
  cleared(): void;
  /** Writes what is left and the final header, then tells the record; once. */
  close(): Promise<void>;
}

/** A growable byte queue starting at sample `base`, silent where nothing was put. */
class Track {
  /** Room for one write's worth and a frame or two more; grows when agent audio runs ahead. */
  bytes = Buffer.alloc(FLUSH_SAMPLES + 640, SILENCE);
  length = 0;

  put(at: number, audio: Uint8Array): void {
    const end = at + audio.byteLength;
    this.reserve(end);
    this.bytes.set(audio, at);
    if (end > this.length) this.length = end;
  }

  /** Room for `size` bytes, silent beyond what was put. */
  reserve(size: number): void {
    if (size <= this.bytes.length) return;
    const grown = Buffer.alloc(Math.max(size, this.bytes.length * 2), SILENCE);
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }

  /** Drops everything from `at` on. */
  cut(at: number): void {
    if (at >= this.length) return;
    this.bytes.fill(SILENCE, Math.max(at, 0), this.length);
    this.length = Math.max(at, 0);
  }

  /** Lets go of the buffer (a recording that stopped). */
  release(): void {
    this.bytes = Buffer.alloc(0);
    this.length = 0;
  }

  /** Removes the first `count` bytes. */
  shift(count: number): void {
    this.bytes.copy(this.bytes, 0, count, Math.max(count, this.length));
    const kept = Math.max(this.length - count, 0);
    this.bytes.fill(SILENCE, kept, Math.max(this.length, count));
    this.length = kept;
  }
}

/** One stream's recording; `Recordings.open` hands it out as a `CallRecording`. */
class LocalRecording {
  readonly #file: string;
  readonly #logger: Logger;
  /** Opened (and, for a call that comes back after a transfer, measured) once. */
  readonly #opened: Promise<{ handle: FileHandle; dataBytes: number } | undefined>;
  /** Where sample 0 of this stream goes in the file, once it is open. */
  #target: { fd: number; base: number } | undefined;
  /** Chunks made before the file was open, with their first sample. */
  #waiting: { chunk: Uint8Array; first: number }[] = [];
  #inFlight = 0;
  #drained: (() => void) | undefined;
  /** Samples (per channel) already handed to a write. */
  #written = 0;
  readonly #left = new Track();
  readonly #right = new Track();
  /** Where the next agent audio goes, in samples from the start of this stream. */
  #playhead = 0;
  #failed = false;
  /** Failed or closed: nothing more is taken. */
  #stopped = false;
  /** Past this many samples the caller is not recorded (a stream far longer than any call). */
  readonly #maxSamples: number;

  constructor(path: string, file: string, logger: Logger, maxSamples: number) {
    this.#file = file;
    this.#logger = logger;
    this.#maxSamples = maxSamples;
    this.#opened = openForAppend(path).then(
      (opened) => {
        this.#target = { fd: opened.handle.fd, base: HEADER_BYTES + opened.dataBytes };
        for (const { chunk, first } of this.#waiting) this.#write(chunk, first);
        this.#waiting = [];
        return opened;
      },
      (error: unknown) => {
        this.#fail(error);
        return undefined;
      },
    );
  }

  /** Samples of this stream up to now. */
  get #now(): number {
    return this.#written + this.#left.length;
  }

  caller(audio: Uint8Array): void {
    if (this.#stopped) return;
    try {
      if (this.#now + audio.byteLength > this.#maxSamples) return;
      this.#left.put(this.#left.length, audio);
      if (this.#left.length >= FLUSH_SAMPLES) this.#flush();
    } catch (error) {
      this.#fail(error);
    }
  }

  silence(bytes: number): void {
    if (this.#stopped) return;
    try {
      if (this.#now + bytes > this.#maxSamples) return;
      this.#left.length += bytes;
      this.#left.reserve(this.#left.length);
      if (this.#left.length >= FLUSH_SAMPLES) this.#flush();
    } catch (error) {
      this.#fail(error);
    }
  }

  agent(audio: Uint8Array): void {
    if (this.#stopped) return;
    try {
      const start = Math.max(this.#playhead, this.#now);
      this.#right.put(start - this.#written, audio);
      this.#playhead = start + audio.byteLength;
    } catch (error) {
      this.#fail(error);
    }
  }

  cleared(): void {
    if (this.#stopped) return;
    const now = this.#now;
    if (this.#playhead <= now) return;
    this.#right.cut(now - this.#written);
    this.#playhead = now;
  }

  /** Interleaves what lies behind the present and hands it to one write. */
  #flush(): void {
    const samples = this.#left.length;
    if (samples === 0 || this.#failed) return;
    this.#right.reserve(samples);
    const left = this.#left.bytes;
    const right = this.#right.bytes;
    // One 16-bit store per sample frame: the low byte (first, little-endian) left, the high right.
    const frames = new Uint16Array(samples);
    for (let i = 0; i < samples; i++) frames[i] = (left[i] as number) | ((right[i] as number) << 8);
    const first = this.#written;
    this.#written += samples;
    this.#left.length = 0;
    this.#right.shift(samples);
    const chunk = new Uint8Array(frames.buffer);
    if (this.#target) this.#write(chunk, first);
    else this.#waiting.push({ chunk, first });
  }

  /** One positional write on the I/O pool (the callback form: half FileHandle.write's cost). */
  #write(chunk: Uint8Array, first: number): void {
    const target = this.#target;
    if (!target || this.#failed) return;
    this.#inFlight += 1;
    write(target.fd, chunk, 0, chunk.length, target.base + first * FRAME, (error) => {
      if (error) this.#fail(error);
      this.#inFlight -= 1;
      if (this.#inFlight === 0) this.#drained?.();
    });
  }

  /** The final size and header; undefined when nothing could be recorded. */
  async finish(): Promise<RecordingInfo | undefined> {
    if (this.#stopped && !this.#failed) return undefined;
    // Agent audio still queued when the stream ended was never heard.
    if (!this.#failed) this.#flush();
    this.#stopped = true;
    this.#left.release();
    this.#right.release();
    const opened = await this.#opened;
    if (!opened) return undefined;
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    const dataBytes = opened.dataBytes + this.#written * FRAME;
    try {
      if (!this.#failed) await opened.handle.write(wavHeader(dataBytes), 0, HEADER_BYTES, 0);
    } catch (error) {
      this.#fail(error);
    } finally {
      await opened.handle.close().catch(() => {});
    }
    return this.#failed ? undefined : infoOf(this.#file, dataBytes);
  }

  #fail(error: unknown): void {
    if (!this.#failed) this.#logger.error("recording failed; the call goes on", { error });
    this.#failed = true;
    this.#stopped = true;
    this.#left.release();
    this.#right.release();
  }
}

/** Never through a symbolic link someone planted in the directory. */
const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const REOPEN = constants.O_RDWR | constants.O_NOFOLLOW;

/** Opens the file to write at its end: a new one (0600) gets a growing-file header. */
async function openForAppend(path: string): Promise<{ handle: FileHandle; dataBytes: number }> {
  const created = await open(path, CREATE, 0o600).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "EEXIST") return undefined;
    throw error;
  });
  if (created) {
    await created.write(wavHeader(undefined), 0, HEADER_BYTES, 0);
    return { handle: created, dataBytes: 0 };
  }
  // The call came back after a transfer: its file goes on.
  const handle = await open(path, REOPEN);
  const dataBytes = Math.max((await handle.stat()).size - HEADER_BYTES, 0);
  // Growing again: players must not stop at the old end.
  await handle.write(wavHeader(undefined), 0, HEADER_BYTES, 0);
  return { handle, dataBytes: dataBytes - (dataBytes % FRAME) };
}

/** A call SID as a file name: only SIDs Twilio could have issued. */
const FILE_NAME = /^(CA[0-9a-zA-Z]{2,64})\.wav$/;

/** The recording's file name of a call, or undefined for a SID Twilio could not have issued. */
export function recordingFile(callSid: string): string | undefined {
  const file = `${callSid}.wav`;
  return FILE_NAME.test(file) ? file : undefined;
}

/** The recordings of this service: one file per call in RECORDINGS_DIR. */
export class Recordings {
  constructor(
    readonly dir: string,
    private readonly logger: Logger,
  ) {}

  /** Creates the directory, readable by this service's user only. */
  async prepare(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
  }

  readonly #closing = new Set<Promise<void>>();

  pathOf(file: string): string {
    return join(this.dir, file);
  }

  /**
   * Starts (or, after a transfer, continues) the recording of a call's stream; undefined for a call
   * SID Twilio could not have issued (a development stream's), which names no file. Closing it
   * hands its size and length to `recorded`, and `settled` waits for that.
   */
  open(
    callSid: string,
    options: {
      logger: Logger;
      maxMs: number;
      recorded(info: RecordingInfo): Promise<unknown>;
    },
  ): CallRecording | undefined {
    const file = recordingFile(callSid);
    if (!file) return undefined;
    const { logger, maxMs, recorded } = options;
    const recording = new LocalRecording(this.pathOf(file), file, logger, maxMs * 8);
    let closed: Promise<void> | undefined;
    const close = () => {
      closed ??= recording
        .finish()
        .then((info) => (info ? recorded(info) : undefined))
        .then(
          () => undefined,
          (error: unknown) => logger.error("could not finish the recording", { error }),
        );
      this.#closing.add(closed);
      void closed.finally(() => this.#closing.delete(closed as Promise<void>));
      return closed;
    };
    return {
      caller: (audio) => recording.caller(audio),
      silence: (bytes) => recording.silence(bytes),
      agent: (audio) => recording.agent(audio),
      cleared: () => recording.cleared(),
      close,
    };
  }

  /** Resolves once every recording being closed has been written and recorded (at shutdown). */
  async settled(): Promise<void> {
    await Promise.all(this.#closing);
  }

  /**
   * Gives the files a crash left growing (no write for a minute, header still "size unknown")
   * their real sizes, so every player opens them. @returns each repaired call and its recording
   */
  async repair(now: number): Promise<{ callSid: string; info: RecordingInfo }[]> {
    const repaired: { callSid: string; info: RecordingInfo }[] = [];
    for (const { callSid, file, path } of await this.#files()) {
      try {
        const stats = await stat(path);
        if (now - stats.mtimeMs < ABANDONED_AFTER_MS) continue;
        const handle = await open(path, REOPEN);
        try {
          const header = Buffer.alloc(HEADER_BYTES);
          await handle.read(header, 0, HEADER_BYTES, 0);
          if (header.readUInt32LE(40) !== UNKNOWN_SIZE) continue;
          const dataBytes = Math.max(stats.size - HEADER_BYTES, 0);
          const whole = dataBytes - (dataBytes % FRAME);
          await handle.write(wavHeader(whole), 0, HEADER_BYTES, 0);
          repaired.push({ callSid, info: infoOf(file, whole) });
        } finally {
          await handle.close();
        }
      } catch (error) {
        this.logger.error("could not repair a recording", { file, error });
      }
    }
    return repaired;
  }

  /** Deletes recordings last written before `before` (ms since the epoch). @returns their calls */
  async deleteOlderThan(before: number): Promise<string[]> {
    const deleted: string[] = [];
    for (const { callSid, path } of await this.#files()) {
      try {
        if ((await stat(path)).mtimeMs >= before) continue;
        await unlink(path);
        deleted.push(callSid);
      } catch (error) {
        // Another instance sharing the directory may have deleted it first.
        if ((error as NodeJS.ErrnoException).code !== "ENOENT")
          this.logger.error("could not delete a recording", { path, error });
      }
    }
    return deleted;
  }

  async #files(): Promise<{ callSid: string; file: string; path: string }[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    return names.flatMap((file) => {
      const callSid = FILE_NAME.exec(file)?.[1];
      return callSid ? [{ callSid, file, path: this.pathOf(file) }] : [];
    });
  }
}
