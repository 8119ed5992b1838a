/**
 * When a campaign may ring a lead, and what it does after each attempt. Pure: the dialer asks, the
 * store records. A calling window is local time in the lead's own zone (days of the week, a start
 * and an end the same day), so 09:00 is 09:00 there whatever the season: daylight-saving changes
 * are Intl's business (`zonedToUtc`), never a fixed offset's.
 */
import {
  addDays,
  isoWeekday,
  localDate,
  localMinutes,
  zonedToUtc,
} from "../scenarios/shared/time.ts";

export const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** Local calling hours: `start` inclusive, `end` exclusive, both "HH:MM", start before end. */
export interface CallingWindow {
  days: readonly Weekday[];
  start: string;
  end: string;
}

/** Minutes since midnight of "HH:MM". */
export function minutesOf(time: string): number {
  const [hours, minutes] = time.split(":").map(Number) as [number, number];
  return hours * 60 + minutes;
}

/**
 * The first instant at or after `from` inside the window in `timeZone`: `from` itself when it is
 * inside. A window with no day (refused by the API) never opens: undefined.
 */
export function nextOpening(from: Date, window: CallingWindow, timeZone: string): Date | undefined {
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  const open = (date: string) => window.days.includes(WEEKDAYS[isoWeekday(date) - 1] as Weekday);
  const today = localDate(from, timeZone);
  // Inside by the local reading, also in an hour the clocks repeat when they go back.
  const local = localMinutes(from, timeZone);
  if (open(today) && local >= start && local < end) return from;
  for (let offset = 0; offset <= 7; offset++) {
    const date = addDays(today, offset);
    if (!open(date)) continue;
    const opens = firstMinuteFrom(date, start, timeZone);
    if (opens > from) return opens;
  }
  return undefined;
}

/**
 * The first instant of `date` whose local reading is `minutes` or later: that time itself, or,
 * when it does not exist there (the clocks jump over it), the moment they jump.
 */
function firstMinuteFrom(date: string, minutes: number, timeZone: string): Date {
  const at = zonedToUtc(date, minutes, timeZone);
  if (localMinutes(at, timeZone) === minutes) return at;
  const reached = (instant: number) =>
    localDate(new Date(instant), timeZone) === date &&
    localMinutes(new Date(instant), timeZone) >= minutes;
  // No jump is longer than a few hours: the earliest minute reached, by halving, on whichever
  // side of the jump the conversion landed.
  const before = localMinutes(at, timeZone) < minutes;
  let low = before ? at.getTime() : at.getTime() - 3 * 3_600_000;
  let high = before ? at.getTime() + 3 * 3_600_000 : at.getTime();
  while (high - low > 60_000) {
    const mid = low + Math.floor((high - low) / 120_000) * 60_000;
    if (reached(mid)) high = mid;
    else low = mid;
  }
  return new Date(high);
}

/** Whether `instant` is inside the window in `timeZone`. */
export function insideWindow(instant: Date, window: CallingWindow, timeZone: string): boolean {
  return nextOpening(instant, window, timeZone)?.getTime() === instant.getTime();
}

/** Minutes to wait after an attempt, by what became of it; the campaign's `retry_after_minutes`. */
export interface RetryPolicy {
  no_answer: number;
  busy: number;
  failed: number;
  no_answer_voicemail_left: number;
  /** Asked to be called back with no time given (no `schedule_callback`). */
  callback_requested: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  no_answer: 120,
  busy: 30,
  failed: 60,
  no_answer_voicemail_left: 1440,
  callback_requested: 1440,
};

/** Outcomes after which a lead is never called again by the campaign. */
export const FINAL_OUTCOMES = [
  "appointment_booked",
  "not_interested",
  "already_insured",
  "wrong_person",
  "do_not_call",
  "no_decision",
  /** A person took over the call. */
  "transferred",
  /** The lead left a message for a person: the team calls back, not the campaign. */
  "message_taken",
  /** The number is a fax line. */
  "fax",
] as const;

/** Which policy delay each retried outcome waits; any other outcome waits `failed`'s. */
const DELAY_OF: Record<string, keyof RetryPolicy> = {
  no_answer: "no_answer",
  voicemail_failed: "no_answer",
  busy: "busy",
  no_answer_voicemail_left: "no_answer_voicemail_left",
  callback_requested: "callback_requested",
};

/**
 * Callbacks past `maxAttempts` a lead may ask for: they asked, but a caller who asks on every call
 * (or words in a lead's data that steer the agent) does not keep the campaign calling for ever.
 */
export const EXTRA_CALLBACKS = 2;

export interface AttemptResult {
  /** The call's outcome (a disposition, or how it ended). */
  outcome: string;
  endedAt: Date;
  /** Attempts made so far, this one included. */
  attempts: number;
  maxAttempts: number;
  retry: RetryPolicy;
  /** `no_decision` is retried like a failure instead of being final. */
  retryNoDecision: boolean;
  /** A time the lead asked to be called back at (`schedule_callback`), already inside the window. */
  callbackAt?: Date;
}

/** What the campaign does with the lead next. */
export type NextStep =
  | { kind: "done"; result: string }
  | { kind: "retry"; at: Date; reason: "callback" | "retry" };

/**
 * After an attempt: a final outcome ends the lead's part in the campaign; a callback the lead asked
 * for is placed at its time (even past `maxAttempts`, they asked for it, up to EXTRA_CALLBACKS more);
 * otherwise it is tried again after the policy's delay for that outcome, until `maxAttempts`
 * attempts were made.
 */
export function afterAttempt(result: AttemptResult): NextStep {
  const { outcome, retryNoDecision } = result;
  const final = (FINAL_OUTCOMES as readonly string[]).includes(outcome);
  if (final && !(outcome === "no_decision" && retryNoDecision))
    return { kind: "done", result: outcome };
  if (result.callbackAt && result.attempts < result.maxAttempts + EXTRA_CALLBACKS)
    return { kind: "retry", at: result.callbackAt, reason: "callback" };
  if (result.attempts >= result.maxAttempts) return { kind: "done", result: "max_attempts" };
  const delay = result.retry[DELAY_OF[outcome] ?? "failed"];
  return {
    kind: "retry",
    at: new Date(result.endedAt.getTime() + delay * 60_000),
    reason: "retry",
  };
}
