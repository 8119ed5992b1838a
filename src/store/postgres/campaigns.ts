/**
 * Campaigns on PostgreSQL: as the SQLite `CampaignRepository` (`../campaigns.ts`). Every write
 * about a campaign's leads (a claim, a settle, a release, a move) holds a transaction-scoped advisory
 * lock on the campaign, as SQLite's single writer does: the counts a claim reads (attempts in
 * flight, claimed in the last minute) stay true until its attempts are inserted, and a cancel and a
 * settle never interleave, on every instance.
 */
import type { SQL } from "bun";
import type { NextStep } from "../../campaigns/schedule.ts";
import {
  ATTEMPT_STATES,
  type Attempt,
  type Campaign,
  type CampaignLead,
  type CampaignLeadDetail,
  type CampaignLeadInput,
  type CampaignRow,
  type CampaignState,
  type CampaignSummary,
  CLAIM_PAGE,
  type ClaimedAttempt,
  type ClaimRequest,
  type CreatedCampaign,
  campaignRow,
  countsOf,
  DUE_SQL,
  type EndedAttempt,
  INTERRUPTED_SQL,
  LEAD_STATES,
  MAX_DEFERRALS,
  type NewCampaign,
  NUMBER_FREE,
  nextLeadState,
  type SweepResult,
  toAttemptDetail,
  toCampaign,
} from "../campaigns.ts";
import type { CampaignStore } from "../port.ts";

type Tx = SQL;

/** This transaction holds the campaign's lock until it ends. */
const lockCampaign = (tx: Tx, id: string) =>
  tx`SELECT pg_advisory_xact_lock(hashtext(${`campaign:${id}`}))`;

/** Stops a transaction that must store nothing. */
class NothingStored extends Error {}

export class PostgresCampaignStore implements CampaignStore {
  constructor(private readonly sql: SQL) {}

  async create(
    campaign: NewCampaign,
    leads: readonly CampaignLeadInput[],
    now: string,
  ): Promise<CreatedCampaign | undefined> {
    try {
      return await this.sql.begin(async (tx) => {
        const row = campaignRow(campaign, now);
        await tx`INSERT INTO campaigns ${tx(row)}`;
        const conflicts: string[] = [];
        for (const lead of leads) {
          const added = await tx`
            INSERT INTO campaign_leads (campaign_id, lead_id, phone, timezone, state, attempts, next_attempt_at, updated_at)
            VALUES (${row.id}, ${lead.lead_id}, ${lead.phone}, ${lead.timezone}, 'pending', 0, ${now}, ${now})
            ON CONFLICT DO NOTHING RETURNING lead_id`;
          if (added.length === 0) conflicts.push(lead.lead_id);
        }
        if (conflicts.length === leads.length) throw new NothingStored();
        return { campaign: toCampaign(row), conflicts };
      });
    } catch (error) {
      if (error instanceof NothingStored) return undefined;
      throw error;
    }
  }

  async get(id: string): Promise<Campaign | undefined> {
    const [row] = await this.sql<CampaignRow[]>`SELECT * FROM campaigns WHERE id = ${id}`;
    return row ? toCampaign(row) : undefined;
  }

  async list(limit: number, offset: number): Promise<Campaign[]> {
    const rows = await this.sql<CampaignRow[]>`
      SELECT * FROM campaigns ORDER BY created_at DESC, id DESC LIMIT ${limit} OFFSET ${offset}`;
    return rows.map(toCampaign);
  }

  async active(): Promise<Campaign[]> {
    const rows = await this.sql<
      CampaignRow[]
    >`SELECT * FROM campaigns WHERE state = 'active' ORDER BY id`;
    return rows.map(toCampaign);
  }

  async newLeads(limit: number): Promise<CampaignLeadInput[]> {
    const rows = await this.sql<{ lead_id: string; phone: string; timezone: string | null }[]>`
      SELECT l.id AS lead_id, l.phone, l.timezone FROM leads l
      WHERE l.phone IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.lead_id = l.id)
        AND NOT EXISTS (SELECT 1 FROM campaign_leads cl WHERE cl.lead_id = l.id)
      ORDER BY l.created_at, l.id LIMIT ${limit}`;
    return rows.map((row) => ({ ...row, timezone: row.timezone ?? "" }));
  }

  async busyLeads(leadIds: readonly string[]): Promise<Map<string, string>> {
    if (leadIds.length === 0) return new Map();
    const rows = await this.sql<{ lead_id: string; campaign_id: string }[]>`
      SELECT DISTINCT ON (lead_id) lead_id, campaign_id FROM campaign_leads
      WHERE lead_id IN ${this.sql(leadIds as string[])} AND state IN ('pending', 'calling')
      ORDER BY lead_id, campaign_id`;
    return new Map(rows.map((row) => [row.lead_id, row.campaign_id]));
  }

  transition(id: string, from: readonly CampaignState[], to: CampaignState, now: string) {
    return this.sql.begin(async (tx) => {
      await lockCampaign(tx, id);
      const [row] = await tx<CampaignRow[]>`
        UPDATE campaigns SET state = ${to}, updated_at = ${now},
          note = CASE WHEN ${to} = 'active' THEN NULL ELSE note END
        WHERE id = ${id} AND state IN ${tx(from as CampaignState[])} RETURNING *`;
      if (!row) return undefined;
      if (to === "cancelled") {
        await tx`
          UPDATE campaign_leads SET state = 'cancelled', result = 'cancelled', next_attempt_at = NULL,
            updated_at = ${now}
          WHERE campaign_id = ${id} AND state = 'pending'`;
      }
      return toCampaign(row);
    });
  }

  async completeIfDone(id: string, now: string): Promise<boolean> {
    const rows = await this.sql`
      UPDATE campaigns SET state = 'completed', updated_at = ${now}
      WHERE id = ${id} AND state = 'active' AND NOT EXISTS (
        SELECT 1 FROM campaign_leads WHERE campaign_id = ${id} AND state IN ('pending', 'calling'))
      RETURNING id`;
    return rows.length > 0;
  }

  async suspend(id: string, note: string, now: string): Promise<Campaign | undefined> {
    const [row] = await this.sql<CampaignRow[]>`
      UPDATE campaigns SET state = 'paused', note = ${note}, updated_at = ${now}
      WHERE id = ${id} AND state = 'active' RETURNING *`;
    return row ? toCampaign(row) : undefined;
  }

  async claim({
    campaign,
    now,
    limit,
    instance,
    opening,
  }: ClaimRequest): Promise<ClaimedAttempt[]> {
    const minuteAgo = new Date(Date.parse(now) - 60_000).toISOString();
    // Most rounds find nothing due: a read, not the lock and a transaction, says so.
    if (limit <= 0 || (await this.sql.unsafe(DUE_SQL, [campaign.id, now])).length === 0) return [];
    return this.sql.begin(async (tx) => {
      await lockCampaign(tx, campaign.id);
      const [current] = await tx<{ state: CampaignState }[]>`
        SELECT state FROM campaigns WHERE id = ${campaign.id} FOR SHARE`;
      if (current?.state !== "active") return [];
      const [{ inflight }] = await tx<[{ inflight: number }]>`
        SELECT count(*)::int AS inflight FROM campaign_attempts
        WHERE state IN ('dialling', 'placed') AND campaign_id = ${campaign.id}`;
      const [{ recent }] = await tx<[{ recent: number }]>`
        SELECT count(*)::int AS recent FROM campaign_attempts
        WHERE campaign_id = ${campaign.id} AND claimed_at > ${minuteAgo}`;
      let room = Math.min(
        limit,
        campaign.max_concurrent - inflight,
        campaign.max_per_minute - recent,
      );
      let deferrals = MAX_DEFERRALS;
      const claimed: ClaimedAttempt[] = [];
      while (room > 0 && deferrals > 0) {
        const page = await tx<CampaignLead[]>`
          SELECT * FROM campaign_leads
          WHERE campaign_id = ${campaign.id} AND state = 'pending' AND next_attempt_at <= ${now}
          ORDER BY next_attempt_at, lead_id LIMIT ${CLAIM_PAGE}`;
        if (page.length === 0) break;
        for (const lead of page) {
          if (room === 0 || deferrals === 0) break;
          const opens = opening(lead.timezone);
          if (opens !== now) {
            deferrals--;
            await tx`
              UPDATE campaign_leads SET next_attempt_at = ${opens ?? null},
                state = ${opens ? "pending" : "done"}, result = ${opens ? null : "no_window"},
                updated_at = ${now}
              WHERE campaign_id = ${campaign.id} AND lead_id = ${lead.lead_id} AND state = 'pending'`;
            continue;
          }
          const number = lead.attempts + 1;
          const id = `att_${Bun.randomUUIDv7()}`;
          // Only a lead still pending (not cancelled meanwhile) gets its attempt.
          const taken = await tx`
            UPDATE campaign_leads SET state = 'calling', attempts = ${number}, next_attempt_at = NULL,
              updated_at = ${now}
            WHERE campaign_id = ${campaign.id} AND lead_id = ${lead.lead_id} AND state = 'pending'
            RETURNING lead_id`;
          if (taken.length === 0) continue;
          await tx`
            INSERT INTO campaign_attempts (id, campaign_id, lead_id, number, state, instance, claimed_at)
            VALUES (${id}, ${campaign.id}, ${lead.lead_id}, ${number}, 'dialling', ${instance}, ${now})`;
          claimed.push({ id, lead_id: lead.lead_id, phone: lead.phone, number });
          room--;
        }
      }
      return claimed;
    });
  }

  async requested(attemptId: string, now: string): Promise<boolean> {
    const rows = await this.sql`
      UPDATE campaign_attempts SET requested_at = ${now}
      WHERE id = ${attemptId} AND state = 'dialling' AND requested_at IS NULL RETURNING id`;
    return rows.length > 0;
  }

  async placed(attemptId: string, callSid: string, now: string): Promise<void> {
    await this.sql.begin(async (tx) => {
      const [attempt] = await tx<{ campaign_id: string; lead_id: string }[]>`
        UPDATE campaign_attempts SET state = 'placed', call_sid = ${callSid}, placed_at = ${now}
        WHERE id = ${attemptId} AND state IN ('dialling', 'unknown') RETURNING campaign_id, lead_id`;
      if (!attempt) return;
      // An unknown lead whose number another campaign took on meanwhile stays as it is.
      await tx.unsafe(
        `UPDATE campaign_leads SET state = 'calling', result = NULL, updated_at = $1
         WHERE campaign_id = $2 AND lead_id = $3 AND ${NUMBER_FREE}`,
        [now, attempt.campaign_id, attempt.lead_id],
      );
    });
  }

  async release(attemptId: string, now: string): Promise<void> {
    await this.sql.begin((tx) => releaseIn(tx, attemptId, now));
  }

  async finishUnplaced(
    attemptId: string,
    state: "failed" | "skipped",
    error: string,
    next: NextStep,
    now: string,
  ): Promise<void> {
    await this.sql.begin(async (tx) => {
      await lockAttemptCampaign(tx, attemptId);
      const [attempt] = await tx<{ campaign_id: string; lead_id: string }[]>`
        UPDATE campaign_attempts SET state = ${state}, error = ${error}, ended_at = ${now}
        WHERE id = ${attemptId} AND state = 'dialling' RETURNING campaign_id, lead_id`;
      if (attempt) await advanceLead(tx, attempt.campaign_id, attempt.lead_id, next, null, now);
    });
  }

  ended(limit: number, endedBefore: string): Promise<EndedAttempt[]> {
    return this.sql<EndedAttempt[]>`
      SELECT a.id AS attempt_id, a.campaign_id, a.lead_id, coalesce(c.outcome, 'failed') AS outcome,
             c.ended_at, l.attempts, l.callback_at
      FROM campaign_attempts a
      JOIN calls c ON c.sid = a.call_sid
      JOIN campaign_leads l ON l.campaign_id = a.campaign_id AND l.lead_id = a.lead_id
      WHERE a.state = 'placed' AND c.ended_at < ${endedBefore}
      ORDER BY c.ended_at LIMIT ${limit}`;
  }

  settle(ended: EndedAttempt, next: NextStep, now: string): Promise<boolean> {
    return this.sql.begin(async (tx) => {
      await lockCampaign(tx, ended.campaign_id);
      const done = await tx`
        UPDATE campaign_attempts SET state = 'ended', outcome = ${ended.outcome}, ended_at = ${ended.ended_at}
        WHERE id = ${ended.attempt_id} AND state = 'placed' RETURNING id`;
      if (done.length === 0) return false;
      await advanceLead(tx, ended.campaign_id, ended.lead_id, next, ended.outcome, now);
      return true;
    });
  }

  async sweepInterrupted(before: string, now: string): Promise<SweepResult> {
    if ((await this.sql.unsafe(INTERRUPTED_SQL, [before])).length === 0)
      return { unknown: [], released: 0 };
    return this.sql.begin(async (tx) => {
      const stale = await tx<{ id: string }[]>`
        SELECT id FROM campaign_attempts
        WHERE state = 'dialling' AND requested_at IS NULL AND claimed_at < ${before}
        ORDER BY campaign_id, id`; // campaigns locked in one order: no deadlock between sweeps
      // Only while still never asked: a slow claimer may stamp one meanwhile (then it is not ours).
      let released = 0;
      for (const { id } of stale) if (await releaseIn(tx, id, now, true)) released++;
      const unknown = await tx<Attempt[]>`
        UPDATE campaign_attempts SET state = 'unknown', ended_at = ${now},
          error = 'interrupted between the request to Twilio and storing its call SID'
        WHERE state = 'dialling' AND requested_at < ${before} RETURNING *`;
      for (const attempt of unknown) {
        await tx`
          UPDATE campaign_leads SET state = 'unknown', result = 'unknown', updated_at = ${now}
          WHERE campaign_id = ${attempt.campaign_id} AND lead_id = ${attempt.lead_id}`;
      }
      return { unknown: [...unknown], released };
    });
  }

  requestCallback(
    callSid: string,
    at: string,
    now: string,
  ): Promise<{ previous: string | null } | undefined> {
    return this.sql.begin(async (tx) => {
      const [lead] = await tx<
        { campaign_id: string; lead_id: string; callback_at: string | null }[]
      >`
        SELECT l.campaign_id, l.lead_id, l.callback_at FROM campaign_attempts a
        JOIN campaign_leads l ON l.campaign_id = a.campaign_id AND l.lead_id = a.lead_id
        WHERE a.call_sid = ${callSid} AND a.state = 'placed' FOR UPDATE OF l`;
      if (!lead) return undefined;
      await tx`
        UPDATE campaign_leads SET callback_at = ${at}, updated_at = ${now}
        WHERE campaign_id = ${lead.campaign_id} AND lead_id = ${lead.lead_id}`;
      return { previous: lead.callback_at };
    });
  }

  async withdrawCallback(callSid: string, at: string, previous: string | null): Promise<void> {
    await this.sql`
      UPDATE campaign_leads SET callback_at = ${previous}
      FROM campaign_attempts a
      WHERE a.call_sid = ${callSid} AND a.state = 'placed' AND campaign_leads.callback_at = ${at}
        AND campaign_leads.campaign_id = a.campaign_id AND campaign_leads.lead_id = a.lead_id`;
  }

  async ofCall(callSid: string): Promise<{ campaign: Campaign; timezone: string } | undefined> {
    const [row] = await this.sql<(CampaignRow & { lead_timezone: string })[]>`
      SELECT c.*, l.timezone AS lead_timezone FROM campaign_attempts a
      JOIN campaigns c ON c.id = a.campaign_id
      JOIN campaign_leads l ON l.campaign_id = a.campaign_id AND l.lead_id = a.lead_id
      WHERE a.call_sid = ${callSid}`;
    if (!row) return undefined;
    const { lead_timezone, ...campaign } = row;
    return { campaign: toCampaign(campaign), timezone: lead_timezone };
  }

  async summary(id: string): Promise<CampaignSummary> {
    const [leads, results, attempts, outcomes, next] = await Promise.all([
      this.sql<{ key: string; count: string }[]>`
        SELECT state AS key, count(*) AS count FROM campaign_leads WHERE campaign_id = ${id} GROUP BY state`,
      this.sql<{ key: string; count: string }[]>`
        SELECT result AS key, count(*) AS count FROM campaign_leads
        WHERE campaign_id = ${id} AND result IS NOT NULL GROUP BY result`,
      this.sql<{ key: string; count: string }[]>`
        SELECT state AS key, count(*) AS count FROM campaign_attempts WHERE campaign_id = ${id} GROUP BY state`,
      this.sql<{ key: string; count: string }[]>`
        SELECT outcome AS key, count(*) AS count FROM campaign_attempts
        WHERE campaign_id = ${id} AND outcome IS NOT NULL GROUP BY outcome`,
      this.sql<{ lead_id: string; at: string }[]>`
        SELECT lead_id, next_attempt_at AS at FROM campaign_leads
        WHERE campaign_id = ${id} AND state = 'pending' ORDER BY next_attempt_at, lead_id LIMIT 10`,
    ]);
    const byAttempt = countsOf(ATTEMPT_STATES, attempts);
    const record = (rows: { key: string; count: string }[]) =>
      Object.fromEntries(rows.map(({ key, count }) => [key, Number(count)]));
    return {
      leads: countsOf(LEAD_STATES, leads),
      results: record(results),
      attempts: {
        ...byAttempt,
        total: Object.values(byAttempt).reduce((sum, count) => sum + count, 0),
      },
      outcomes: record(outcomes),
      next_attempts: [...next],
    };
  }

  async leads(id: string, limit: number, offset: number): Promise<CampaignLeadDetail[]> {
    const leads = await this.sql<(CampaignLead & { first_name: string; last_name: string })[]>`
      SELECT cl.*, l.first_name, l.last_name FROM campaign_leads cl JOIN leads l ON l.id = cl.lead_id
      WHERE cl.campaign_id = ${id} ORDER BY cl.lead_id LIMIT ${limit} OFFSET ${offset}`;
    if (leads.length === 0) return [];
    const attempts = await this.sql<
      (Attempt & {
        call_status: string | null;
        call_outcome: string | null;
        end_reason: string | null;
      })[]
    >`
      SELECT a.*, c.status AS call_status, c.outcome AS call_outcome, c.end_reason
      FROM campaign_attempts a LEFT JOIN calls c ON c.sid = a.call_sid
      WHERE a.campaign_id = ${id} AND a.lead_id IN ${this.sql(leads.map((lead) => lead.lead_id))}
      ORDER BY a.lead_id, a.number`;
    return leads.map((lead) => ({
      ...lead,
      attempts_made: attempts
        .filter((attempt) => attempt.lead_id === lead.lead_id)
        .map(toAttemptDetail),
    }));
  }
}

/** The lead's next step after an attempt, within the caller's transaction. */
async function advanceLead(
  tx: Tx,
  campaignId: string,
  leadId: string,
  next: NextStep,
  outcome: string | null,
  now: string,
): Promise<void> {
  // FOR SHARE: a move of the campaign under way (a cancel) is waited for, then seen.
  const [campaign] = await tx<{ state: CampaignState }[]>`
    SELECT state FROM campaigns WHERE id = ${campaignId} FOR SHARE`;
  const taken = await tx.unsafe(
    `SELECT 1 FROM campaign_leads WHERE campaign_id = $1 AND lead_id = $2 AND NOT ${NUMBER_FREE}`,
    [campaignId, leadId],
  );
  const { state, result, next_attempt_at } = nextLeadState(
    next,
    campaign?.state ?? "active",
    taken.length > 0,
  );
  // A late SID brought a lead of a completed campaign back: the campaign goes on.
  if (campaign?.state === "completed" && state === "pending")
    await tx`UPDATE campaigns SET state = 'active', updated_at = ${now} WHERE id = ${campaignId}`;
  await tx`
    UPDATE campaign_leads SET state = ${state}, result = ${result}, next_attempt_at = ${next_attempt_at},
      callback_at = NULL, last_outcome = coalesce(${outcome}, last_outcome), updated_at = ${now}
    WHERE campaign_id = ${campaignId} AND lead_id = ${leadId}`;
}

/** Locks the campaign of an attempt (none when the attempt is gone). */
async function lockAttemptCampaign(tx: Tx, attemptId: string): Promise<void> {
  const [attempt] = await tx<{ campaign_id: string }[]>`
    SELECT campaign_id FROM campaign_attempts WHERE id = ${attemptId}`;
  if (attempt) await lockCampaign(tx, attempt.campaign_id);
}

/** Deletes a `dialling` attempt that never happened; its lead is due again (or cancelled with its campaign). */
async function releaseIn(
  tx: Tx,
  attemptId: string,
  now: string,
  unrequestedOnly = false,
): Promise<boolean> {
  await lockAttemptCampaign(tx, attemptId);
  const [attempt] = await tx<{ campaign_id: string; lead_id: string }[]>`
    DELETE FROM campaign_attempts WHERE id = ${attemptId} AND state = 'dialling'
      AND (${!unrequestedOnly} OR requested_at IS NULL)
    RETURNING campaign_id, lead_id`;
  if (!attempt) return false;
  await tx`
    UPDATE campaign_leads SET
      state = CASE WHEN c.state = 'cancelled' THEN 'cancelled' ELSE 'pending' END,
      result = CASE WHEN c.state = 'cancelled' THEN 'cancelled' ELSE NULL END,
      attempts = attempts - 1, next_attempt_at = ${now}, updated_at = ${now}
    FROM campaigns c WHERE c.id = campaign_leads.campaign_id
      AND campaign_leads.campaign_id = ${attempt.campaign_id}
      AND campaign_leads.lead_id = ${attempt.lead_id}`;
  return true;
}
