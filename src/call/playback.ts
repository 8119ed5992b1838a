/**
 * Bookkeeping of agent audio queued on the phone, driven by Twilio marks: every chunk sent is followed
 * by a numbered mark; an echoed mark means the caller heard everything before it, unless a `clear`
 * dropped it. Pure: no sockets, no timers.
 */

/** mu-law at 8 kHz: one byte per sample. */
const BYTES_PER_MS = 8;

interface PendingMark {
  seq: number;
  /** Total bytes sent up to and including the chunk this mark follows. */
  sentThrough: number;
}

export type MarkOutcome = "played" | "dropped" | "unknown";

export class PlaybackTracker {
  #seq = 0;
  #sentBytes = 0;
  #playedBytes = 0;
  #clearedThrough = 0;
  #pending: PendingMark[] = [];

  /** Records a chunk sent to the phone. @returns the name of the mark to send right after it */
  sent(bytes: number): string {
    this.#sentBytes += bytes;
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
   * Records a `clear`: everything pending is dropped, and its late echoes will say so.
   * @returns how many marks (chunks) were still queued
   */
  clear(): number {
    const dropped = this.#pending.length;
    this.#clearedThrough = this.#seq;
    this.#pending = [];
    this.#playedBytes = this.#sentBytes;
    return dropped;
  }

  /** True when everything sent has been heard or dropped. */
  get idle(): boolean {
    return this.#pending.length === 0;
  }

  /** Chunks still waiting to be heard. */
  get pendingMarks(): number {
    return this.#pending.length;
  }

  /** Audio queued on the phone and not yet heard. */
  get queuedMs(): number {
    return (this.#sentBytes - this.#playedBytes) / BYTES_PER_MS;
  }
}
