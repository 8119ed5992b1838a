/**
 * What the console's live stream pushes: the live calls of every worker and instance, and each new
 * entry of any call's timeline. Both come from the database they all share (a call's stream start
 * is written at once, its events within CALL_EVENTS_FLUSH_MS), looked at every 300 ms while at
 * least one console listens, and nothing while none does.
 */
import type { Clock } from "../clock.ts";
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
  #looping = false;

  constructor(
    private readonly store: Storage,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Listens until the returned function is called; the live list comes at once. */
  subscribe(listener: (message: FeedMessage) => void): () => void {
    this.#listeners.add(listener);
    if (this.#lastEventId !== undefined) listener({ type: "live", calls: this.#live });
    if (!this.#looping) void this.#loop();
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * One loop at a time: a look, then the next after POLL_MS, while anyone listens. When the last
   * listener has left it stops and forgets where it was (the next one starts afresh).
   */
  async #loop(): Promise<void> {
    this.#looping = true;
    try {
      while (this.#listeners.size > 0) {
        await this.#look().catch((error: unknown) =>
          this.logger.error("console feed failed", { error }),
        );
        if (this.#listeners.size === 0) break;
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, POLL_MS));
      }
    } finally {
      this.#looping = false;
      this.#lastEventId = undefined;
      this.#lastLive = "";
      this.#seen.clear();
      this.#lastLines.clear();
    }
  }

  async #look(): Promise<void> {
    const { calls } = this.store;
    const open = (await calls.list({ status: "in-progress", limit: MAX_LIVE })).filter(
      (call) => call.ended_at === null,
    );
    if (this.#lastEventId === undefined) {
      // A first look: from where the timelines are now (a live call's last line shows with its next).
      this.#lastEventId = await calls.lastEventId();
      // Entries already there are the past: only later ones are pushed.
      const recent = await calls.eventsSince(Math.max(0, this.#lastEventId - OVERLAP), BATCH);
      for (const event of recent) this.#seen.add(event.id);
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
    for (const listener of this.#listeners) {
      try {
        listener(message);
      } catch (error) {
        // A stream that closed under us: it leaves, the others still get the message.
        this.logger.debug("console listener failed", { error });
        this.#listeners.delete(listener);
      }
    }
  }
}
