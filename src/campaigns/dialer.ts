/**
 * The dialer: every instance runs one, and the database keeps them from getting in each other's
 * way. Each round it settles the attempts whose calls have ended (retry, callback or done, per
 * `schedule.ts`), marks `unknown` the attempts a stopped process left between asking Twilio and
 * storing the answer, then claims and places the due attempts of each active campaign: within the
 * campaign's concurrency and rate (counted in the claim, across instances), the calling window
 * in each lead's zone, and the service's capacity less `CAMPAIGN_INBOUND_HEADROOM` calls kept free
 * for inbound callers. Calls go out through the same path as `POST /make-call` (do-not-call
 * check, stream token, Twilio with AMD, the record).
 */
import { TwilioApiError } from "../adapters/twilio-rest.ts";
import type { Clock, Timer } from "../clock.ts";
import { CallNotRecordedError, ShuttingDownError } from "../errors.ts";
import type { Coordination } from "../fleet/coordination.ts";
import type { Logger } from "../log.ts";
import { DoNotCallError } from "../routes/dnc.ts";
import { TooManyCallsError } from "../routes/make-call.ts";
import type { Campaign, ClaimedAttempt, EndedAttempt } from "../store/campaigns.ts";
import type { Storage } from "../store/port.ts";
import { afterAttempt, type NextStep, nextOpening } from "./schedule.ts";

/**
 * An attempt still `dialling` this long after its claim was interrupted: Twilio answers a create
 * within seconds (the SDK gives up after 30 s), so its process stopped before storing the SID.
 */
export const UNKNOWN_AFTER_MS = 120_000;
/** Ended attempts settled per round. */
const SETTLE_BATCH = 100;

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
  /** Places one attempt's call, as `POST /make-call` does. @returns the call's SID */
  place(campaign: Campaign, attempt: ClaimedAttempt): Promise<string>;
}

export class Dialer {
  #timer: Timer | undefined;
  #running: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(private readonly deps: DialerDeps) {}

  /** A round every `pollMs` until `stop`. */
  start(): void {
    const next = () => {
      if (this.#stopped) return;
      this.#timer = this.deps.clock.setTimeout(() => {
        this.#running = this.tick().then(next, (error: unknown) => {
          this.deps.logger.error("campaign dialer round failed", { error });
          next();
        });
      }, this.deps.pollMs);
    };
    next();
  }

  /** No new round; resolves once the one under way is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    await this.#running;
  }

  /** One round: settle, mark the interrupted, place what is due. @returns the calls placed */
  async tick(): Promise<number> {
    await this.#settleEnded();
    await this.#markInterrupted();
    let placed = 0;
    for (const campaign of await this.deps.store.campaigns.active()) {
      if (this.#stopped) break;
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
    for (const ended of await store.campaigns.ended(SETTLE_BATCH)) {
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

  async #markInterrupted(): Promise<void> {
    const { store, clock, logger } = this.deps;
    const now = clock.now();
    const before = new Date(now.getTime() - UNKNOWN_AFTER_MS).toISOString();
    for (const attempt of await store.campaigns.markUnknown(before, now.toISOString())) {
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
    const claimed = await store.campaigns.claim({
      campaign,
      now: nowIso,
      limit: room,
      instance,
      opening: (timezone) => nextOpening(now, campaign.window, timezone)?.toISOString(),
    });
    let placed = 0;
    for (const attempt of claimed) {
      if (await this.#dial(campaign, attempt)) placed++;
    }
    if (claimed.length === 0) await store.campaigns.completeIfDone(campaign.id, nowIso);
    return placed;
  }

  /** Places one claimed attempt and records what became of it. @returns whether a call was placed */
  async #dial(campaign: Campaign, attempt: ClaimedAttempt): Promise<boolean> {
    const { store, clock, logger } = this.deps;
    const log = { campaignId: campaign.id, leadId: attempt.lead_id, attempt: attempt.number };
    let callSid: string;
    try {
      callSid = await this.deps.place(campaign, attempt);
    } catch (error) {
      const now = clock.now();
      if (error instanceof DoNotCallError) {
        logger.info("campaign lead on the do-not-call list: not called", log);
        await store.campaigns.finishUnplaced(
          attempt.id,
          "skipped",
          "the number is on the do-not-call list",
          { kind: "done", result: "do_not_call" },
          now.toISOString(),
        );
      } else if (error instanceof TooManyCallsError || error instanceof ShuttingDownError) {
        // Not an attempt at all: the lead is due again at the next round.
        await store.campaigns.release(attempt.id, now.toISOString());
      } else if (
        (error instanceof TwilioApiError && error.refused) ||
        error instanceof CallNotRecordedError
      ) {
        // Twilio refused it, or it was hung up at once: no call happened; retried as a failure.
        logger.warn("campaign call not placed", { ...log, error });
        await store.campaigns.finishUnplaced(
          attempt.id,
          "failed",
          (error as Error).message,
          this.#afterCall(campaign, {
            attempt_id: attempt.id,
            campaign_id: campaign.id,
            lead_id: attempt.lead_id,
            outcome: "failed",
            ended_at: now.toISOString(),
            attempts: attempt.number,
            callback_at: null,
          }),
          now.toISOString(),
        );
      } else {
        // Twilio may or may not have placed it: left `dialling`, so it becomes `unknown`.
        logger.error("campaign call may or may not have been placed", { ...log, error });
      }
      return false;
    }
    try {
      await store.campaigns.placed(attempt.id, callSid, clock.now().toISOString());
    } catch (error) {
      logger.error("could not store a campaign call's SID; the attempt will show as unknown", {
        ...log,
        callSid,
        error,
      });
    }
    return true;
  }
}
