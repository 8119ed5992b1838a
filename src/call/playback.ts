/**
 * Bookkeeping of agent audio queued on the phone, driven by Twilio marks. A numbered mark follows
 * the audio every `markEveryMs` of it and at the end of each agent turn; an echoed mark means the
 * caller heard everything before it, unless a `clear` dropped it. Pure: no sockets, no timers.
 */

/** mu-law at 8 kHz: one byte per sample. */
const BYTES_PER_MS = 8;

/** Default spacing of marks: fine enough to track playback, few enough to keep the socket quiet. */
export const DEFAULT_MARK_EVERY_MS = 100;

interface PendingMark {
  seq: number;
  /** Total bytes sent up to this mark. */
  sentThrough: number;
}

export type MarkOutcome = "played" | "dropped" | "unknown";

export class PlaybackTracker {
  readonly #markEveryBytes: number;
  #seq = 0;
  #sentBytes = 0;
  #playedBytes = 0;
  #unmarkedBytes = 0;
  #clearedThrough = 0;
  #pending: PendingMark[] = [];

  constructor(markEveryMs = DEFAULT_MARK_EVERY_MS) {
    this.#markEveryBytes = markEveryMs * BYTES_PER_MS;
  }

  /**
   * Records audio sent to the phone.
   * @returns the name of a mark to send right after it, when one is due
   */
  sent(bytes: number): string | undefined {
    this.#sentBytes += bytes;
    this.#unmarkedBytes += bytes;
    return this.#unmarkedBytes >= this.#markEveryBytes ? this.flush() : undefined;
  }

  /** A mark for any audio sent since the last one (end of a turn). @returns its name, or undefined if none is needed */
  flush(): string | undefined {
    if (this.#unmarkedBytes === 0) return undefined;
    this.#unmarkedBytes = 0;
    this.#seq += 1;
    this.#pending.push({ seq: this.#seq, sentThrough: this.#sentBytes });
    return `a${this.#seq}`;
  }

  /** Records a mark echoed by Twilio. */
  echoed(name: string): MarkOutcome {
    const seq = name.startsWith("a") ? Number(name.slice(1)) : Number.NaN;
    if (!Number.isInteger(seq) || seq < 1 || seq > this.#seq) return "unknown";
    if (seq <= this.#clearedThrough) return "dropped";
    while (this.#pending.length > 0 && (this.#pending[0]?.seq ?? 0) <= seq) {
      const played = this.#pending.shift();
      if (played) this.#playedBytes = played.sentThrough;
    }
    return "played";
  }

  /**
   * Records a `clear`: everything queued is dropped, and late echoes of its marks will say so.
   * @returns how many marks were still pending
   */
  clear(): number {
    const dropped = this.#pending.length;
    this.#clearedThrough = this.#seq;
    this.#pending = [];
    this.#unmarkedBytes = 0;
    this.#playedBytes = this.#sentBytes;
    return dropped;
  }

  /** True when everything sent has been heard or dropped (and marked). */
  get idle(): boolean {
    return this.#pending.length === 0 && this.#unmarkedBytes === 0;
  }

  /** Marks still waiting for their echo. */
  get pendingMarks(): number {
    return this.#pending.length;
  }

  /** Audio queued on the phone and not yet heard. */
  get queuedMs(): number {
    return (this.#sentBytes - this.#playedBytes) / BYTES_PER_MS;
  }
}
