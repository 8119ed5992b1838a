/**
 * Write-behind for call data: writes are held in memory and applied together, in one transaction,
 * a short interval after the first of them (and whenever `flush` is called: before any read or
 * direct write of the same data, at a call's end, at shutdown). Nothing on a call's audio path ever
 * waits on the database; a crash loses at most the writes of the last interval.
 */
import type { Database } from "bun:sqlite";
import type { Clock, Timer } from "../clock.ts";

/** One held write: a prepared statement run with values captured when the write was made. */
export type HeldWrite = () => void;

export interface WriteBehindOptions {
  /** How long the first held write waits for others before they are all written together. */
  intervalMs: number;
  /** How long a write waits for another process's lock, except in the background (default 5 s). */
  busyTimeoutMs: number;
  /** Writes the database refused (after each was tried on its own); the others were written. */
  onFailure(error: unknown, failed: number): void;
}

/**
 * Most writes held while the database stays locked (an hour of a busy service's events); beyond
 * that the oldest are dropped and reported rather than memory growing without end.
 */
export const MAX_HELD_WRITES = 100_000;

export class WriteBehind {
  #held: HeldWrite[] = [];
  #timer: Timer | undefined;
  #stopped = false;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly options: WriteBehindOptions,
  ) {}

  /** Writes held and not yet applied. */
  get held(): number {
    return this.#held.length;
  }

  /** Holds `write` until the next flush. */
  add(write: HeldWrite): void {
    this.#held.push(write);
    this.#dropBeyondLimit();
    this.#schedule();
  }

  /**
   * Writes what is held now, waiting for another process's lock as any write does; throws if
   * writes are still held after that, so that a write made now cannot land before older ones.
   */
  flushBeforeWrite(): void {
    this.flush();
    if (this.#held.length > 0)
      throw Object.assign(new Error("the database is locked by another process"), {
        code: "SQLITE_BUSY",
      });
  }

  /** No more flushing (the database is closing): returns how many writes were still held. */
  stop(): number {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    const left = this.#held.length;
    this.#held = [];
    return left;
  }

  /**
   * Applies every held write in one transaction, in the order they were made. If the transaction
   * fails, each write is tried again on its own, so one bad write does not take the others with it;
   * while the database is locked by another process, the writes stay held for the next interval.
   */
  flush(): void {
    if (this.#held.length === 0 || this.#stopped) return;
    this.#timer?.cancel();
    this.#timer = undefined;
    const batch = this.#held;
    this.#held = [];
    try {
      this.db.transaction(() => {
        for (const write of batch) write();
      })();
    } catch (error) {
      if (isBusy(error)) this.#holdAgain(batch);
      else this.#oneByOne(batch);
    }
  }

  #oneByOne(batch: HeldWrite[]): void {
    let failed = 0;
    let lastError: unknown;
    for (const [index, write] of batch.entries()) {
      try {
        write();
      } catch (error) {
        if (isBusy(error)) {
          this.#holdAgain(batch.slice(index));
          break;
        }
        failed += 1;
        lastError = error;
      }
    }
    if (failed > 0) this.options.onFailure(lastError, failed);
  }

  /** Puts writes back in front of any made since, to be tried again next interval. */
  #holdAgain(writes: HeldWrite[]): void {
    this.#held = [...writes, ...this.#held];
    this.#dropBeyondLimit();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer ??= this.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#flushInBackground();
    }, this.options.intervalMs);
  }

  /**
   * The interval's flush does not wait for another process's lock: it runs on the event loop that
   * carries every call's audio. Locked, the writes stay held for the next interval.
   */
  #flushInBackground(): void {
    this.db.run("PRAGMA busy_timeout = 0");
    try {
      this.flush();
    } finally {
      this.db.run(`PRAGMA busy_timeout = ${this.options.busyTimeoutMs}`);
    }
  }

  #dropBeyondLimit(): void {
    const excess = this.#held.length - MAX_HELD_WRITES;
    if (excess <= 0) return;
    this.#held.splice(0, excess);
    this.options.onFailure(
      new Error("the database stayed locked; the oldest held writes were dropped"),
      excess,
    );
  }
}

/** The database is locked by another connection (SQLITE_BUSY/SQLITE_LOCKED and their variants). */
function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^SQLITE_(BUSY|LOCKED)/.test(code);
}
