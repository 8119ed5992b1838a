/**
 * Write-behind for call data on PostgreSQL: writes are held in memory as data and applied together,
 * in one transaction, a short interval after the first of them, and whenever `flush` is called.
 * Flushes and direct writes run in one queue, one after another, so flushes never interleave or
 * write twice. Each takes only the writes made before it was called: a direct write lands after
 * every write made before it and before every write made after it, as on SQLite, where both are
 * synchronous. Nothing on a call's audio path waits on the database.
 *
 * A crash loses what is held: at most the writes of the last interval, or, while the server does
 * not answer, everything held since it stopped answering (up to MAX_HELD_WRITES).
 */
import { SQL } from "bun";
import type { Clock, Timer } from "../../clock.ts";
import { MAX_HELD_WRITES } from "../write-behind.ts";

export interface PostgresWriteBehindOptions<Write> {
  /** How long the first held write waits for others before they are all written together. */
  intervalMs: number;
  /** Writes one held write with `sql` (the flush's transaction, or the pool when one is retried alone). */
  apply(sql: SQL, write: Write): Promise<unknown>;
  /** Writes the database refused or that were dropped; the others were written. */
  onFailure(error: unknown, failed: number): void;
}

/** A held write and its place in the order writes were made. */
interface Held<Write> {
  order: number;
  write: Write;
}

/**
 * SQLSTATE classes that blame the write itself: cardinality violation, data exception, integrity
 * constraint violation, syntax error or access rule violation, check option violation, and
 * PL/pgSQL's RAISE (the append-only trigger). Any other answer (a lost connection, a shutdown, a
 * deadlock, a database that is missing or refuses the login) says nothing about the writes: they
 * are held for the next interval.
 */
const REFUSED_CLASSES = new Set(["21", "22", "23", "42", "44", "P0"]);

export class PostgresWriteBehind<Write> {
  /** In the order the writes were made (writes tried again go back in front). */
  #held: Held<Write>[] = [];
  /** How many writes were ever made: the order of the next one. */
  #made = 0;
  #timer: Timer | undefined;
  #stopped = false;
  /** The end of the queue of flushes and direct writes; never rejects. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly sql: SQL,
    private readonly clock: Clock,
    private readonly options: PostgresWriteBehindOptions<Write>,
  ) {}

  /** Holds `write` until the next flush. */
  add(write: Write): void {
    this.#held.push({ order: this.#made, write });
    this.#made += 1;
    this.#dropBeyondLimit();
    this.#schedule();
  }

  /**
   * Writes what is held now, after any flush or direct write already queued. Never rejects: writes
   * the server refused are reported to `onFailure`; while it does not answer they stay held.
   */
  flush(): Promise<void> {
    const madeBefore = this.#made;
    return this.#enqueue(async () => {
      await this.#writeHeld(madeBefore);
    });
  }

  /**
   * Runs a direct write once the writes held now have been written, so that it cannot land before
   * them; rejects without running it when the server did not take them.
   */
  afterHeldWrites<T>(write: () => Promise<T>): Promise<T> {
    const madeBefore = this.#made;
    return this.#enqueue(async () => {
      const kept = await this.#writeHeld(madeBefore);
      if (kept) throw kept.error;
      return write();
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

  #enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(job);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Applies the held writes made before `madeBefore` in one transaction, in the order they were
   * made. If the server refuses the transaction, each write is tried again on its own, so one bad
   * write does not take the others with it; while the server does not answer, the writes stay held
   * for the next interval.
   * @returns why writes were kept, when they were
   */
  async #writeHeld(madeBefore: number): Promise<{ error: unknown } | undefined> {
    if (this.#stopped) return undefined;
    const newer = this.#held.findIndex((held) => held.order >= madeBefore);
    const batch = this.#held.splice(0, newer === -1 ? this.#held.length : newer);
    if (batch.length === 0) return undefined;
    if (this.#held.length === 0) {
      this.#timer?.cancel();
      this.#timer = undefined;
    }
    try {
      await this.sql.begin(async (tx) => {
        for (const { write } of batch) await this.options.apply(tx, write);
      });
      return undefined;
    } catch (error) {
      if (!isTransient(error)) return this.#oneByOne(batch);
      this.#holdAgain(batch);
      return { error };
    }
  }

  async #oneByOne(batch: Held<Write>[]): Promise<{ error: unknown } | undefined> {
    let failed = 0;
    let lastError: unknown;
    let kept: { error: unknown } | undefined;
    for (const [index, { write }] of batch.entries()) {
      try {
        await this.options.apply(this.sql, write);
      } catch (error) {
        if (isTransient(error)) {
          this.#holdAgain(batch.slice(index));
          kept = { error };
          break;
        }
        failed += 1;
        lastError = error;
      }
    }
    if (failed > 0) this.options.onFailure(lastError, failed);
    return kept;
  }

  /** Puts writes back in front of any made since, to be tried again next interval. */
  #holdAgain(writes: Held<Write>[]): void {
    this.#held = [...writes, ...this.#held];
    this.#dropBeyondLimit();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer ??= this.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.options.intervalMs);
  }

  #dropBeyondLimit(): void {
    const excess = this.#held.length - MAX_HELD_WRITES;
    if (excess <= 0) return;
    this.#held.splice(0, excess);
    this.options.onFailure(
      new Error("the database stayed unreachable; the oldest held writes were dropped"),
      excess,
    );
  }
}

/** The server did not answer (Bun's own errors: refused, closed, timed out) or not about the writes. */
function isTransient(error: unknown): boolean {
  if (!(error instanceof SQL.PostgresError)) return false;
  return error.errno === undefined || !REFUSED_CLASSES.has(error.errno.slice(0, 2));
}
