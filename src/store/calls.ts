/**
 * Calls and their append-only event timeline (status, AMD, transcript, function calls, barge-ins,
 * errors). Timeline entries and a live call's own updates are written behind (`WriteBehind`): held
 * and written together shortly after, stamped with the moment they happened; every read and every
 * direct write applies what is held first, so readers always see everything recorded so far.
 */
import type { Database, Statement } from "bun:sqlite";
import type { Clock } from "../clock.ts";
import { fallbackOutcome } from "./outcomes.ts";
import type { NamedParams } from "./sql.ts";
import type { WriteBehind } from "./write-behind.ts";

export type CallDirection = "inbound" | "outbound";

export interface CallRecord {
  sid: string;
  direction: CallDirection;
  from_number: string;
  to_number: string;
  scenario: string;
  lead_id: string | null;
  /** Twilio call status: queued, ringing, in-progress, completed, busy, failed, no-answer, canceled. */
  status: string;
  /** Twilio AMD verdict (human, machine_end_beep, fax, unknown, …). */
  answered_by: string | null;
  outcome: string | null;
  outcome_detail: string | null;
  /** Why the call ended, in words (caller hung up, agent error, silence, …). */
  end_reason: string | null;
  created_at: string;
  answered_at: string | null;
  ended_at: string | null;
  /** The process (instance id) whose session carries the call's stream, once it has started. */
  owner: string | null;
  /** Deepgram's request id of the (latest) agent session, for support requests. */
  agent_request_id: string | null;
  /** What became of the caller's audio, written when the call's stream ends. */
  caller_audio: CallerAudioCounts | null;
  /** A message the caller left for a person (`take_message`), to act on after the call. */
  message: TakenMessage | null;
  /** The caller's transfer to a person (`transfer_call`), once one was started. */
  transfer: TransferRecord | null;
  /** The call's recording (RECORDING=local), once its stream has ended. */
  recording: RecordingInfo | null;
}

/** A call's recording: a file in RECORDINGS_DIR, until retention deletes it. */
export interface RecordingInfo {
  file: string;
  duration_ms: number;
  bytes: number;
  /** When RECORDING_RETENTION_DAYS deleted the file (the record keeps this note). */
  deleted_at?: string;
}

/** How a transfer went: Twilio's DialCallStatus, `answered` for a person who picked up. */
export type TransferResult = "pending" | "answered" | "no-answer" | "busy" | "failed" | "canceled";

/** A transfer of the caller to a person, as the call record shows it. */
export interface TransferRecord {
  requested_at: string;
  /** The person's number, E.164 (personal data). */
  to: string;
  reason: string;
  /** The agent's briefing, spoken to the person before the caller is connected. */
  summary: string;
  result: TransferResult;
  /** Seconds the caller talked with the person (Twilio's DialCallDuration), when it reports one. */
  talk_seconds?: number;
  /** When Twilio reported the result. */
  result_at?: string;
}

/** What the caller asked a person to be told, and how to reach them. */
export interface TakenMessage {
  caller_name: string;
  /** E.164; null when the caller gave none and their number is withheld. */
  callback_number: string | null;
  message: string;
  taken_at: string;
}

/** Why a caller frame was not forwarded to the agent, by design. */
export type HeldBackReason =
  /** Before the agent had applied its settings (a "Hello?" would barge in on the greeting). */
  | "before_agent_ready"
  /** Outbound, before the answering-machine verdict (the caller may be a machine). */
  | "awaiting_verdict"
  /** While a dropped agent socket was being replaced. */
  | "agent_reconnecting"
  /** After hanging up began (goodbye, voicemail, apology). */
  | "ending";

/** A call's caller frames: received from the phone, forwarded to the agent, held back by design. */
export interface CallerAudioCounts {
  received: number;
  forwarded: number;
  held_back: Record<HeldBackReason, number>;
}

export type NewCall = Pick<
  CallRecord,
  "sid" | "direction" | "from_number" | "to_number" | "scenario" | "status"
> & {
  lead_id?: string | null;
};

/** Fields that change over a call's life; unset fields keep their value. */
export type CallUpdate = Partial<
  Pick<
    CallRecord,
    | "status"
    | "answered_by"
    | "outcome"
    | "outcome_detail"
    | "end_reason"
    | "answered_at"
    | "ended_at"
    | "agent_request_id"
  >
> & {
  caller_audio?: CallerAudioCounts;
  message?: TakenMessage;
  transfer?: TransferRecord;
  recording?: RecordingInfo;
  /**
   * No process holds the call any more (it was handed to a person): no instance's exit or death
   * ends its record, and a lone instance's restart leaves it open while the transfer is pending.
   */
  released?: true;
};

/** The agent's LatencyReport for one turn, in milliseconds (each figure only when reported). */
export interface LatencyFigures {
  /** The caller's end of speech → the agent's first audio byte. */
  total_ms?: number;
  tts_ms?: number;
  /** Speech recognition's share (reported by newer agents). */
  stt_ms?: number;
  ttt_token_ms?: number;
  ttt_text_ms?: number;
  ttt_tool_ms?: number;
  ttt_thinking_ms?: number;
}

/** One entry of a call's timeline, typed by kind. */
export type CallEventInput =
  | { kind: "status"; data: { status: string } }
  | { kind: "amd"; data: { answered_by: string; detection_ms?: number } }
  | { kind: "transcript"; data: { role: "user" | "assistant"; text: string } }
  | {
      kind: "function_call";
      data: {
        id: string;
        name: string;
        arguments: unknown;
        result: string;
        ok: boolean;
        duration_ms: number;
        /** The agent withdrew the call while it ran: no answer was sent, staged effects dropped. */
        cancelled?: boolean;
      };
    }
  | {
      kind: "function_call_cancelled";
      /** `answered`: the cancel came after the answer; an end it asked for was taken back. */
      data: { id: string; name: string; answered: boolean };
    }
  | { kind: "latency"; data: LatencyFigures }
  | { kind: "barge_in"; data: { unplayed_marks: number; unplayed_ms: number } }
  /** A keypad digit the caller pressed, passed to the agent as their words. */
  | { kind: "dtmf"; data: { digit: string } }
  /** The agent socket dropped mid-call and a new one took the conversation over. */
  | { kind: "agent_reconnected"; data: { reason: string; history_items: number } }
  /** The agent session's Welcome: Deepgram's request id, for support requests. */
  | { kind: "agent_connected"; data: { request_id: string | null; connect_ms?: number } }
  /** The caller's end of turn (their transcript line) → the agent's first audio sent to the phone. */
  | { kind: "turn"; data: { latency_ms: number } }
  /** Instructions added to the agent's prompt during the call (e.g. to wrap up). */
  | { kind: "prompt_updated"; data: { reason: string } }
  /** Twilio's `<Stream statusCallback>` report; `error` is its StreamError (stream-error only). */
  | {
      kind: "stream";
      data: {
        event: "stream-started" | "stream-stopped" | "stream-error";
        stream_sid: string;
        error?: string;
      };
    }
  /**
   * The caller's transfer to a person: `dialling` once Twilio is asked to, `failed` when it
   * refused, `handed_off` when this leg's stream stopped, `result` when Twilio reported the dial.
   */
  | {
      kind: "transfer";
      data:
        | { stage: "dialling"; reason: string }
        | { stage: "failed"; error: string }
        | { stage: "handed_off" }
        | { stage: "result"; result: TransferResult; talk_seconds?: number };
    }
  | { kind: "error"; data: { source: string; message: string; code?: string } }
  | { kind: "ended"; data: { reason: string; detail: string } };

export type CallEvent = CallEventInput & { id: number; call_sid: string; at: string };

export interface CallListQuery {
  status?: string;
  scenario?: string;
  outcome?: string;
  direction?: CallDirection;
  /** Created at or after (ISO). */
  from?: string;
  /** Created before (ISO). */
  to?: string;
  limit: number;
  offset?: number;
}

/** The filters of a list query, each null when not given (the statements' parameters). */
export function listFilters(query: CallListQuery) {
  return {
    status: query.status ?? null,
    scenario: query.scenario ?? null,
    outcome: query.outcome ?? null,
    direction: query.direction ?? null,
    from: query.from ?? null,
    to: query.to ?? null,
    limit: query.limit,
    offset: query.offset ?? 0,
  };
}

/**
 * A `calls` row as stored, on SQLite and PostgreSQL alike: `caller_audio`, `message`, `transfer`
 * and `recording` are JSON text.
 */
export type CallRow = Omit<CallRecord, "caller_audio" | "message" | "transfer" | "recording"> & {
  caller_audio: string | null;
  message: string | null;
  transfer: string | null;
  recording: string | null;
};

interface EventRow {
  id: number;
  call_sid: string;
  at: string;
  kind: string;
  data: string;
}

export class CallRepository {
  readonly #insert: Statement<CallRow, [NamedParams]>;
  readonly #update: Statement<CallRow, [NamedParams]>;
  readonly #bySid: Statement<CallRow, [string]>;
  readonly #page: Statement<CallRow, [NamedParams]>;
  readonly #eventsSince: Statement<EventRow, [NamedParams]>;
  readonly #lastEventId: Statement<{ id: number | null }, []>;
  readonly #appendEvent: Statement<EventRow, [NamedParams]>;
  readonly #events: Statement<EventRow, [string]>;
  readonly #started: Statement<CallRow, [NamedParams]>;
  readonly #endOpen: Statement<CallRow, [NamedParams]>;
  readonly #db: Database;
  readonly #writes: WriteBehind;

  /**
   * @param owner this process's instance id, written on every call whose stream it carries
   * @param writes where timeline entries and `updateLater` changes wait to be written
   */
  constructor(
    db: Database,
    private readonly clock: Clock,
    readonly owner: string,
    writes: WriteBehind,
  ) {
    this.#db = db;
    this.#writes = writes;
    this.#insert = db.prepare(
      `INSERT INTO calls (sid, direction, from_number, to_number, scenario, lead_id, status, created_at, owner)
       VALUES ($sid, $direction, $from_number, $to_number, $scenario, $lead_id, $status, $created_at, $owner)
       RETURNING *`,
    );
    this.#started = db.prepare(
      `UPDATE calls SET status = 'in-progress', answered_at = coalesce(answered_at, $now), owner = $owner
       WHERE sid = $sid AND ended_at IS NULL RETURNING *`,
    );
    // Answered calls (every inbound call that reached us was answered) completed; calls that never
    // got that far were cancelled.
    this.#endOpen = db.prepare(
      `UPDATE calls SET ended_at = $now, end_reason = $reason,
         outcome = coalesce(outcome, $fallback_outcome),
         status = CASE WHEN answered_at IS NOT NULL OR status = 'in-progress' OR direction = 'inbound'
                       THEN 'completed' ELSE 'canceled' END
       WHERE ended_at IS NULL
         AND ($sid IS NULL OR sid = $sid)
         AND CASE $holder WHEN 'mine' THEN owner = $owner
                          WHEN 'others' THEN (owner IS NULL OR owner <> $owner)
                            AND coalesce(transfer ->> '$.result', '') <> 'pending'
                          WHEN 'lost' THEN status = 'in-progress' AND owner <> $owner
                            AND NOT EXISTS (SELECT 1 FROM instances
                                            WHERE id = calls.owner AND heartbeat_at >= $silent_since)
                          ELSE 1 END
       RETURNING *`,
    );
    this.#update = db.prepare(
      `UPDATE calls SET
         status = coalesce($status, status),
         answered_by = coalesce($answered_by, answered_by),
         outcome = coalesce($outcome, outcome, $fallback_outcome),
         outcome_detail = coalesce($outcome_detail, outcome_detail),
         end_reason = coalesce($end_reason, end_reason),
         answered_at = coalesce($answered_at, answered_at),
         ended_at = coalesce($ended_at, ended_at),
         agent_request_id = coalesce($agent_request_id, agent_request_id),
         caller_audio = coalesce($caller_audio, caller_audio),
         message = coalesce($message, message),
         transfer = coalesce($transfer, transfer),
         recording = coalesce($recording, recording),
         owner = CASE WHEN $released THEN NULL ELSE owner END
       WHERE sid = $sid RETURNING *`,
    );
    this.#bySid = db.prepare("SELECT * FROM calls WHERE sid = ?");
    this.#page = db.prepare(
      `SELECT * FROM calls WHERE ($status IS NULL OR status = $status)
         AND ($scenario IS NULL OR scenario = $scenario)
         AND ($outcome IS NULL OR outcome = $outcome)
         AND ($direction IS NULL OR direction = $direction)
         AND ($from IS NULL OR created_at >= $from)
         AND ($to IS NULL OR created_at < $to)
       ORDER BY created_at DESC, sid DESC LIMIT $limit OFFSET $offset`,
    );
    this.#lastEventId = db.prepare("SELECT max(id) AS id FROM call_events");
    this.#eventsSince = db.prepare(
      "SELECT * FROM call_events WHERE id > $after ORDER BY id LIMIT $limit",
    );
    this.#appendEvent = db.prepare(
      "INSERT INTO call_events (call_sid, at, kind, data) VALUES ($call_sid, $at, $kind, $data)",
    );
    this.#events = db.prepare("SELECT * FROM call_events WHERE call_sid = ? ORDER BY id");
  }

  create(call: NewCall): CallRecord {
    this.#writes.flushBeforeWrite();
    return toRecord(
      this.#insert.get({
        lead_id: null,
        ...call,
        created_at: this.clock.now().toISOString(),
        // Held by no process until its stream starts (`started`): a webhook's instance may stop
        // before the stream arrives at another, and its departure must not end the call.
        owner: null,
      }) as CallRow,
    );
  }

  /**
   * The call's stream has started in this process: `in-progress`, answered now unless it already
   * was, held by this process. A no-op for a call that has ended.
   */
  started(sid: string): CallRecord | undefined {
    this.#writes.flushBeforeWrite();
    const now = this.clock.now().toISOString();
    return toRecordOrUndefined(this.#started.get({ sid, now, owner: this.owner }));
  }

  /**
   * Ends every open call record, with `reason` on the record and its timeline. `mine`: the records
   * this process holds (it is about to exit); otherwise those held by anyone else, which at start-up
   * are the calls a previous life of the service left open (one instance per database).
   * @returns the ended records
   */
  endOpen(reason: string, { mine }: { mine: boolean }): CallRecord[] {
    const detail = mine ? "the service exited" : "the service stopped unexpectedly";
    return this.#end({ reason, holder: mine ? "mine" : "others", sid: null }, detail);
  }

  /** Ends the live records of instances silent since `silentSince` (see the storage port). */
  endLost(silentSince: string): CallRecord[] {
    return this.#end(
      { reason: "instance_lost", holder: "lost", sid: null, silent_since: silentSince },
      `the instance holding the call stopped answering (no heartbeat since ${silentSince})`,
    );
  }

  /** Ends one call's record unless it has ended already. @returns the record, if this ended it */
  endIfOpen(sid: string, reason: string, detail: string): CallRecord | undefined {
    return this.#end({ reason, holder: "any", sid }, detail)[0];
  }

  #end(
    where: {
      reason: string;
      holder: "mine" | "others" | "lost" | "any";
      sid: string | null;
      silent_since?: string;
    },
    detail: string,
  ): CallRecord[] {
    this.#writes.flushBeforeWrite();
    return this.#db.transaction(() => {
      const now = this.clock.now().toISOString();
      const ended = this.#endOpen
        .all({
          silent_since: null,
          ...where,
          now,
          owner: this.owner,
          fallback_outcome: fallbackOutcome(where.reason),
        })
        .map(toRecord);
      for (const call of ended) {
        this.#insertEvent(call.sid, now, { kind: "ended", data: { reason: where.reason, detail } });
      }
      return ended;
    })();
  }

  /** Creates the call unless a row with this SID exists (a webhook may have created it first). */
  ensure(call: NewCall): CallRecord {
    return this.get(call.sid) ?? this.create(call);
  }

  get(sid: string): CallRecord | undefined {
    this.#writes.flush();
    return toRecordOrUndefined(this.#bySid.get(sid));
  }

  /** @returns the updated call, or undefined when no call has this SID */
  update(sid: string, changes: CallUpdate): CallRecord | undefined {
    this.#writes.flushBeforeWrite();
    return toRecordOrUndefined(this.#update.get(updateParams(sid, changes)));
  }

  /** Like `update`, written behind: for a live call's own changes, made on its audio path. */
  updateLater(sid: string, changes: CallUpdate): void {
    const params = updateParams(sid, changes);
    this.#writes.add(() => this.#update.run(params));
  }

  /** Newest first, filtered by what the query gives. */
  list(query: CallListQuery): CallRecord[] {
    this.#writes.flush();
    return this.#page.all(listFilters(query)).map(toRecord);
  }

  lastEventId(): number {
    this.#writes.flush();
    return this.#lastEventId.get()?.id ?? 0;
  }

  /** Every call's timeline entries after `after` (an event id), in order, at most `limit`. */
  eventsSince(after: number, limit: number): CallEvent[] {
    this.#writes.flush();
    return this.#eventsSince.all({ after, limit }).map(toEvent);
  }

  /** Adds one entry to the call's timeline, stamped with the clock's time now; written behind. */
  appendEvent(callSid: string, event: CallEventInput): void {
    const at = this.clock.now().toISOString();
    this.#writes.add(() => this.#insertEvent(callSid, at, event));
  }

  /** Writes everything held for calls now (a call's end, shutdown). */
  flush(): void {
    this.#writes.flush();
  }

  /** The call's timeline in the order it happened. */
  events(callSid: string): CallEvent[] {
    this.#writes.flush();
    return this.#events.all(callSid).map(toEvent);
  }

  #insertEvent(callSid: string, at: string, event: CallEventInput): void {
    this.#appendEvent.run({
      call_sid: callSid,
      at,
      kind: event.kind,
      data: JSON.stringify(event.data),
    });
  }
}

function updateParams(sid: string, changes: CallUpdate): NamedParams {
  const { caller_audio, message, transfer, recording, released, ...fields } = changes;
  return {
    sid,
    status: null,
    answered_by: null,
    outcome: null,
    outcome_detail: null,
    end_reason: null,
    answered_at: null,
    ended_at: null,
    agent_request_id: null,
    ...fields,
    // A record that ends without an outcome gets the one its end reason implies.
    fallback_outcome: fields.end_reason ? fallbackOutcome(fields.end_reason) : null,
    ...jsonColumns({ caller_audio, message, transfer, recording }),
    released: released === true,
  };
}

/** The JSON columns a change sets, as text; null where it leaves them as they are. */
export function jsonColumns(
  changes: Pick<CallUpdate, "caller_audio" | "message" | "transfer" | "recording">,
): Pick<CallRow, "caller_audio" | "message" | "transfer" | "recording"> {
  const text = (value: unknown) => (value ? JSON.stringify(value) : null);
  return {
    caller_audio: text(changes.caller_audio),
    message: text(changes.message),
    transfer: text(changes.transfer),
    recording: text(changes.recording),
  };
}

/** A stored row as a record, its JSON columns parsed. */
export function toRecord(row: CallRow): CallRecord {
  const parsed = (text: string | null) => (text ? JSON.parse(text) : null);
  return {
    ...row,
    caller_audio: parsed(row.caller_audio),
    message: parsed(row.message),
    transfer: parsed(row.transfer),
    recording: parsed(row.recording),
  };
}

function toRecordOrUndefined(row: CallRow | null): CallRecord | undefined {
  return row ? toRecord(row) : undefined;
}

function toEvent(row: EventRow): CallEvent {
  return { ...row, data: JSON.parse(row.data) } as CallEvent;
}
