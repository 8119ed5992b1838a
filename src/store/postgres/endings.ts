/** The outbox of ended calls on PostgreSQL: as the SQLite `EndingRepository` (`../endings.ts`). */
import type { SQL } from "bun";
import {
  type CallEnding,
  type ClaimOptions,
  type EndingRow,
  type EndingUpdate,
  settleParams,
  toEnding,
} from "../endings.ts";
import type { EndingStore } from "../port.ts";

export class PostgresEndingStore implements EndingStore {
  constructor(
    private readonly sql: SQL,
    private readonly owner: string,
  ) {}

  async claim({ dueBy, now, leaseUntil, limit }: ClaimOptions): Promise<CallEnding[]> {
    // SKIP LOCKED: processes claiming at once each take other rows.
    const rows = await this.sql<EndingRow[]>`
      UPDATE call_endings SET lease_owner = ${this.owner}, lease_until = ${leaseUntil}
      WHERE call_sid IN (
        SELECT call_sid FROM call_endings
        WHERE state IN ('new', 'pending') AND next_attempt_at <= ${dueBy}
          AND (lease_until IS NULL OR lease_until < ${now})
        ORDER BY next_attempt_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      RETURNING call_sid, ended_at, counted, state, attempts, next_attempt_at, last_status,
                last_error, delivered_at`;
    return rows.map(toEnding);
  }

  async settle(sid: string, changes: EndingUpdate): Promise<void> {
    const p = settleParams(sid, changes);
    await this.sql`
      UPDATE call_endings SET
        counted = coalesce(${p.counted}, counted),
        state = coalesce(${p.state}, state),
        attempts = coalesce(${p.attempts}, attempts),
        next_attempt_at = coalesce(${p.next_attempt_at}, next_attempt_at),
        last_status = coalesce(${p.last_status}, last_status),
        last_error = coalesce(${p.last_error}, last_error),
        delivered_at = coalesce(${p.delivered_at}, delivered_at),
        lease_owner = NULL, lease_until = NULL
      WHERE call_sid = ${sid} AND lease_owner = ${this.owner}`;
  }

  async markCounted(sid: string): Promise<boolean> {
    const rows = await this.sql`
      UPDATE call_endings SET counted = 1
      WHERE call_sid = ${sid} AND counted = 0 AND lease_owner = ${this.owner} RETURNING call_sid`;
    return rows.length > 0;
  }

  async get(sid: string): Promise<CallEnding | undefined> {
    const [row] = await this.sql<EndingRow[]>`
      SELECT call_sid, ended_at, counted, state, attempts, next_attempt_at, last_status,
             last_error, delivered_at FROM call_endings WHERE call_sid = ${sid}`;
    return row ? toEnding(row) : undefined;
  }
}
