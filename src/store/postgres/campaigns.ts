/**
 * Campaigns on PostgreSQL: as the SQLite `CampaignRepository` (`../campaigns.ts`). A claim holds a
 * transaction-scoped advisory lock on its campaign, so the counts it reads (attempts in flight,
 * claimed in the last minute) stay true until its attempts are inserted, on every instance.
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
  type ClaimedAttempt,
  type ClaimRequest,
  campaignRow,
  countsOf,
  type EndedAttempt,
  LEAD_STATES,
  type NewCampaign,
  nextLeadState,
  toAttemptDetail,
  toCampaign,
} from "../campaigns.ts";
import type { CampaignStore } from "../port.ts";

type Tx = SQL;

const CLAIM_PAGE = 50;

export class PostgresCampaignStore implements CampaignStore {
  constructor(private readonly sql: SQL) {}

  create(campaign: NewCampaign, leads: readonly CampaignLeadInput[], now: string) {
    return this.sql.begin(async (tx) => {
      const row = campaignRow(campaign, now);
      await tx`INSERT INTO campaigns ${tx(row)}`;
      for (const lead of leads) {
        await tx`
          INSERT INTO campaign_leads (campaign_id, lead_id, phone, timezone, state, attempts, next_attempt_at, updated_at)
          VALUES (${row.id}, ${lead.lead_id}, ${lead.phone}, ${lead.timezone}, 'pending', 0, ${now}, ${now})`;
      }
      return toCampaign(row);
    });
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
      const [row] = await tx<CampaignRow[]>`
        UPDATE campaigns SET state = ${to}, updated_at = ${now}
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
      WHERE id = ${id} AND state IN ('active', 'paused') AND NOT EXISTS (
        SELECT 1 FROM campaign_leads WHERE campaign_id = ${id} AND state IN ('pending', 'calling'))
      RETURNING id`;
    return rows.length > 0;
  }

  claim({ campaign, now, limit, instance, opening }: ClaimRequest): Promise<ClaimedAttempt[]> {
    const minuteAgo = new Date(Date.parse(now) - 60_000).toISOString();
    return this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtext(${`campaign:${campaign.id}`}))`;
      const [{ inflight, recent }] = await tx<[{ inflight: number; recent: number }]>`
        SELECT count(*) FILTER (WHERE state IN ('dialling', 'placed'))::int AS inflight,
               count(*) FILTER (WHERE claimed_at > ${minuteAgo})::int AS recent
        FROM campaign_attempts WHERE campaign_id = ${campaign.id}`;
      let room = Math.min(
        limit,
        campaign.max_concurrent - inflight,
        campaign.max_per_minute - recent,
      );
      const claimed: ClaimedAttempt[] = [];
      while (room > 0) {
        const page = await tx<CampaignLead[]>`
          SELECT * FROM campaign_leads
          WHERE campaign_id = ${campaign.id} AND state = 'pending' AND next_attempt_at <= ${now}
          ORDER BY next_attempt_at, lead_id LIMIT ${CLAIM_PAGE}`;
        if (page.length === 0) break;
        for (const lead of page) {
          if (room === 0) break;
          const opens = opening(lead.timezone);
          if (opens !== now) {
            await tx`
              UPDATE campaign_leads SET next_attempt_at = ${opens ?? null},
                state = ${opens ? "pending" : "done"}, result = ${opens ? null : "no_window"},
                updated_at = ${now}
              WHERE campaign_id = ${campaign.id} AND lead_id = ${lead.lead_id}`;
            continue;
          }
          const number = lead.attempts + 1;
          const id = `att_${Bun.randomUUIDv7()}`;
          await tx`
            INSERT INTO campaign_attempts (id, campaign_id, lead_id, number, state, instance, claimed_at)
            VALUES (${id}, ${campaign.id}, ${lead.lead_id}, ${number}, 'dialling', ${instance}, ${now})`;
          await tx`
            UPDATE campaign_leads SET state = 'calling', attempts = ${number}, next_attempt_at = NULL,
              updated_at = ${now}
            WHERE campaign_id = ${campaign.id} AND lead_id = ${lead.lead_id}`;
          claimed.push({ id, lead_id: lead.lead_id, phone: lead.phone, number });
          room--;
        }
      }
      return claimed;
    });
  }

  async placed(attemptId: string, callSid: string, now: string): Promise<void> {
    await this.sql.begin(async (tx) => {
      const [attempt] = await tx<{ campaign_id: string; lead_id: string }[]>`
        UPDATE campaign_attempts SET state = 'placed', call_sid = ${callSid}, placed_at = ${now}
        WHERE id = ${attemptId} AND state IN ('dialling', 'unknown') RETURNING campaign_id, lead_id`;
      if (!attempt) return;
      await tx`
        UPDATE campaign_leads SET state = 'calling', result = NULL, updated_at = ${now}
        WHERE campaign_id = ${attempt.campaign_id} AND lead_id = ${attempt.lead_id}`;
    });
  }

  async release(attemptId: string, now: string): Promise<void> {
    await this.sql.begin(async (tx) => {
      const [attempt] = await tx<{ campaign_id: string; lead_id: string }[]>`
        DELETE FROM campaign_attempts WHERE id = ${attemptId} AND state = 'dialling'
        RETURNING campaign_id, lead_id`;
      if (!attempt) return;
      await tx`
        UPDATE campaign_leads SET
          state = CASE WHEN c.state = 'cancelled' THEN 'cancelled' ELSE 'pending' END,
          result = CASE WHEN c.state = 'cancelled' THEN 'cancelled' ELSE NULL END,
          attempts = attempts - 1, next_attempt_at = ${now}, updated_at = ${now}
        FROM campaigns c WHERE c.id = campaign_leads.campaign_id
          AND campaign_leads.campaign_id = ${attempt.campaign_id}
          AND campaign_leads.lead_id = ${attempt.lead_id}`;
    });
  }

  async finishUnplaced(
    attemptId: string,
    state: "failed" | "skipped",
    error: string,
    next: NextStep,
    now: string,
  ): Promise<void> {
    await this.sql.begin(async (tx) => {
      const [attempt] = await tx<{ campaign_id: string; lead_id: string }[]>`
        UPDATE campaign_attempts SET state = ${state}, error = ${error}, ended_at = ${now}
        WHERE id = ${attemptId} AND state = 'dialling' RETURNING campaign_id, lead_id`;
      if (attempt) await advanceLead(tx, attempt.campaign_id, attempt.lead_id, next, null, now);
    });
  }

  ended(limit: number): Promise<EndedAttempt[]> {
    return this.sql<EndedAttempt[]>`
      SELECT a.id AS attempt_id, a.campaign_id, a.lead_id, coalesce(c.outcome, 'failed') AS outcome,
             c.ended_at, l.attempts, l.callback_at
      FROM campaign_attempts a
      JOIN calls c ON c.sid = a.call_sid
      JOIN campaign_leads l ON l.campaign_id = a.campaign_id AND l.lead_id = a.lead_id
      WHERE a.state = 'placed' AND c.ended_at IS NOT NULL
      ORDER BY c.ended_at LIMIT ${limit}`;
  }

  settle(ended: EndedAttempt, next: NextStep, now: string): Promise<boolean> {
    return this.sql.begin(async (tx) => {
      const done = await tx`
        UPDATE campaign_attempts SET state = 'ended', outcome = ${ended.outcome}, ended_at = ${ended.ended_at}
        WHERE id = ${ended.attempt_id} AND state = 'placed' RETURNING id`;
      if (done.length === 0) return false;
      await advanceLead(tx, ended.campaign_id, ended.lead_id, next, ended.outcome, now);
      return true;
    });
  }

  markUnknown(claimedBefore: string, now: string): Promise<Attempt[]> {
    return this.sql.begin(async (tx) => {
      const attempts = await tx<Attempt[]>`
        UPDATE campaign_attempts SET state = 'unknown', ended_at = ${now},
          error = 'interrupted between the request to Twilio and storing its call SID'
        WHERE state = 'dialling' AND claimed_at < ${claimedBefore} RETURNING *`;
      for (const attempt of attempts) {
        await tx`
          UPDATE campaign_leads SET state = 'unknown', result = 'unknown', updated_at = ${now}
          WHERE campaign_id = ${attempt.campaign_id} AND lead_id = ${attempt.lead_id}`;
      }
      return [...attempts];
    });
  }

  async requestCallback(callSid: string, at: string, now: string): Promise<boolean> {
    const rows = await this.sql`
      UPDATE campaign_leads SET callback_at = ${at}, updated_at = ${now}
      FROM campaign_attempts a
      WHERE a.call_sid = ${callSid} AND campaign_leads.campaign_id = a.campaign_id
        AND campaign_leads.lead_id = a.lead_id
      RETURNING campaign_leads.lead_id`;
    return rows.length > 0;
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
  const [campaign] = await tx<{ state: CampaignState }[]>`
    SELECT state FROM campaigns WHERE id = ${campaignId}`;
  const { state, result, next_attempt_at } = nextLeadState(next, campaign?.state ?? "active");
  await tx`
    UPDATE campaign_leads SET state = ${state}, result = ${result}, next_attempt_at = ${next_attempt_at},
      callback_at = NULL, last_outcome = coalesce(${outcome}, last_outcome), updated_at = ${now}
    WHERE campaign_id = ${campaignId} AND lead_id = ${leadId}`;
}
