/**
 * The dialer against the real store and the real `/make-call` path, with Twilio replaced by a
 * placer the test steers: races with a pause, two workers sharing one machine's call limit, failures
 * before and after Twilio is asked, Twilio's refusals about the number and about the account, the
 * settle delay and a shutdown mid-batch.
 */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TwilioApiError } from "../../src/adapters/twilio-rest.ts";
import { CallRegistry } from "../../src/call/registry.ts";
import { Dialer, SETTLE_AFTER_MS, UNKNOWN_AFTER_MS } from "../../src/campaigns/dialer.ts";
import { loadConfig } from "../../src/config.ts";
import { CoordinationState, LocalCoordination } from "../../src/fleet/local-coordination.ts";
import { createLogger } from "../../src/log.ts";
import { type CallPlacer, placeOutboundCall } from "../../src/routes/make-call.ts";
import type { Campaign, NewCampaign } from "../../src/store/campaigns.ts";
import { openStore } from "../../src/store/index.ts";
import type { Storage } from "../../src/store/port.ts";
import { sqliteStorage } from "../../src/store/sqlite-storage.ts";
import { ManualClock } from "../fakes/clock.ts";
import { everyHourCampaign } from "../store/fixtures.ts";

const START = "2026-03-02T15:00:00.000Z";
const SETTINGS = everyHourCampaign;
const config = loadConfig({
  SERVER_EXTERNAL_URL: "https://voice.example.com",
  ENDPOINT_SECRET: "s".repeat(32),
  DEEPGRAM_API_KEY: "dg",
  TWILIO_ACCOUNT_SID: `AC${"1".repeat(32)}`,
  TWILIO_AUTH_TOKEN: "token",
  TWILIO_PHONE_NUMBER: "+15550001111",
  MAX_CONCURRENT_CALLS: "10",
});
const logs: Record<string, unknown>[] = [];
const logger = createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });

/** Twilio as the test wants it: each create answered by `answer` (a SID, or an error thrown). */
class SteeredTwilio implements CallPlacer {
  readonly dialled: string[] = [];
  answer: (to: string) => Promise<void> = async () => {};
  async placeCall({ to }: { to: string }) {
    await this.answer(to);
    this.dialled.push(to);
    return { sid: `CA${crypto.randomUUID().replaceAll("-", "")}`, status: "queued" };
  }
  async hangUp() {}
}

async function world(path = ":memory:", clock = new ManualClock(START)) {
  const store = sqliteStorage(openStore(path, clock));
  const twilio = new SteeredTwilio();
  const dialerOf = (
    coordination = new LocalCoordination("i1", clock),
    storage: Storage = store,
    settleMs?: number,
  ) =>
    new Dialer({
      store: storage,
      coordination,
      clock,
      logger,
      instance: coordination.instance,
      maxConcurrent: 10,
      inboundHeadroom: 2,
      pollMs: 1e12,
      ...(settleMs === undefined ? {} : { settleMs }),
      place: async (campaign, attempt, options) =>
        (
          await placeOutboundCall(
            { config, store: storage, calls: new CallRegistry(), coordination, twilio, logger },
            { to: attempt.phone, lead_id: attempt.lead_id },
            { from: campaign.from, ...options },
          )
        ).call_sid,
    });
  let numbers = 0;
  const campaign = async (leads: number, overrides: Partial<NewCampaign> = {}) => {
    const rows = [];
    for (let index = 0; index < leads; index++) {
      const phone = `+1555300${String(numbers++).padStart(4, "0")}`;
      const lead = await store.leads.create({ first_name: "L", last_name: "N", phone });
      rows.push({ lead_id: lead.id, phone, timezone: "America/Chicago" });
    }
    const created = await store.campaigns.create(
      { ...SETTINGS, ...overrides },
      rows,
      clock.now().toISOString(),
    );
    return created?.campaign as Campaign;
  };
  return { clock, store, twilio, dialerOf, campaign };
}

test("a campaign paused while the round places another's calls is not dialled", async () => {
  const { store, twilio, dialerOf, campaign } = await world();
  const [first, second] = [await campaign(1), await campaign(3)].sort((a, b) =>
    a.id.localeCompare(b.id),
  ) as [Campaign, Campaign];
  const secondPhones = (await store.campaigns.leads(second.id, 10, 0)).map((lead) => lead.phone);
  twilio.answer = async () => {
    // Twilio's create takes a moment; meanwhile POST /campaigns/{second}/pause is served.
    if (twilio.dialled.length === 0)
      await store.campaigns.transition(second.id, ["active"], "paused", START);
  };
  await dialerOf().tick();
  expect(twilio.dialled).toHaveLength(1);
  expect(twilio.dialled.filter((to) => secondPhones.includes(to))).toEqual([]);
  expect((await store.campaigns.summary(first.id)).leads.calling).toBe(1);
});

test("two workers sharing one machine's call limit leave CAMPAIGN_INBOUND_HEADROOM free", async () => {
  const folder = mkdtempSync(join(tmpdir(), "voice-agent-dialer-"));
  try {
    const { clock, store, dialerOf, campaign } = await world(join(folder, "db.sqlite"));
    await campaign(8);
    await campaign(8);
    const other = sqliteStorage(openStore(join(folder, "db.sqlite"), clock));
    const machine = new CoordinationState(clock);
    const first = new LocalCoordination("w1", clock, machine);
    const second = new LocalCoordination("w2", clock, machine);
    await Promise.all([dialerOf(first).tick(), dialerOf(second, other).tick()]);
    // MAX_CONCURRENT_CALLS 10, 2 kept for inbound.
    expect(machine.load).toBe(8);
    await store.close();
    await other.close();
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test("a failure before Twilio was asked releases the attempt: the lead is called later, not unknown", async () => {
  const { clock, store, twilio, dialerOf, campaign } = await world();
  const target = await campaign(2);
  const dialer = dialerOf();
  const dnc = store.dnc.get;
  store.dnc.get = async () => {
    throw new Error("the database is unreachable");
  };
  expect(await dialer.tick()).toBe(0);
  store.dnc.get = dnc;
  clock.advance(UNKNOWN_AFTER_MS + 1_000);
  expect(await dialer.tick()).toBe(2);
  expect(twilio.dialled).toHaveLength(2);
  const { leads, attempts } = await store.campaigns.summary(target.id);
  expect(leads).toMatchObject({ calling: 2, unknown: 0 });
  expect(attempts.total).toBe(2);
});

test("Twilio's refusals: about the number, a failed attempt; a rate limit, later; about the account, the campaign pauses", async () => {
  const { clock, store, twilio, dialerOf, campaign } = await world();
  const target = await campaign(3, { max_concurrent: 1, max_per_minute: 1 });
  const dialer = dialerOf();
  const refuse = (status: number, code: number) => async () => {
    throw new TwilioApiError(`Twilio refused to place the call: error ${code}`, code, status);
  };
  twilio.answer = refuse(400, 21211);
  await dialer.tick();
  let leads = await store.campaigns.leads(target.id, 10, 0);
  expect(leads.map((lead) => lead.attempts_made[0]?.state ?? "none").sort()).toEqual([
    "failed",
    "none",
    "none",
  ]);
  clock.advance(61_000);
  twilio.answer = refuse(429, 20429);
  await dialer.tick();
  expect((await store.campaigns.get(target.id))?.state).toBe("active");
  clock.advance(61_000);
  twilio.answer = refuse(401, 20003);
  await dialer.tick();
  const paused = await store.campaigns.get(target.id);
  expect(paused?.state).toBe("paused");
  expect(paused?.note).toContain("Twilio refused to place its calls (error 20003)");
  // Neither the rate limit nor the account's refusal used up a lead's attempts.
  leads = await store.campaigns.leads(target.id, 10, 0);
  expect(leads.map((lead) => lead.attempts).sort()).toEqual([0, 0, 1]);
  expect(logs.some((line) => JSON.stringify(line).includes("+1555300") && !("pii" in line))).toBe(
    false,
  );
});

test("an ended call is settled a moment after its end, not before", async () => {
  const { clock, store, twilio, dialerOf, campaign } = await world();
  const target = await campaign(1);
  const dialer = dialerOf(undefined, undefined, undefined);
  await dialer.tick();
  const [call] = await store.calls.list({ limit: 1 });
  await store.calls.update(call?.sid ?? "", { outcome: "appointment_booked" });
  await store.calls.endIfOpen(call?.sid ?? "", "caller_hung_up", "");
  await dialer.tick();
  expect((await store.campaigns.summary(target.id)).leads.calling).toBe(1);
  clock.advance(SETTLE_AFTER_MS);
  await dialer.tick();
  expect((await store.campaigns.summary(target.id)).results).toEqual({
    appointment_booked: 1,
  });
  expect(twilio.dialled).toHaveLength(1);
});

test("stopped mid-batch: the attempts not yet dialled are released", async () => {
  const { store, twilio, dialerOf, campaign } = await world();
  const target = await campaign(4);
  const dialer = dialerOf();
  twilio.answer = async () => {
    if (twilio.dialled.length === 0) void dialer.stop();
  };
  await dialer.tick();
  expect(twilio.dialled).toHaveLength(1);
  const { leads, attempts } = await store.campaigns.summary(target.id);
  expect(leads).toMatchObject({ calling: 1, pending: 3 });
  expect(attempts.total).toBe(1);
});

test("Twilio unreachable: released, due again; in doubt (a timeout): unknown later, the rest of the batch waits", async () => {
  const { clock, store, twilio, dialerOf, campaign } = await world();
  const target = await campaign(3);
  const dialer = dialerOf();
  twilio.answer = async () => {
    throw new TwilioApiError(
      "Could not reach Twilio: connection refused",
      undefined,
      undefined,
      true,
    );
  };
  expect(await dialer.tick()).toBe(0);
  expect((await store.campaigns.summary(target.id)).leads).toMatchObject({ pending: 3 });
  let asked = 0;
  twilio.answer = async () => {
    asked++;
    throw new TwilioApiError("Could not reach Twilio: request timed out");
  };
  expect(await dialer.tick()).toBe(0);
  expect(asked).toBe(1);
  clock.advance(UNKNOWN_AFTER_MS + 1_000);
  twilio.answer = async () => {};
  expect(await dialer.tick()).toBe(2);
  const { leads } = await store.campaigns.summary(target.id);
  expect(leads).toMatchObject({ unknown: 1, calling: 2 });
});
