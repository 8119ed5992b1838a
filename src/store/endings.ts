/**
 * The outbox of ended calls (`call_endings`): a trigger adds a row whenever a call's record ends,
 * whichever code path ended it. Each row is claimed by one process at a time (a lease), counted
 * once in the metrics and delivered to the events webhook with retries; its state shows on the call.
 */
import type { Database, Statement } from "bun:sqlite";
import type { NamedParams } from "./sql.ts";

export type EndingState = "new" | "pending" | "delivered" | "failed" | "none";

/** One ended call in the outbox. */
export interface CallEnding {
  call_sid: string;
  ended_at: string;
  /** Counted in the metrics (by the process that first claimed it). */
  counted: boolean;
  /** new: not looked at yet; pending: to deliver; none: no webhook configured. */
  state: EndingState;
  attempts: number;
  next_attempt_at: string;
  last_status: number | null;
  last_error: string | null;
  delivered_at: string | null;
}

/** What becomes of a claimed ending; its lease is freed with it. */
export type EndingUpdate = Partial<
  Pick<
    CallEnding,
    | "counted"
    | "state"
    | "attempts"
    | "next_attempt_at"
    | "last_status"
    | "last_error"
    | "delivered_at"
  >
>;

export interface ClaimOptions {
  /** Rows due by then (ISO). */
  dueBy: string;
  /** Now (ISO): leases that ran out before it are free. */
  now: string;
  /** The lease this process takes, until then (ISO). */
  leaseUntil: string;
  limit: number;
}

/** A stored row: `counted` is an integer. */
export type EndingRow = Omit<CallEnding, "counted"> & { counted: number };

export const toEnding = ({ counted, ...row }: EndingRow): CallEnding => ({
  ...row,
  counted: Boolean(counted),
});

/** The parameters of `settle`: every column, null where it stays as it is. */
export function settleParams(sid: string, changes: EndingUpdate) {
  return {
    sid,
    counted: changes.counted === undefined ? null : Number(changes.counted),
    state: changes.state ?? null,
    attempts: changes.attempts ?? null,
    next_attempt_at: changes.next_attempt_at ?? null,
    last_status: changes.last_status ?? null,
    last_error: changes.last_error ?? null,
    delivered_at: changes.delivered_at ?? null,
  };
}

export class EndingRepository {
  readonly #claim: Statement<EndingRow, [NamedParams]>;
  readonly #settle: Statement<unknown, [NamedParams]>;
  readonly #get: Statement<EndingRow, [string]>;
  readonly #count: Statement<{ call_sid: string }, [NamedParams]>;

  constructor(
    db: Database,
    private readonly owner: string,
  ) {
    // One statement: the write lock makes it one step, so two processes never claim one row.
    this.#claim = db.prepare(
      `UPDATE call_endings SET lease_owner = $owner, lease_until = $lease_until
       WHERE call_sid IN (
         SELECT call_sid FROM call_endings
         WHERE state IN ('new', 'pending') AND next_attempt_at <= $due_by
           AND (lease_until IS NULL OR lease_until < $now)
         ORDER BY next_attempt_at LIMIT $limit)
       RETURNING call_sid, ended_at, counted, state, attempts, next_attempt_at, last_status,
                 last_error, delivered_at`,
    );
    this.#settle = db.prepare(
      `UPDATE call_endings SET
         counted = coalesce($counted, counted),
         state = coalesce($state, state),
         attempts = coalesce($attempts, attempts),
         next_attempt_at = coalesce($next_attempt_at, next_attempt_at),
         last_status = coalesce($last_status, last_status),
         last_error = coalesce($last_error, last_error),
         delivered_at = coalesce($delivered_at, delivered_at),
         lease_owner = NULL, lease_until = NULL
       WHERE call_sid = $sid AND lease_owner = $owner`,
    );
    this.#count = db.prepare(
      `UPDATE call_endings SET counted = 1
       WHERE call_sid = $sid AND counted = 0 AND lease_owner = $owner RETURNING call_sid`,
    );
    this.#get = db.prepare(
      `SELECT call_sid, ended_at, counted, state, attempts, next_attempt_at, last_status,
              last_error, delivered_at FROM call_endings WHERE call_sid = ?`,
    );
  }

  claim({ dueBy, now, leaseUntil, limit }: ClaimOptions): CallEnding[] {
    return this.#claim
      .all({ owner: this.owner, lease_until: leaseUntil, due_by: dueBy, now, limit })
      .map(toEnding);
  }

  settle(sid: string, changes: EndingUpdate): void {
    this.#settle.run({ ...settleParams(sid, changes), owner: this.owner });
  }

  markCounted(sid: string): boolean {
    return this.#count.get({ sid, owner: this.owner }) !== null;
  }

  get(sid: string): CallEnding | undefined {
    const row = this.#get.get(sid);
    return row ? toEnding(row) : undefined;
  }
}
