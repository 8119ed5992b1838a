/**
 * PostgreSQL's READ COMMITTED against campaign moves: a cancel whose transaction is still open
 * (its statements run, its commit not yet) while a claim or a settle runs on another connection.
 * Neither may act on the state the cancel is replacing. Skipped with one line where PostgreSQL is
 * absent, never in CI.
 */
import { afterEach, expect, test } from "bun:test";
import { SQL } from "bun";
import type { Campaign } from "../../src/store/campaigns.ts";
import type { Storage } from "../../src/store/port.ts";
import { openPostgresStorage } from "../../src/store/postgres/index.ts";
import { ManualClock } from "../fakes/clock.ts";
import { eventually } from "../helpers/eventually.ts";
import { freshDatabase, postgresReady, type TestDatabase } from "../helpers/postgres.ts";
import { everyHourCampaign } from "./fixtures.ts";

const SETTINGS = everyHourCampaign;
const NOW = "2026-03-02T15:00:00.000Z";

let opened: { database: TestDatabase; store: Storage; raw: SQL } | undefined;
afterEach(async () => {
  await opened?.store.close();
  await opened?.raw.close();
  await opened?.database.drop();
  opened = undefined;
});

async function setUp() {
  const database = await freshDatabase();
  const store = await openPostgresStorage(database.url, new ManualClock(NOW), { max: 4 });
  const raw = new SQL(database.url, { max: 2 });
  opened = { database, store, raw };
  const lead = await store.leads.create({ first_name: "A", last_name: "B", phone: "+15552000001" });
  const created = await store.campaigns.create(
    SETTINGS,
    [{ lead_id: lead.id, phone: "+15552000001", timezone: "America/Chicago" }],
    NOW,
  );
  return { store, raw, lead, campaign: created?.campaign as Campaign };
}

/** Resolves once a statement of this database waits for a lock (a cancel's, the campaign's). */
async function somethingWaits(raw: SQL): Promise<void> {
  await eventually(async () => {
    const [row] = await raw`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'`;
    return (row as { n: number }).n > 0 || undefined;
  }, "a statement waiting for a lock");
}

/** A cancel's statements, run on its own connection and left uncommitted. @returns its commit */
async function openCancel(raw: SQL, campaignId: string): Promise<() => Promise<void>> {
  const cancel = await raw.reserve();
  await cancel`BEGIN`;
  await cancel`UPDATE campaigns SET state = 'cancelled' WHERE id = ${campaignId}`;
  await cancel`
    UPDATE campaign_leads SET state = 'cancelled', result = 'cancelled', next_attempt_at = NULL
    WHERE campaign_id = ${campaignId} AND state = 'pending'`;
  return async () => {
    await cancel`COMMIT`;
    cancel.release();
  };
}

test.skipIf(!postgresReady)("a claim during a cancel's commit claims nothing", async () => {
  const { store, raw, campaign } = await setUp();
  const commit = await openCancel(raw, campaign.id);
  const claiming = store.campaigns.claim({
    campaign,
    now: NOW,
    limit: 5,
    instance: "i1",
    opening: () => NOW,
  });
  await somethingWaits(raw);
  await commit();
  expect(await claiming).toEqual([]);
  const [lead] = await store.campaigns.leads(campaign.id, 10, 0);
  expect(lead?.state).toBe("cancelled");
});

test.skipIf(!postgresReady)(
  "a settle during a cancel's commit leaves the lead cancelled, not pending",
  async () => {
    const { store, raw, lead, campaign } = await setUp();
    const [attempt] = await store.campaigns.claim({
      campaign,
      now: NOW,
      limit: 5,
      instance: "i1",
      opening: () => NOW,
    });
    await store.calls.create({
      sid: "CA1",
      direction: "outbound",
      from_number: "+15005550006",
      to_number: "+15552000001",
      scenario: "insurance-followup",
      lead_id: lead.id,
      status: "queued",
    });
    await store.campaigns.placed(attempt?.id ?? "", "CA1", NOW);
    await store.calls.endIfOpen("CA1", "caller_hung_up", "");
    const [ended] = await store.campaigns.ended(10, "9999");
    const commit = await openCancel(raw, campaign.id);
    const settling = store.campaigns.settle(
      ended as NonNullable<typeof ended>,
      { kind: "retry", at: new Date(Date.parse(NOW) + 7_200_000), reason: "retry" },
      NOW,
    );
    await somethingWaits(raw);
    await commit();
    expect(await settling).toBe(true);
    const [row] = await store.campaigns.leads(campaign.id, 10, 0);
    expect(row?.state).toBe("cancelled");
    expect(await store.campaigns.busyLeads([lead.id])).toEqual(new Map());
  },
);

test.skipIf(!postgresReady)(
  "a sweep that waits for the campaign's lock never releases an attempt stamped meanwhile",
  async () => {
    const { store, raw, campaign } = await setUp();
    const [attempt] = await store.campaigns.claim({
      campaign,
      now: NOW,
      limit: 5,
      instance: "i1",
      opening: () => NOW,
    });
    // Another instance's sweep, two minutes on, finds it never asked of Twilio; it waits for the
    // campaign's lock (held here) before releasing it.
    const holder = await raw.reserve();
    await holder`BEGIN`;
    await holder`SELECT pg_advisory_xact_lock(hashtext(${`campaign:${campaign.id}`}))`;
    const later = new Date(Date.parse(NOW) + 180_000).toISOString();
    const sweeping = store.campaigns.sweepInterrupted(later, later);
    await somethingWaits(raw);
    // Meanwhile the claimer, slow but alive, is about to ask Twilio.
    expect(await store.campaigns.requested(attempt?.id ?? "", later)).toBe(true);
    await holder`COMMIT`;
    holder.release();
    expect((await sweeping).released).toBe(0);
    const [lead] = await store.campaigns.leads(campaign.id, 10, 0);
    expect(lead).toMatchObject({ state: "calling", attempts: 1 });
  },
);
