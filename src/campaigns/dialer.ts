/**
 * The dialer: every instance runs one, and the database keeps them from getting in each other's
 * way. Each round it settles the attempts whose calls have ended (retry, callback or done, per
 * `schedule.ts`), marks `unknown` the attempts a stopped process left between asking Twilio and
 * storing the answer, then claims and places the due attempts of each active campaign: within the
 * campaign's concurrency and rate (counted in the claim, across instances), the calling window
 * in each lead's zone, and the service's capacity less `CAMPAIGN_INBOUND_HEADROOM` calls kept free
 * for inbound callers (the stream token is issued against that smaller limit). Calls go out through
 * the same path as `POST /make-call` (do-not-call check, stream token, Twilio with AMD, the
 * record). What Twilio refuses decides what follows: a refusal about the number is a failed
 * attempt; one about the account (credentials, the caller ID, a suspension) pauses the campaign
 * with a note, and a rate limit waits for the next round; neither uses up the leads' attempts.
 */
import { TwilioApiError } from "../adapters/twilio-rest.ts";
import type { Clock } from "../clock.ts";
import { CallNotRecordedError, ShuttingDownError } from "../errors.ts";
import type { Coordination } from "../fleet/coordination.ts";
import type { Logger } from "../log.ts";
import { Rounds } from "../rounds.ts";
import { DoNotCallError } from "../routes/dnc.ts";
import { TooManyCallsError } from "../routes/make-call.ts";
import type { Campaign, ClaimedAttempt, EndedAttempt } from "../store/campaigns.ts";
import type { Storage } from "../store/port.ts";
import { afterAttempt, type NextStep, nextOpening } from "./schedule.ts";

/**
 * An attempt still `dialling` this long after it was claimed (never asked of Twilio: released) or
 * asked of Twilio (no SID: unknown) was interrupted: Twilio answers a create within seconds (the
 * SDK gives up after 30 s), so its process stopped.
 */
export const UNKNOWN_AFTER_MS = 120_000;
/** Ended attempts settled per round. */
const SETTLE_BATCH = 100;
/**
 * An ended call is settled this long after its end: what its session wrote last (the agent's
 * disposition, held in another instance's write-behind) is on the record by then.
 */
export const SETTLE_AFTER_MS = 1_000;
/**
 * Twilio's refusals about the number dialled, not the account: invalid or unreachable 'To'
 * (21211, 21214, 21217, 21612, 13224), its country not enabled (21215), blocked (21216), not a
 * verified number of a trial account (21219).
 */
const NUMBER_ERRORS = new Set([13224, 21211, 21214, 21215, 21216, 21217, 21219, 21612]);
/** Twilio's "too many requests" (HTTP 429). */
const RATE_LIMITED = 20429;

/** The attempt was released by another instance before it was dialled: it must not be. */
class NotOursAnyMore extends Error {}

export interface DialerDeps {
  store: Storage;
  coordination: Coordination;
  clock: Clock;
  logger: Logger;
  /** This instance, on the attempts it claims. */
  instance: string;
  /** MAX_CONCURRENT_CALLS, and CAMPAIGN_INBOUND_HEADROOM of it kept for inbound calls. */
  maxConcurrent: number;
  inboundHeadroom: number;
  pollMs: number;
  /** How long after its call ended an attempt is settled (default SETTLE_AFTER_MS). */
  settleMs?: number;
  /**
   * Places one attempt's call, as `POST /make-call` does, within `capacity` live calls, calling
   * `beforeRequest` just before Twilio is asked. @returns the call's SID
   */
  place(
    campaign: Campaign,
    attempt: ClaimedAttempt,
    options: { capacity: number; beforeRequest(): Promise<void> },
  ): Promise<string>;
}

export class Dialer {
  readonly #rounds: Rounds;

  constructor(private readonly deps: DialerDeps) {
    this.#rounds = new Rounds(
      deps.clock,
      deps.pollMs,
      () => this.tick(),
      (error) => deps.logger.error("campaign dialer round failed", { error }),
    );
  }

  /** A round every `pollMs` until `stop`. */
  start(): void {
    this.#rounds.start();
  }

  /** No new round; resolves once the one under way is done (the rest of its batch released). */
  stop(): Promise<void> {
    return this.#rounds.stop();
  }

  /** One round: settle, mark the interrupted, place what is due. @returns the calls placed */
  async tick(): Promise<number> {
    await this.#settleEnded();
    await this.#sweepInterrupted();
    let placed = 0;
    for (const campaign of await this.deps.store.campaigns.active()) {
      if (this.#rounds.stopped) break;
      const room = await this.#room();
      if (room <= 0) break;
      placed += await this.#dialDue(campaign, room);
    }
    return placed;
  }

  /** Calls this service may still place for campaigns now. */
  async #room(): Promise<number> {
    const { coordination, maxConcurrent, inboundHeadroom } = this.deps;
    return maxConcurrent - inboundHeadroom - (await coordination.load());
  }

  async #settleEnded(): Promise<void> {
    const { store, clock, logger } = this.deps;
    const campaigns = new Map<string, Campaign | undefined>();
    const settleMs = this.deps.settleMs ?? SETTLE_AFTER_MS;
    const endedBefore = new Date(clock.now().getTime() - settleMs + 1).toISOString();
    for (const ended of await store.campaigns.ended(SETTLE_BATCH, endedBefore)) {
      if (!campaigns.has(ended.campaign_id))
        campaigns.set(ended.campaign_id, await store.campaigns.get(ended.campaign_id));
      const campaign = campaigns.get(ended.campaign_id);
      if (!campaign) continue;
      const next = this.#afterCall(campaign, ended);
      if (await store.campaigns.settle(ended, next, clock.now().toISOString())) {
        logger.info("campaign attempt ended", {
          campaignId: campaign.id,
          leadId: ended.lead_id,
          outcome: ended.outcome,
          next: next.kind === "done" ? next.result : `${next.reason} ${next.at.toISOString()}`,
        });
      }
    }
    for (const campaign of campaigns.values())
      if (campaign) await store.campaigns.completeIfDone(campaign.id, clock.now().toISOString());
  }

  #afterCall(campaign: Campaign, ended: EndedAttempt): NextStep {
    return afterAttempt({
      outcome: ended.outcome,
      endedAt: new Date(ended.ended_at),
      attempts: ended.attempts,
      maxAttempts: campaign.max_attempts,
      retry: campaign.retry_after_minutes,
      retryNoDecision: campaign.retry_no_decision,
      ...(ended.callback_at ? { callbackAt: new Date(ended.callback_at) } : {}),
    });
  }

  async #sweepInterrupted(): Promise<void> {
    const { store, clock, logger } = this.deps;
    const now = clock.now();
    const before = new Date(now.getTime() - UNKNOWN_AFTER_MS).toISOString();
    const { unknown, released } = await store.campaigns.sweepInterrupted(before, now.toISOString());
    if (released > 0)
      logger.warn("campaign attempts claimed by a stopped process released: never dialled", {
        count: released,
      });
    for (const attempt of unknown) {
      logger.warn(
        "campaign attempt interrupted between the request to Twilio and storing its call SID: marked unknown, not retried; check Twilio's call log",
        { campaignId: attempt.campaign_id, leadId: attempt.lead_id, attemptId: attempt.id },
      );
    }
  }

  async #dialDue(campaign: Campaign, room: number): Promise<number> {
    const { store, clock, instance } = this.deps;
    const now = clock.now();
    const nowIso = now.toISOString();
    const openings = new Map<string, string | undefined>();
    const claimed = await store.campaigns.claim({
      campaign,
      now: nowIso,
      limit: room,
      instance,
      opening: (timezone) => {
        // Once per zone: a backlog of leads shares a handful of zones.
        if (!openings.has(timezone))
          openings.set(timezone, nextOpening(now, campaign.window, timezone)?.toISOString());
        return openings.get(timezone);
      },
    });
    let placed = 0;
    /** The attempts from `index` on are not dialled: released, due again. */
    const releaseFrom = async (index: number) => {
      for (const rest of claimed.slice(index))
        await store.campaigns.release(rest.id, clock.now().toISOString());
    };
    for (const [index, attempt] of claimed.entries()) {
      if (this.#rounds.stopped) {
        await releaseFrom(index);
        break;
      }
      const result = await this.#dial(campaign, attempt);
      if (result === "placed") placed++;
      if (result === "stop") {
        // Twilio refuses the account, is unreachable or in doubt, or no room: the rest waits.
        await releaseFrom(index + 1);
        break;
      }
    }
    if (claimed.length === 0) await store.campaigns.completeIfDone(campaign.id, nowIso);
    return placed;
  }

  /**
   * Places one claimed attempt and records what became of it. @returns "placed"; "next" (it was
   * not, go on with the batch); "stop" (it was not, and the rest of the batch should not be)
   */
  async #dial(campaign: Campaign, attempt: ClaimedAttempt): Promise<"placed" | "next" | "stop"> {
    const { store, clock, logger, maxConcurrent, inboundHeadroom } = this.deps;
    const log = { campaignId: campaign.id, leadId: attempt.lead_id, attempt: attempt.number };
    const now = () => clock.now().toISOString();
    let requested = false;
    let callSid: string;
    try {
      callSid = await this.deps.place(campaign, attempt, {
        capacity: maxConcurrent - inboundHeadroom,
        beforeRequest: async () => {
          if (!(await store.campaigns.requested(attempt.id, now()))) throw new NotOursAnyMore();
          requested = true;
        },
      });
    } catch (error) {
      return this.#notPlaced(campaign, attempt, error, requested, log);
    }
    try {
      await store.campaigns.placed(attempt.id, callSid, now());
    } catch (error) {
      logger.error("could not store a campaign call's SID; the attempt will show as unknown", {
        ...log,
        callSid,
        error,
      });
    }
    return "placed";
  }

  /** What follows an attempt whose call was not placed. */
  async #notPlaced(
    campaign: Campaign,
    attempt: ClaimedAttempt,
    error: unknown,
    requested: boolean,
    log: Record<string, unknown>,
  ): Promise<"next" | "stop"> {
    const { store, clock, logger } = this.deps;
    const now = clock.now().toISOString();
    if (error instanceof NotOursAnyMore) return "next";
    if (error instanceof DoNotCallError) {
      logger.info("campaign lead on the do-not-call list: not called", log);
      await store.campaigns.finishUnplaced(
        attempt.id,
        "skipped",
        "the number is on the do-not-call list",
        { kind: "done", result: "do_not_call" },
        now,
      );
      return "next";
    }
    if (error instanceof TooManyCallsError || error instanceof ShuttingDownError) {
      // Not an attempt at all: the lead is due again at the next round.
      await store.campaigns.release(attempt.id, now);
      return "stop";
    }
    if (error instanceof TwilioApiError && error.refused) {
      // Twilio's answer: no call was created. Its text names the number: kept out of the log's fields.
      const twilio = { ...log, code: error.twilioCode, pii: { error: error.message } };
      if (error.twilioCode !== undefined && NUMBER_ERRORS.has(error.twilioCode)) {
        logger.warn("campaign call refused by Twilio for its number", twilio);
        await this.#failed(campaign, attempt, error.message, now);
        return "next";
      }
      await store.campaigns.release(attempt.id, now);
      if (error.twilioCode === RATE_LIMITED || error.twilioStatus === 429) {
        logger.warn("Twilio asks for fewer calls: the campaign waits for the next round", twilio);
        return "stop";
      }
      logger.error("Twilio refuses the account's calls: campaign paused", twilio);
      await store.campaigns.suspend(
        campaign.id,
        `paused by the service: Twilio refused to place its calls (error ${error.twilioCode ?? error.twilioStatus}); fix the account or the caller ID, then resume`,
        now,
      );
      return "stop";
    }
    if (error instanceof CallNotRecordedError) {
      // Placed, then hung up at once because it could not be recorded: a failed attempt.
      logger.warn("campaign call hung up: it could not be recorded", log);
      await this.#failed(campaign, attempt, error.message, now);
      return "next";
    }
    if (!requested || (error instanceof TwilioApiError && error.notSent)) {
      // Failed before Twilio was asked (the database, Redis), or Twilio could not be reached:
      // nothing rang; due again, and the rest of the batch waits for the next round.
      logger.error("campaign call not placed; the lead stays due", {
        ...log,
        pii: { error: (error as Error).message },
      });
      await store.campaigns.release(attempt.id, now);
      return "stop";
    }
    // Twilio may or may not have placed it: left `dialling`, so it becomes `unknown`; the rest of
    // the batch is not risked on a Twilio in that state.
    logger.error("campaign call may or may not have been placed", {
      ...log,
      pii: { error: (error as Error).message },
    });
    return "stop";
  }

  /** A failed attempt, tried again per the campaign's policy. */
  async #failed(
    campaign: Campaign,
    attempt: ClaimedAttempt,
    error: string,
    now: string,
  ): Promise<void> {
    await this.deps.store.campaigns.finishUnplaced(
      attempt.id,
      "failed",
      error,
      this.#afterCall(campaign, {
        attempt_id: attempt.id,
        campaign_id: campaign.id,
        lead_id: attempt.lead_id,
        outcome: "failed",
        ended_at: now,
        attempts: attempt.number,
        callback_at: null,
      }),
      now,
    );
  }
}
