/**
 * Campaigns: lists of leads the dialer works through on its own. Three tables: the campaign (its
 * settings as JSON), each lead's place in it (`campaign_leads`: due when, attempts made, why it is
 * done) and each attempt (`campaign_attempts`), claimed in the database before it is dialled so
 * that no two processes dial the same one and a restart neither repeats nor forgets one. An
 * attempt is `dialling` from its claim until Twilio names the call (`placed`), then `ended` once
 * its call's record has. `requested_at` is set just before Twilio is asked: an attempt stopped
 * before it is released (it never rang), one stopped after it without a SID is `unknown`, never
 * retried. A number is called by one campaign lead at a time (a unique index).
 */
import type { Database, Statement } from "bun:sqlite";
import type { CallingWindow, NextStep, RetryPolicy } from "../campaigns/schedule.ts";
import type { NamedParams } from "./sql.ts";

export type CampaignState = "active" | "paused" | "cancelled" | "completed";
export type CampaignLeadState = "pending" | "calling" | "done" | "unknown" | "cancelled";
export type AttemptState = "dialling" | "placed" | "ended" | "failed" | "skipped" | "unknown";

/** What a campaign is asked to do (`POST /campaigns`), as stored in its `settings`. */
export interface CampaignSettings {
  window: CallingWindow;
  max_concurrent: number;
  max_per_minute: number;
  max_attempts: number;
  retry_after_minutes: RetryPolicy;
  retry_no_decision: boolean;
}

export interface Campaign extends CampaignSettings {
  id: string;
  name: string;
  scenario: string;
  from: string;
  /** The zone of leads that name none. */
  timezone: string;
  state: CampaignState;
  /** Why the service paused it (Twilio refused the account's calls); cleared on resume. */
  note: string | null;
  created_at: string;
  updated_at: string;
}

export type NewCampaign = Omit<Campaign, "id" | "state" | "note" | "created_at" | "updated_at">;

/** A lead as the campaign calls it: its number and zone, fixed when the campaign was made. */
export interface CampaignLeadInput {
  lead_id: string;
  phone: string;
  timezone: string;
}

export interface CampaignLead extends CampaignLeadInput {
  campaign_id: string;
  state: CampaignLeadState;
  attempts: number;
  next_attempt_at: string | null;
  /** A time the lead asked to be called back at, kept until the attempt under way ends. */
  callback_at: string | null;
  last_outcome: string | null;
  /** Why the lead is done: a final outcome, `max_attempts`, `cancelled` or `unknown`. */
  result: string | null;
  updated_at: string;
}

export interface Attempt {
  id: string;
  campaign_id: string;
  lead_id: string;
  /** 1 for the first attempt at this lead, then 2… */
  number: number;
  state: AttemptState;
  /** The instance that claimed it. */
  instance: string;
  claimed_at: string;
  /** Set just before Twilio was asked. */
  requested_at: string | null;
  call_sid: string | null;
  placed_at: string | null;
  outcome: string | null;
  ended_at: string | null;
  error: string | null;
}

/** A claimed attempt, ready to dial. */
export interface ClaimedAttempt {
  id: string;
  lead_id: string;
  phone: string;
  number: number;
}

export interface ClaimRequest {
  campaign: Campaign;
  now: string;
  /** At most this many (the service's free capacity); the campaign's own limits also apply. */
  limit: number;
  instance: string;
  /**
   * The first instant (ISO) at or after now when a lead in `timezone` may be rung: now, or later
   * (the lead waits until then), or undefined (never).
   */
  opening(timezone: string): string | undefined;
}

/** An attempt whose call has ended and that is not settled yet. */
export interface EndedAttempt {
  attempt_id: string;
  campaign_id: string;
  lead_id: string;
  outcome: string;
  ended_at: string;
  attempts: number;
  callback_at: string | null;
}

export interface CampaignSummary {
  /** Leads by their state in the campaign. */
  leads: Record<CampaignLeadState, number>;
  /** Leads with a result (done, cancelled or unknown), by it. */
  results: Record<string, number>;
  /** Attempts by state, and ended attempts by their call's outcome. */
  attempts: Record<AttemptState, number> & { total: number };
  outcomes: Record<string, number>;
  /** The next due leads, soonest first. */
  next_attempts: { lead_id: string; at: string }[];
}

/** One lead's part in a campaign, with its attempts and their calls. */
export interface CampaignLeadDetail extends CampaignLead {
  first_name: string;
  last_name: string;
  attempts_made: (Attempt & {
    call: { status: string; outcome: string | null; end_reason: string | null } | null;
  })[];
}

/** A stored campaign row: settings as JSON text. */
export interface CampaignRow {
  id: string;
  name: string;
  scenario: string;
  from_number: string;
  timezone: string;
  settings: string;
  state: CampaignState;
  note: string | null;
  created_at: string;
  updated_at: string;
}

export const toCampaign = ({ from_number, settings, ...row }: CampaignRow): Campaign => ({
  ...row,
  from: from_number,
  ...(JSON.parse(settings) as CampaignSettings),
});

/** The row of a new campaign. */
export function campaignRow(campaign: NewCampaign, now: string): CampaignRow {
  const { name, scenario, from, timezone, ...settings } = campaign;
  const stored: CampaignSettings = {
    window: settings.window,
    max_concurrent: settings.max_concurrent,
    max_per_minute: settings.max_per_minute,
    max_attempts: settings.max_attempts,
    retry_after_minutes: settings.retry_after_minutes,
    retry_no_decision: settings.retry_no_decision,
  };
  return {
    id: `cmp_${Bun.randomUUIDv7()}`,
    name,
    scenario,
    from_number: from,
    timezone,
    settings: JSON.stringify(stored),
    state: "active",
    note: null,
    created_at: now,
    updated_at: now,
  };
}

/** What `create` stored: the campaign, and the leads left out because their number is being called. */
export interface CreatedCampaign {
  campaign: Campaign;
  /** Leads not added: their number is another pending or calling lead's (here or elsewhere). */
  conflicts: string[];
}

/** What a sweep for interrupted attempts did. */
export interface SweepResult {
  /** Asked of Twilio, no SID stored: unknown. */
  unknown: Attempt[];
  /** Claimed but never asked of Twilio: released, their leads due again. */
  released: number;
}

/**
 * A `campaign_leads` row's number is no other lead's that is waiting or being called: the row may
 * become pending or calling (the unique index would refuse it otherwise).
 */
export const NUMBER_FREE = `NOT EXISTS (
  SELECT 1 FROM campaign_leads other
  WHERE other.phone = campaign_leads.phone AND other.state IN ('pending', 'calling')
    AND (other.campaign_id <> campaign_leads.campaign_id OR other.lead_id <> campaign_leads.lead_id))`;

/**
 * The lead's row once `next` is known; a cancelled campaign retries nothing, nor does a lead whose
 * number another campaign lead took on meanwhile (`numberTaken`: an unknown lead's late call).
 */
export function nextLeadState(
  next: NextStep,
  campaignState: CampaignState,
  numberTaken = false,
): { state: CampaignLeadState; result: string | null; next_attempt_at: string | null } {
  if (next.kind === "done") return { state: "done", result: next.result, next_attempt_at: null };
  if (numberTaken)
    return { state: "done", result: "number_called_elsewhere", next_attempt_at: null };
  if (campaignState === "cancelled")
    return { state: "cancelled", result: "cancelled", next_attempt_at: null };
  return { state: "pending", result: null, next_attempt_at: next.at.toISOString() };
}

/** Counts keyed by every state, zero where none. */
export function countsOf<K extends string>(
  keys: readonly K[],
  rows: { key: string; count: number | string }[],
): Record<K, number> {
  const counts = Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>;
  for (const { key, count } of rows) counts[key as K] = Number(count);
  return counts;
}

export const LEAD_STATES: readonly CampaignLeadState[] = [
  "pending",
  "calling",
  "done",
  "unknown",
  "cancelled",
];
export const ATTEMPT_STATES: readonly AttemptState[] = [
  "dialling",
  "placed",
  "ended",
  "failed",
  "skipped",
  "unknown",
];

/** Leads due for a claim are read in pages of this many. */
export const CLAIM_PAGE = 50;
/**
 * Due leads outside their window put off per claim at most: a backlog at a window's edge is worked
 * through over a few rounds, never in one long write.
 */
export const MAX_DEFERRALS = 200;

/** Whether any lead of a campaign is due (a cheap read before a claim's write transaction). */
export const DUE_SQL = `SELECT 1 FROM campaign_leads
  WHERE campaign_id = $1 AND state = 'pending' AND next_attempt_at <= $2 LIMIT 1`;
/** Whether any attempt was left `dialling` since before then (a read before the sweep's write). */
export const INTERRUPTED_SQL = `SELECT 1 FROM campaign_attempts
  WHERE state = 'dialling' AND (claimed_at < $1 OR requested_at < $1) LIMIT 1`;

export class CampaignRepository {
  readonly #insert: Statement<CampaignRow, [NamedParams]>;
  readonly #insertLead: Statement<{ lead_id: string }, [NamedParams]>;
  readonly #get: Statement<CampaignRow, [string]>;
  readonly #page: Statement<CampaignRow, [number, number]>;
  readonly #active: Statement<CampaignRow, []>;

  constructor(private readonly db: Database) {
    this.#insert = db.prepare(
      `INSERT INTO campaigns (id, name, scenario, from_number, timezone, settings, state, note, created_at, updated_at)
       VALUES ($id, $name, $scenario, $from_number, $timezone, $settings, $state, $note, $created_at, $updated_at)
       RETURNING *`,
    );
    this.#insertLead = db.prepare<{ lead_id: string }, [NamedParams]>(
      `INSERT INTO campaign_leads (campaign_id, lead_id, phone, timezone, state, attempts, next_attempt_at, updated_at)
       VALUES ($campaign_id, $lead_id, $phone, $timezone, 'pending', 0, $now, $now)
       ON CONFLICT DO NOTHING RETURNING lead_id`,
    );
    this.#get = db.prepare("SELECT * FROM campaigns WHERE id = ?");
    this.#page = db.prepare(
      "SELECT * FROM campaigns ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
    );
    this.#active = db.prepare("SELECT * FROM campaigns WHERE state = 'active' ORDER BY id");
  }

  /**
   * Stores the campaign with the leads whose number no other pending or calling lead has (here or
   * in another campaign). @returns undefined, storing nothing, when no lead could be added
   */
  create(
    campaign: NewCampaign,
    leads: readonly CampaignLeadInput[],
    now: string,
  ): CreatedCampaign | undefined {
    const nothing = new Error("no lead added");
    try {
      return this.db
        .transaction(() => {
          const row = this.#insert.get({ ...campaignRow(campaign, now) }) as CampaignRow;
          const conflicts = leads
            .filter((lead) => this.#insertLead.get({ campaign_id: row.id, ...lead, now }) === null)
            .map((lead) => lead.lead_id);
          if (conflicts.length === leads.length) throw nothing;
          return { campaign: toCampaign(row), conflicts };
        })
        .immediate();
    } catch (error) {
      if (error === nothing) return undefined;
      throw error;
    }
  }

  get(id: string): Campaign | undefined {
    const row = this.#get.get(id);
    return row ? toCampaign(row) : undefined;
  }

  /** Newest first. */
  list(limit: number, offset: number): Campaign[] {
    return this.#page.all(limit, offset).map(toCampaign);
  }

  active(): Campaign[] {
    return this.#active.all().map(toCampaign);
  }

  /**
   * Leads with a phone number that were never called and are in no campaign: `"leads":"all_new"`.
   */
  newLeads(limit: number): CampaignLeadInput[] {
    return this.db
      .query<{ lead_id: string; phone: string; timezone: string | null }, [number]>(
        `SELECT l.id AS lead_id, l.phone, l.timezone FROM leads l
         WHERE l.phone IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.lead_id = l.id)
           AND NOT EXISTS (SELECT 1 FROM campaign_leads cl WHERE cl.lead_id = l.id)
         ORDER BY l.created_at, l.id LIMIT ?`,
      )
      .all(limit)
      .map((row) => ({ ...row, timezone: row.timezone ?? "" }));
  }

  /** Of these leads, those still to be called (or being called) by another campaign, and which. */
  busyLeads(leadIds: readonly string[]): Map<string, string> {
    const busy = new Map<string, string>();
    const query = this.db.query<{ lead_id: string; campaign_id: string }, [string]>(
      `SELECT lead_id, campaign_id FROM campaign_leads
       WHERE lead_id = ? AND state IN ('pending', 'calling') LIMIT 1`,
    );
    for (const id of leadIds) {
      const row = query.get(id);
      if (row) busy.set(row.lead_id, row.campaign_id);
    }
    return busy;
  }

  /**
   * Moves the campaign from one of `from` to `to`. Cancelling also cancels its leads not yet being
   * called. @returns the campaign as it is now, or undefined when it was in none of `from`
   */
  transition(
    id: string,
    from: readonly CampaignState[],
    to: CampaignState,
    now: string,
  ): Campaign | undefined {
    return this.db
      .transaction(() => {
        const row = this.db
          .query<CampaignRow, [string, string, string, string]>(
            `UPDATE campaigns SET state = ?1, updated_at = ?2,
               note = CASE WHEN ?1 = 'active' THEN NULL ELSE note END
             WHERE id = ?3 AND state IN (SELECT value FROM json_each(?4)) RETURNING *`,
          )
          .get(to, now, id, JSON.stringify(from));
        if (!row) return undefined;
        if (to === "cancelled") {
          this.db.run(
            `UPDATE campaign_leads SET state = 'cancelled', result = 'cancelled', next_attempt_at = NULL, updated_at = ?
             WHERE campaign_id = ? AND state = 'pending'`,
            [now, id],
          );
        }
        return toCampaign(row);
      })
      .immediate();
  }

  /**
   * Marks an active campaign completed once no lead is pending or being called (a paused one
   * stays paused: it completes once resumed). @returns whether it did
   */
  completeIfDone(id: string, now: string): boolean {
    return (
      this.db
        .query(
          `UPDATE campaigns SET state = 'completed', updated_at = ?1
           WHERE id = ?2 AND state = 'active' AND NOT EXISTS (
             SELECT 1 FROM campaign_leads WHERE campaign_id = ?2 AND state IN ('pending', 'calling'))
           RETURNING id`,
        )
        .get(now, id) !== null
    );
  }

  /** The service pauses an active campaign, saying why. @returns it, or undefined when not active */
  suspend(id: string, note: string, now: string): Campaign | undefined {
    const row = this.db
      .query<CampaignRow, [string, string, string]>(
        `UPDATE campaigns SET state = 'paused', note = ?, updated_at = ?
         WHERE id = ? AND state = 'active' RETURNING *`,
      )
      .get(note, now, id);
    return row ? toCampaign(row) : undefined;
  }

  /**
   * Claims the due attempts of one campaign, in one write transaction: never more than its free
   * concurrency (attempts dialling or placed), its rate (attempts claimed in the last minute) or
   * `limit`; a due lead outside its window is put off to its next opening instead.
   */
  claim({ campaign, now, limit, instance, opening }: ClaimRequest): ClaimedAttempt[] {
    const minuteAgo = new Date(Date.parse(now) - 60_000).toISOString();
    // Most rounds find nothing due: a read, not the write lock, says so.
    if (limit <= 0 || !this.db.query(DUE_SQL).get(campaign.id, now)) return [];
    return this.db
      .transaction(() => {
        // Paused or cancelled since the round read it: nothing.
        if (this.#get.get(campaign.id)?.state !== "active") return [];
        const count = (sql: string, ...params: string[]) =>
          (this.db.query<{ n: number }, string[]>(sql).get(...params) as { n: number }).n;
        const inflight = count(
          `SELECT count(*) AS n FROM campaign_attempts
           WHERE state IN ('dialling', 'placed') AND campaign_id = ?`,
          campaign.id,
        );
        const recent = count(
          "SELECT count(*) AS n FROM campaign_attempts WHERE campaign_id = ? AND claimed_at > ?",
          campaign.id,
          minuteAgo,
        );
        let room = Math.min(
          limit,
          campaign.max_concurrent - inflight,
          campaign.max_per_minute - recent,
        );
        let deferrals = MAX_DEFERRALS;
        const claimed: ClaimedAttempt[] = [];
        const due = this.db.query<CampaignLead, [string, string, number]>(
          `SELECT * FROM campaign_leads
           WHERE campaign_id = ? AND state = 'pending' AND next_attempt_at <= ?
           ORDER BY next_attempt_at, lead_id LIMIT ?`,
        );
        while (room > 0 && deferrals > 0) {
          const page = due.all(campaign.id, now, CLAIM_PAGE);
          if (page.length === 0) break;
          for (const lead of page) {
            if (room === 0 || deferrals === 0) break;
            const opens = opening(lead.timezone);
            if (opens !== now) {
              // Outside its window: it waits for the next opening (never, with no opening).
              deferrals--;
              this.db.run(
                `UPDATE campaign_leads SET next_attempt_at = ?, state = ?, result = ?, updated_at = ?
                 WHERE campaign_id = ? AND lead_id = ? AND state = 'pending'`,
                [
                  opens ?? null,
                  opens ? "pending" : "done",
                  opens ? null : "no_window",
                  now,
                  campaign.id,
                  lead.lead_id,
                ],
              );
              continue;
            }
            const number = lead.attempts + 1;
            const id = `att_${Bun.randomUUIDv7()}`;
            // Only a lead still pending (not cancelled meanwhile) gets its attempt.
            const taken = this.db
              .query(
                `UPDATE campaign_leads SET state = 'calling', attempts = ?, next_attempt_at = NULL, updated_at = ?
                 WHERE campaign_id = ? AND lead_id = ? AND state = 'pending' RETURNING lead_id`,
              )
              .get(number, now, campaign.id, lead.lead_id);
            if (!taken) continue;
            this.db.run(
              `INSERT INTO campaign_attempts (id, campaign_id, lead_id, number, state, instance, claimed_at)
               VALUES (?, ?, ?, ?, 'dialling', ?, ?)`,
              [id, campaign.id, lead.lead_id, number, instance, now],
            );
            claimed.push({ id, lead_id: lead.lead_id, phone: lead.phone, number });
            room--;
          }
        }
        return claimed;
      })
      .immediate();
  }

  /**
   * The attempt is about to be asked of Twilio. @returns false when it is no longer this claim's
   * to dial (released meanwhile): it must not be.
   */
  requested(attemptId: string, now: string): boolean {
    return (
      this.db
        .query(
          `UPDATE campaign_attempts SET requested_at = ?
           WHERE id = ? AND state = 'dialling' AND requested_at IS NULL RETURNING id`,
        )
        .get(now, attemptId) !== null
    );
  }

  /** Twilio named the attempt's call (also after it was thought `unknown`). */
  placed(attemptId: string, callSid: string, now: string): void {
    this.db
      .transaction(() => {
        const attempt = this.db
          .query<{ campaign_id: string; lead_id: string }, [string, string, string]>(
            `UPDATE campaign_attempts SET state = 'placed', call_sid = ?, placed_at = ?
             WHERE id = ? AND state IN ('dialling', 'unknown') RETURNING campaign_id, lead_id`,
          )
          .get(callSid, now, attemptId);
        if (!attempt) return;
        // An unknown lead whose number another campaign took on meanwhile stays as it is.
        this.db.run(
          `UPDATE campaign_leads SET state = 'calling', result = NULL, updated_at = ?
           WHERE campaign_id = ? AND lead_id = ? AND ${NUMBER_FREE}`,
          [now, attempt.campaign_id, attempt.lead_id],
        );
      })
      .immediate();
  }

  /** The attempt did not happen and does not count (no capacity, shutting down): the lead is due again. */
  release(attemptId: string, now: string, unrequestedOnly = false): void {
    this.db
      .transaction(() => {
        const attempt = this.db
          .query<{ campaign_id: string; lead_id: string }, [string]>(
            `DELETE FROM campaign_attempts WHERE id = ? AND state = 'dialling'
               ${unrequestedOnly ? "AND requested_at IS NULL" : ""}
             RETURNING campaign_id, lead_id`,
          )
          .get(attemptId);
        if (!attempt) return;
        this.db.run(
          `UPDATE campaign_leads SET state = CASE WHEN c.state = 'cancelled' THEN 'cancelled' ELSE 'pending' END,
             result = CASE WHEN c.state = 'cancelled' THEN 'cancelled' ELSE NULL END,
             attempts = attempts - 1, next_attempt_at = ?1, updated_at = ?1
           FROM campaigns c WHERE c.id = campaign_leads.campaign_id
             AND campaign_leads.campaign_id = ?2 AND campaign_leads.lead_id = ?3`,
          [now, attempt.campaign_id, attempt.lead_id],
        );
      })
      .immediate();
  }

  /**
   * What became of an attempt without a call to wait for (`failed`: Twilio refused it; `skipped`:
   * the number is on the do-not-call list), and what the lead does next.
   */
  finishUnplaced(
    attemptId: string,
    state: "failed" | "skipped",
    error: string,
    next: NextStep,
    now: string,
  ): void {
    this.db
      .transaction(() => {
        const attempt = this.db
          .query<{ campaign_id: string; lead_id: string }, [string, string, string, string]>(
            `UPDATE campaign_attempts SET state = ?, error = ?, ended_at = ?
             WHERE id = ? AND state = 'dialling' RETURNING campaign_id, lead_id`,
          )
          .get(state, error, now, attemptId);
        if (attempt) this.#advanceLead(attempt.campaign_id, attempt.lead_id, next, null, now);
      })
      .immediate();
  }

  /** Placed attempts whose call's record ended before `endedBefore`, oldest first. */
  ended(limit: number, endedBefore: string): EndedAttempt[] {
    return this.db
      .query<EndedAttempt, [string, number]>(
        `SELECT a.id AS attempt_id, a.campaign_id, a.lead_id, coalesce(c.outcome, 'failed') AS outcome,
                c.ended_at, l.attempts, l.callback_at
         FROM campaign_attempts a
         JOIN calls c ON c.sid = a.call_sid
         JOIN campaign_leads l ON l.campaign_id = a.campaign_id AND l.lead_id = a.lead_id
         WHERE a.state = 'placed' AND c.ended_at < ?
         ORDER BY c.ended_at LIMIT ?`,
      )
      .all(endedBefore, limit);
  }

  /** Settles an ended attempt once (a second settle, by another instance, changes nothing). */
  settle(ended: EndedAttempt, next: NextStep, now: string): boolean {
    return this.db
      .transaction(() => {
        const done = this.db
          .query(
            `UPDATE campaign_attempts SET state = 'ended', outcome = ?, ended_at = ?
             WHERE id = ? AND state = 'placed' RETURNING id`,
          )
          .get(ended.outcome, ended.ended_at, ended.attempt_id);
        if (!done) return false;
        this.#advanceLead(ended.campaign_id, ended.lead_id, next, ended.outcome, now);
        return true;
      })
      .immediate();
  }

  /**
   * Attempts stopped with their process: claimed before `before` and never asked of Twilio are
   * released (their leads due again); asked before `before` without a call SID are `unknown`, as
   * are their leads, never retried on their own.
   */
  sweepInterrupted(before: string, now: string): SweepResult {
    if (!this.db.query(INTERRUPTED_SQL).get(before)) return { unknown: [], released: 0 };
    return this.db
      .transaction(() => {
        const stale = this.db
          .query<{ id: string }, [string]>(
            `SELECT id FROM campaign_attempts
             WHERE state = 'dialling' AND requested_at IS NULL AND claimed_at < ?`,
          )
          .all(before);
        for (const { id } of stale) this.release(id, now, true);
        const unknown = this.db
          .query<Attempt, [string, string]>(
            `UPDATE campaign_attempts SET state = 'unknown', ended_at = ?,
               error = 'interrupted between the request to Twilio and storing its call SID'
             WHERE state = 'dialling' AND requested_at < ? RETURNING *`,
          )
          .all(now, before);
        for (const attempt of unknown) {
          this.db.run(
            `UPDATE campaign_leads SET state = 'unknown', result = 'unknown', updated_at = ?
             WHERE campaign_id = ? AND lead_id = ?`,
            [now, attempt.campaign_id, attempt.lead_id],
          );
        }
        return { unknown, released: stale.length };
      })
      .immediate();
  }

  /**
   * The lead of the campaign call `callSid` asks to be called back at `at` (ISO, inside the
   * window). @returns the time asked before (to put back if this is withdrawn), or undefined when
   * the call is no live campaign call
   */
  requestCallback(
    callSid: string,
    at: string,
    now: string,
  ): { previous: string | null } | undefined {
    return this.db
      .transaction(() => {
        const lead = this.db
          .query<{ campaign_id: string; lead_id: string; callback_at: string | null }, [string]>(
            `SELECT l.campaign_id, l.lead_id, l.callback_at FROM campaign_attempts a
             JOIN campaign_leads l ON l.campaign_id = a.campaign_id AND l.lead_id = a.lead_id
             WHERE a.call_sid = ? AND a.state = 'placed'`,
          )
          .get(callSid);
        if (!lead) return undefined;
        this.db.run(
          "UPDATE campaign_leads SET callback_at = ?, updated_at = ? WHERE campaign_id = ? AND lead_id = ?",
          [at, now, lead.campaign_id, lead.lead_id],
        );
        return { previous: lead.callback_at };
      })
      .immediate();
  }

  /**
   * Takes back the callback time `at` asked on call `callSid` (the agent withdrew it): the time
   * asked before comes back, unless another was asked since.
   */
  withdrawCallback(callSid: string, at: string, previous: string | null): void {
    this.db.run(
      `UPDATE campaign_leads SET callback_at = ?3
       WHERE callback_at = ?1 AND (campaign_id, lead_id) = (
         SELECT campaign_id, lead_id FROM campaign_attempts WHERE call_sid = ?2 AND state = 'placed')`,
      [at, callSid, previous],
    );
  }

  /** The campaign and the lead's zone of the campaign call `callSid`, if it is one. */
  ofCall(callSid: string): { campaign: Campaign; timezone: string } | undefined {
    const row = this.db
      .query<CampaignRow & { lead_timezone: string }, [string]>(
        `SELECT c.*, l.timezone AS lead_timezone FROM campaign_attempts a
         JOIN campaigns c ON c.id = a.campaign_id
         JOIN campaign_leads l ON l.campaign_id = a.campaign_id AND l.lead_id = a.lead_id
         WHERE a.call_sid = ?`,
      )
      .get(callSid);
    if (!row) return undefined;
    const { lead_timezone, ...campaign } = row;
    return { campaign: toCampaign(campaign), timezone: lead_timezone };
  }

  summary(id: string): CampaignSummary {
    const grouped = (sql: string) =>
      this.db.query<{ key: string; count: number }, [string]>(sql).all(id);
    const results = grouped(
      "SELECT result AS key, count(*) AS count FROM campaign_leads WHERE campaign_id = ? AND result IS NOT NULL GROUP BY result",
    );
    const outcomes = grouped(
      "SELECT outcome AS key, count(*) AS count FROM campaign_attempts WHERE campaign_id = ? AND outcome IS NOT NULL GROUP BY outcome",
    );
    const attempts = countsOf(
      ATTEMPT_STATES,
      grouped(
        "SELECT state AS key, count(*) AS count FROM campaign_attempts WHERE campaign_id = ? GROUP BY state",
      ),
    );
    return {
      leads: countsOf(
        LEAD_STATES,
        grouped(
          "SELECT state AS key, count(*) AS count FROM campaign_leads WHERE campaign_id = ? GROUP BY state",
        ),
      ),
      results: Object.fromEntries(results.map(({ key, count }) => [key, count])),
      attempts: {
        ...attempts,
        total: Object.values(attempts).reduce((sum, count) => sum + count, 0),
      },
      outcomes: Object.fromEntries(outcomes.map(({ key, count }) => [key, count])),
      next_attempts: this.db
        .query<{ lead_id: string; at: string }, [string]>(
          `SELECT lead_id, next_attempt_at AS at FROM campaign_leads
           WHERE campaign_id = ? AND state = 'pending' ORDER BY next_attempt_at, lead_id LIMIT 10`,
        )
        .all(id),
    };
  }

  /** The campaign's leads (by lead id), each with its attempts and their calls. */
  leads(id: string, limit: number, offset: number): CampaignLeadDetail[] {
    const leads = this.db
      .query<CampaignLead & { first_name: string; last_name: string }, [string, number, number]>(
        `SELECT cl.*, l.first_name, l.last_name FROM campaign_leads cl JOIN leads l ON l.id = cl.lead_id
         WHERE cl.campaign_id = ? ORDER BY cl.lead_id LIMIT ? OFFSET ?`,
      )
      .all(id, limit, offset);
    const attempts = this.db.query<
      Attempt & {
        call_status: string | null;
        call_outcome: string | null;
        end_reason: string | null;
      },
      [string, string]
    >(
      `SELECT a.*, c.status AS call_status, c.outcome AS call_outcome, c.end_reason
       FROM campaign_attempts a LEFT JOIN calls c ON c.sid = a.call_sid
       WHERE a.campaign_id = ? AND a.lead_id = ? ORDER BY a.number`,
    );
    return leads.map((lead) => ({
      ...lead,
      attempts_made: attempts.all(id, lead.lead_id).map(toAttemptDetail),
    }));
  }

  #advanceLead(
    campaignId: string,
    leadId: string,
    next: NextStep,
    outcome: string | null,
    now: string,
  ): void {
    const campaign = this.#get.get(campaignId) as CampaignRow;
    const taken =
      this.db
        .query(
          `SELECT 1 FROM campaign_leads WHERE campaign_id = ?1 AND lead_id = ?2 AND NOT ${NUMBER_FREE}`,
        )
        .get(campaignId, leadId) !== null;
    const { state, result, next_attempt_at } = nextLeadState(next, campaign.state, taken);
    // A late SID brought a lead of a completed campaign back: the campaign goes on.
    if (campaign.state === "completed" && state === "pending")
      this.db.run("UPDATE campaigns SET state = 'active', updated_at = ? WHERE id = ?", [
        now,
        campaignId,
      ]);
    this.db.run(
      `UPDATE campaign_leads SET state = ?, result = ?, next_attempt_at = ?, callback_at = NULL,
         last_outcome = coalesce(?, last_outcome), updated_at = ?
       WHERE campaign_id = ? AND lead_id = ?`,
      [state, result, next_attempt_at, outcome, now, campaignId, leadId],
    );
  }
}

/** An attempt row with its call's columns, as the API shows it. */
export function toAttemptDetail({
  call_status,
  call_outcome,
  end_reason,
  ...attempt
}: Attempt & {
  call_status: string | null;
  call_outcome: string | null;
  end_reason: string | null;
}): CampaignLeadDetail["attempts_made"][number] {
  return {
    ...attempt,
    call: call_status ? { status: call_status, outcome: call_outcome, end_reason } : null,
  };
}
