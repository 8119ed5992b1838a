/**
 * What happens to every ended call, once: the outbox rows a trigger adds when a call's record ends
 * (`call_endings`) are claimed here, on whichever instance gets them first (a lease, so exactly one
 * works on a row at a time). The first claim counts the call in the metrics (`calls_total`,
 * `call_outcomes_total`) and logs its "call ended" line (end reason, outcome, duration); with
 * EVENTS_WEBHOOK_URL the call, as `GET /calls/{sid}` shows it, is then
 * POSTed, signed, and retried with a doubling delay for up to an hour after the call ended. Never
 * on a call's path: the rows wait in the database, so a restart loses nothing.
 */
import { createHmac } from "node:crypto";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import { Rounds } from "../rounds.ts";
import type { CallEnding, EndingUpdate } from "../store/endings.ts";
import type { Storage } from "../store/port.ts";
import { VERSION } from "../version.ts";
import { callDetail } from "./call-detail.ts";
import type { Metrics } from "./metrics.ts";

/** A delivery is given up this long after the call ended. */
export const GIVE_UP_AFTER_MS = 3_600_000;
/** The longest wait between two attempts. */
const MAX_RETRY_MS = 600_000;
/** How long the receiver has to answer one attempt. */
const ATTEMPT_TIMEOUT_MS = 10_000;
/** Rows taken per claim: worked on one after another, all within their lease. */
const BATCH = 5;
/**
 * How long a claimed row is this process's (a process that died lets go of it after this): longer
 * than a whole batch can take, so no row is claimed again while it is being worked on.
 */
const LEASE_MS = BATCH * ATTEMPT_TIMEOUT_MS + 30_000;

export interface EventsWebhook {
  url: string;
  secret: string;
  /** The first retry's delay; each next one doubles, up to ten minutes. */
  retryMs: number;
}

export interface CallEndingsDeps {
  store: Storage;
  metrics: Metrics;
  clock: Clock;
  logger: Logger;
  webhook: EventsWebhook | undefined;
  /** SERVER_EXTERNAL_URL, for the recording's link in the body. */
  externalUrl: string | undefined;
  /** How often the outbox is looked at. */
  pollMs: number;
  /**
   * How long after a call ended it is first looked at: what its session writes last (the
   * recording's size) is on the record by then.
   */
  settleMs: number;
}

/** `X-Voice-Agent-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function eventSignature(secret: string, unixSeconds: number, body: string): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

export class CallEndings {
  readonly #rounds: Rounds;

  constructor(private readonly deps: CallEndingsDeps) {
    this.#rounds = new Rounds(
      deps.clock,
      deps.pollMs,
      () => this.tick(),
      (error) => deps.logger.error("could not work through ended calls", { error }),
    );
  }

  /** Looks at the outbox every `pollMs` until `stop`. */
  start(): void {
    this.#rounds.start();
  }

  /** Stops looking; resolves once the batch under way is done. */
  stop(): Promise<void> {
    return this.#rounds.stop();
  }

  /** Works through the rows due now. @returns how many */
  async tick(): Promise<number> {
    const { store, clock, settleMs } = this.deps;
    const now = clock.now().getTime();
    const rows = await store.endings.claim({
      dueBy: new Date(now - settleMs).toISOString(),
      now: new Date(now).toISOString(),
      leaseUntil: new Date(now + LEASE_MS).toISOString(),
      limit: BATCH,
    });
    for (const row of rows) {
      if (this.#rounds.stopped) break;
      await this.#process(row).catch((error: unknown) =>
        this.deps.logger.error("could not work on an ended call", { callSid: row.call_sid, error }),
      );
    }
    return rows.length;
  }

  async #process(row: CallEnding): Promise<void> {
    const { store, webhook } = this.deps;
    // Marked first, then counted: a failure after this never counts the call twice.
    if (!row.counted && (await store.endings.markCounted(row.call_sid)))
      await this.#count(row.call_sid);
    if (!webhook) {
      await store.endings.settle(row.call_sid, { state: "none" });
      return;
    }
    let outcome: EndingUpdate;
    try {
      outcome = await this.#deliver(row, webhook);
    } catch (error) {
      // Building the body failed (the store): retried like a refused delivery, given up alike.
      outcome = this.#retry(row, row.attempts + 1, this.deps.clock.now().getTime(), {
        status: null,
        error: (error as Error).message,
      });
    }
    await store.endings.settle(row.call_sid, outcome);
  }

  /** The metrics and the "call ended" line of a call whose record is final. */
  async #count(callSid: string): Promise<void> {
    const call = await this.deps.store.calls.get(callSid);
    if (!call) return;
    const endReason = call.end_reason ?? "unknown";
    this.deps.metrics.callEnded(
      { direction: call.direction, scenario: call.scenario },
      endReason,
      call.outcome,
    );
    this.deps.logger.info("call ended", {
      callSid: call.sid,
      direction: call.direction,
      scenario: call.scenario,
      end_reason: endReason,
      outcome: call.outcome,
      duration_ms: call.ended_at
        ? Date.parse(call.ended_at) - Date.parse(call.answered_at ?? call.created_at)
        : null,
    });
  }

  /** One attempt; what it changes about the row. */
  async #deliver(row: CallEnding, webhook: EventsWebhook): Promise<EndingUpdate> {
    const { store, clock, logger, externalUrl } = this.deps;
    const attempts = row.attempts + 1;
    const detail = await callDetail(store, row.call_sid, externalUrl);
    if (!detail) return { state: "failed", attempts, last_error: "the call's record is gone" };
    // The delivery's own state is this attempt's business, not the receiver's.
    const { delivery: _delivery, ...call } = detail;
    const body = JSON.stringify({ event: "call.ended", call });
    const sentAt = clock.now();
    let failure: { status: number | null; error: string };
    try {
      const response = await fetch(webhook.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": `voice-agent/${VERSION}`,
          "x-voice-agent-signature": eventSignature(
            webhook.secret,
            Math.floor(sentAt.getTime() / 1000),
            body,
          ),
        },
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      });
      await response.body?.cancel();
      if (response.ok) {
        logger.info("call end delivered", { callSid: row.call_sid, attempts });
        return {
          state: "delivered",
          attempts,
          last_status: response.status,
          delivered_at: clock.now().toISOString(),
        };
      }
      failure = { status: response.status, error: `the receiver answered ${response.status}` };
    } catch (error) {
      failure = { status: null, error: (error as Error).message };
    }
    return this.#retry(row, attempts, sentAt.getTime(), failure);
  }

  /** A failed attempt: the next one after a doubling wait, or given up an hour after the end. */
  #retry(
    row: CallEnding,
    attempts: number,
    now: number,
    failure: { status: number | null; error: string },
  ): EndingUpdate {
    const retryMs = this.deps.webhook?.retryMs ?? 0;
    const next = now + Math.min(retryMs * 2 ** (attempts - 1), MAX_RETRY_MS);
    const givenUp = next > Date.parse(row.ended_at) + GIVE_UP_AFTER_MS;
    this.deps.logger.warn(
      givenUp ? "call end not delivered; given up" : "call end not delivered; will retry",
      { callSid: row.call_sid, attempts, error: failure.error },
    );
    return {
      state: givenUp ? "failed" : "pending",
      attempts,
      next_attempt_at: new Date(next).toISOString(),
      last_error: failure.error,
      ...(failure.status === null ? {} : { last_status: failure.status }),
    };
  }
}
