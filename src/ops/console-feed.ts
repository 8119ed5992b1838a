/**
 * What the console's live stream pushes: the live calls of every worker and instance, and each new
 * entry of any call's timeline. Both come from the database they all share (a call's stream start
 * is written at once, its events within CALL_EVENTS_FLUSH_MS), looked at every 300 ms while at
 * least one console listens, and nothing while none does.
 */
import type { Clock, Timer } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { CallEvent, CallRecord } from "../store/calls.ts";
import type { Storage } from "../store/port.ts";

const POLL_MS = 300;
/** Live calls shown at most. */
const MAX_LIVE = 500;
/** Events read per look; more wait for the next. */
const BATCH = 500;
/**
 * Ids below the newest seen are read again: on PostgreSQL two instances' writes can commit out of
 * id order, so an entry with a smaller id may appear after a larger one was read.
 */
const OVERLAP = 200;

/** A live call as the console lists it (the number masked). */
export interface LiveCallView {
  sid: string;
  direction: string;
  scenario: string;
  number: string;
  status: string;
  /** When the conversation started (its stream), for the duration shown. */
  started_at: string;
  last_line: string | null;
}

export type FeedMessage =
  | { type: "live"; calls: LiveCallView[] }
  | { type: "event"; event: CallEvent };

/** All but the last four digits hidden: "+1•••••••4321". */
export function maskNumber(number: string): string {
  if (!/^\+\d{5,15}$/.test(number)) return number.length > 4 ? "•••" : number;
  return `${number.slice(0, 2)}${"•".repeat(number.length - 6)}${number.slice(-4)}`;
}

export class ConsoleFeed {
  readonly #listeners = new Set<(message: FeedMessage) => void>();
  readonly #lastLines = new Map<string, string>();
  #lastEventId: number | undefined;
  /** Ids already pushed within the overlap. */
  readonly #seen = new Set<number>();
  #lastLive = "";
  #live: LiveCallView[] = [];
  #timer: Timer | undefined;

  constructor(
    private readonly store: Storage,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Listens until the returned function is called; the live list comes at once. */
  subscribe(listener: (message: FeedMessage) => void): () => void {
    this.#listeners.add(listener);
    if (this.#lastEventId !== undefined) listener({ type: "live", calls: this.#live });
    if (!this.#timer) this.#schedule(0);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) {
        this.#timer?.cancel();
        this.#timer = undefined;
        this.#lastEventId = undefined;
        this.#lastLive = "";
        this.#seen.clear();
      }
    };
  }

  #schedule(ms: number): void {
    this.#timer = this.clock.setTimeout(() => {
      this.#look()
        .catch((error: unknown) => this.logger.error("console feed failed", { error }))
        .finally(() => {
          if (this.#listeners.size > 0) this.#schedule(POLL_MS);
        });
    }, ms);
  }

  async #look(): Promise<void> {
    const { calls } = this.store;
    const open = (await calls.list({ status: "in-progress", limit: MAX_LIVE })).filter(
      (call) => call.ended_at === null,
    );
    if (this.#lastEventId === undefined) {
      // A first look: where the timelines are now, and the last line of each live call.
      this.#lastEventId = await calls.lastEventId();
      for (const call of open) {
        const line = (await calls.events(call.sid)).findLast(
          (event) => event.kind === "transcript",
        );
        if (line?.kind === "transcript") this.#lastLines.set(call.sid, line.data.text);
      }
    } else {
      const events = await calls.eventsSince(Math.max(0, this.#lastEventId - OVERLAP), BATCH);
      for (const event of events) {
        if (this.#seen.has(event.id)) continue;
        this.#seen.add(event.id);
        this.#lastEventId = Math.max(this.#lastEventId, event.id);
        if (event.kind === "transcript") this.#lastLines.set(event.call_sid, event.data.text);
        this.#emit({ type: "event", event });
      }
    }
    this.#live = open.map((call) => this.#view(call));
    const live = JSON.stringify(this.#live);
    if (live !== this.#lastLive) {
      this.#lastLive = live;
      this.#emit({ type: "live", calls: this.#live });
    }
    for (const id of this.#seen)
      if (id <= (this.#lastEventId ?? 0) - OVERLAP) this.#seen.delete(id);
    const liveSids = new Set(open.map((call) => call.sid));
    for (const sid of this.#lastLines.keys()) if (!liveSids.has(sid)) this.#lastLines.delete(sid);
  }

  #view(call: CallRecord): LiveCallView {
    return {
      sid: call.sid,
      direction: call.direction,
      scenario: call.scenario,
      number: maskNumber(call.direction === "inbound" ? call.from_number : call.to_number),
      status: call.transfer?.result === "pending" ? "transferring" : call.status,
      started_at: call.answered_at ?? call.created_at,
      last_line: this.#lastLines.get(call.sid) ?? null,
    };
  }

  #emit(message: FeedMessage): void {
    for (const listener of this.#listeners) listener(message);
  }
}
