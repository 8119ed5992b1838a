/**
 * Calls and their append-only timeline on PostgreSQL: the same rows and answers as the SQLite
 * `CallRepository`. Timeline entries and `updateLater` changes are held as data and written behind
 * (`PostgresWriteBehind`); every read first waits for what is held to be written, and every direct
 * write runs after it in the same queue, so readers see everything recorded so far and a direct
 * write never lands before an older held one.
 */
import type { SQL } from "bun";
import type { Clock } from "../../clock.ts";
import {
  type CallEvent,
  type CallEventInput,
  type CallListQuery,
  type CallRecord,
  type CallRow,
  type CallUpdate,
  jsonColumns,
  listFilters,
  type NewCall,
  toRecord,
} from "../calls.ts";
import { fallbackOutcome } from "../outcomes.ts";
import type { CallStore } from "../port.ts";
import { PostgresWriteBehind } from "./write-behind.ts";

/** A `call_events` row as Bun reads it: `id` is int8, which comes back as a decimal string. */
interface EventRow {
  id: string;
  call_sid: string;
  at: string;
  kind: string;
  data: string;
}

/** Every column `update` sets, null where the change leaves the column as it is. */
interface CallChanges {
  sid: string;
  status: string | null;
  answered_by: string | null;
  outcome: string | null;
  outcome_detail: string | null;
  end_reason: string | null;
  answered_at: string | null;
  ended_at: string | null;
  agent_request_id: string | null;
  /** The outcome the end reason implies, for a record that ends without one. */
  fallback_outcome: string | null;
  caller_audio: string | null;
  message: string | null;
  transfer: string | null;
  recording: string | null;
  /** No process holds the call any more: its owner is cleared. */
  released: boolean;
}

/** A write held for the next flush, as the values to write. */
type HeldCallWrite =
  | { table: "call_events"; callSid: string; at: string; kind: string; data: string }
  | { table: "calls"; changes: CallChanges };

/**
 * Which open records `#end` ends: one call's, those held by this process or by others, or the live
 * ones of instances silent since a moment.
 */
type EndTarget = { sid: string } | { holder: "mine" | "others" } | { silentSince: string };

export interface PostgresCallStoreOptions {
  /** This process's instance id, written on every call it creates or streams. */
  owner: string;
  /** How long held writes wait before they are written together. */
  flushIntervalMs: number;
  /** Held writes the database refused or that were dropped. */
  onWriteFailure(error: unknown, failed: number): void;
}

export class PostgresCallStore implements CallStore {
  readonly owner: string;
  readonly #writes: PostgresWriteBehind<HeldCallWrite>;
  readonly #onWriteFailure: (error: unknown, failed: number) => void;

  constructor(
    private readonly sql: SQL,
    private readonly clock: Clock,
    { owner, flushIntervalMs, onWriteFailure }: PostgresCallStoreOptions,
  ) {
    this.owner = owner;
    this.#onWriteFailure = onWriteFailure;
    this.#writes = new PostgresWriteBehind(sql, clock, {
      intervalMs: flushIntervalMs,
      apply: writeHeld,
      onFailure: onWriteFailure,
    });
  }

  // Each write is stamped when it is asked for, as on SQLite, not when its turn in the queue comes.
  create(call: NewCall): Promise<CallRecord> {
    const now = this.clock.now().toISOString();
    return this.#writes.afterHeldWrites(async () => {
      const [row] = await this.#insert<[CallRow]>(call, now, this.sql``);
      return toRecord(row);
    });
  }

  started(sid: string): Promise<CallRecord | undefined> {
    const now = this.clock.now().toISOString();
    return this.#writes.afterHeldWrites(async () => {
      const [row] = await this.sql<CallRow[]>`
        UPDATE calls SET status = 'in-progress', answered_at = coalesce(answered_at, ${now}),
                         owner = ${this.owner}
        WHERE sid = ${sid} AND ended_at IS NULL RETURNING *`;
      return row && toRecord(row);
    });
  }

  endOpen(reason: string, { mine }: { mine: boolean }): Promise<CallRecord[]> {
    const detail = mine ? "the service exited" : "the service stopped unexpectedly";
    return this.#end({ holder: mine ? "mine" : "others" }, reason, detail);
  }

  endLost(silentSince: string): Promise<CallRecord[]> {
    return this.#end(
      { silentSince },
      "instance_lost",
      `the instance holding the call stopped answering (no heartbeat since ${silentSince})`,
    );
  }

  async endIfOpen(sid: string, reason: string, detail: string): Promise<CallRecord | undefined> {
    const [ended] = await this.#end({ sid }, reason, detail);
    return ended;
  }

  /**
   * Ends the open records `target` names and adds their `ended` timeline entries, in one
   * transaction. Answered calls (every inbound call that reached us was answered) completed; calls
   * that never got that far were cancelled.
   */
  #end(target: EndTarget, reason: string, detail: string): Promise<CallRecord[]> {
    const which =
      "sid" in target
        ? this.sql`sid = ${target.sid}`
        : "silentSince" in target
          ? this.sql`status = 'in-progress' AND owner <> ${this.owner}
              AND NOT EXISTS (SELECT 1 FROM instances
                              WHERE id = calls.owner AND heartbeat_at >= ${target.silentSince})`
          : target.holder === "mine"
            ? this.sql`owner = ${this.owner}`
            : this.sql`(owner IS NULL OR owner <> ${this.owner})
                AND coalesce(transfer::jsonb ->> 'result', '') <> 'pending'`;
    const now = this.clock.now().toISOString();
    return this.#writes.afterHeldWrites(() =>
      this.sql.begin(async (tx) => {
        const rows = await tx<CallRow[]>`
          WITH ended AS (
            UPDATE calls SET ended_at = ${now}, end_reason = ${reason},
              outcome = coalesce(outcome, ${fallbackOutcome(reason)}),
              status = CASE WHEN answered_at IS NOT NULL OR status = 'in-progress' OR direction = 'inbound'
                            THEN 'completed' ELSE 'canceled' END
            WHERE ended_at IS NULL AND ${which}
            RETURNING *)
          SELECT * FROM ended ORDER BY created_at, sid`;
        const data = JSON.stringify({ reason, detail });
        for (const row of rows) {
          await insertEvent(tx, { callSid: row.sid, at: now, kind: "ended", data });
        }
        return rows.map(toRecord);
      }),
    );
  }

  ensure(call: NewCall): Promise<CallRecord> {
    const now = this.clock.now().toISOString();
    return this.#writes.afterHeldWrites(async () => {
      const [existing] = await this.#bySid(call.sid);
      if (existing) return toRecord(existing);
      // Another process may create it in between: then its row is the one to answer with.
      const [created] = await this.#insert(call, now, this.sql`ON CONFLICT (sid) DO NOTHING`);
      const [row] = created ? [created] : await this.#bySid<[CallRow]>(call.sid);
      return toRecord(row);
    });
  }

  async get(sid: string): Promise<CallRecord | undefined> {
    await this.#writes.flush();
    const [row] = await this.#bySid(sid);
    return row && toRecord(row);
  }

  update(sid: string, changes: CallUpdate): Promise<CallRecord | undefined> {
    return this.#writes.afterHeldWrites(async () => {
      const [row] = await updateCall(this.sql, callChanges(sid, changes));
      return row && toRecord(row);
    });
  }

  updateLater(sid: string, changes: CallUpdate): void {
    this.#writes.add({ table: "calls", changes: callChanges(sid, changes) });
  }

  async list(query: CallListQuery): Promise<CallRecord[]> {
    await this.#writes.flush();
    const f = listFilters(query);
    const rows = await this.sql<CallRow[]>`
      SELECT * FROM calls
      WHERE (${f.status}::text IS NULL OR status = ${f.status})
        AND (${f.scenario}::text IS NULL OR scenario = ${f.scenario})
        AND (${f.outcome}::text IS NULL OR outcome = ${f.outcome})
        AND (${f.direction}::text IS NULL OR direction = ${f.direction})
        AND (${f.from}::text IS NULL OR created_at >= ${f.from})
        AND (${f.to}::text IS NULL OR created_at < ${f.to})
      ORDER BY created_at DESC, sid DESC LIMIT ${f.limit} OFFSET ${f.offset}`;
    return rows.map(toRecord);
  }

  async lastEventId(): Promise<number> {
    await this.#writes.flush();
    const [row] = await this.sql<{ id: string | null }[]>`SELECT max(id) AS id FROM call_events`;
    return Number(row?.id ?? 0);
  }

  async eventsSince(after: number, limit: number): Promise<CallEvent[]> {
    await this.#writes.flush();
    const rows = await this.sql<EventRow[]>`
      SELECT * FROM call_events WHERE id > ${after} ORDER BY id LIMIT ${limit}`;
    return rows.map(toEvent);
  }

  appendEvent(callSid: string, event: CallEventInput): void {
    const at = this.clock.now().toISOString();
    let data: string;
    try {
      data = JSON.stringify(event.data);
    } catch (error) {
      // Never thrown at the audio path: reported as a write the database refused, as on SQLite.
      this.#onWriteFailure(error, 1);
      return;
    }
    this.#writes.add({ table: "call_events", callSid, at, kind: event.kind, data });
  }

  flush(): Promise<void> {
    return this.#writes.flush();
  }

  async events(callSid: string): Promise<CallEvent[]> {
    await this.#writes.flush();
    const rows = await this.sql<EventRow[]>`
      SELECT * FROM call_events WHERE call_sid = ${callSid} ORDER BY id`;
    return rows.map(toEvent);
  }

  /** @param onConflict what to do when the SID exists (nothing given: the insert fails) */
  #insert<Rows extends CallRow[] = CallRow[]>(
    call: NewCall,
    createdAt: string,
    onConflict: SQL.Query<unknown>,
  ): SQL.Query<Rows> {
    return this.sql<Rows>`
      INSERT INTO calls (sid, direction, from_number, to_number, scenario, lead_id, status, created_at, owner)
      VALUES (${call.sid}, ${call.direction}, ${call.from_number}, ${call.to_number}, ${call.scenario},
              ${call.lead_id ?? null}, ${call.status}, ${createdAt}, NULL)
      ${onConflict} RETURNING *`;
  }

  #bySid<Rows extends CallRow[] = CallRow[]>(sid: string): SQL.Query<Rows> {
    return this.sql<Rows>`SELECT * FROM calls WHERE sid = ${sid}`;
  }

  /** Writes what is held, then no more: the pool is closing. @returns how many writes were left */
  async close(): Promise<number> {
    await this.#writes.flush();
    return this.#writes.stop();
  }
}

function writeHeld(sql: SQL, write: HeldCallWrite): Promise<unknown> {
  return write.table === "calls" ? updateCall(sql, write.changes) : insertEvent(sql, write);
}

function insertEvent(
  sql: SQL,
  event: { callSid: string; at: string; kind: string; data: string },
): Promise<unknown> {
  return sql`INSERT INTO call_events (call_sid, at, kind, data)
             VALUES (${event.callSid}, ${event.at}, ${event.kind}, ${event.data})`;
}

function updateCall(sql: SQL, changes: CallChanges): SQL.Query<CallRow[]> {
  return sql<CallRow[]>`
    UPDATE calls SET
      status = coalesce(${changes.status}, status),
      answered_by = coalesce(${changes.answered_by}, answered_by),
      outcome = coalesce(${changes.outcome}, outcome, ${changes.fallback_outcome}),
      outcome_detail = coalesce(${changes.outcome_detail}, outcome_detail),
      end_reason = coalesce(${changes.end_reason}, end_reason),
      answered_at = coalesce(${changes.answered_at}, answered_at),
      ended_at = coalesce(${changes.ended_at}, ended_at),
      agent_request_id = coalesce(${changes.agent_request_id}, agent_request_id),
      caller_audio = coalesce(${changes.caller_audio}, caller_audio),
      message = coalesce(${changes.message}, message),
      transfer = coalesce(${changes.transfer}, transfer),
      recording = coalesce(${changes.recording}, recording),
      owner = CASE WHEN ${changes.released} THEN NULL ELSE owner END
    WHERE sid = ${changes.sid} RETURNING *`;
}

function callChanges(sid: string, changes: CallUpdate): CallChanges {
  return {
    sid,
    status: changes.status ?? null,
    answered_by: changes.answered_by ?? null,
    outcome: changes.outcome ?? null,
    outcome_detail: changes.outcome_detail ?? null,
    end_reason: changes.end_reason ?? null,
    answered_at: changes.answered_at ?? null,
    ended_at: changes.ended_at ?? null,
    agent_request_id: changes.agent_request_id ?? null,
    // A record that ends without an outcome gets the one its end reason implies.
    fallback_outcome: changes.end_reason ? fallbackOutcome(changes.end_reason) : null,
    ...jsonColumns(changes),
    released: changes.released === true,
  };
}

function toEvent(row: EventRow): CallEvent {
  return { ...row, id: Number(row.id), data: JSON.parse(row.data) } as CallEvent;
}
