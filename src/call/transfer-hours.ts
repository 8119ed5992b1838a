/**
 * When a person can take a transferred call: weekly hours as an operator writes them in
 * TRANSFER_HOURS ("Mon-Fri 08:00-17:00; Sat 09:00-12:00"), parsed once at start-up, and checked
 * against an instant in the scenario's time zone. Pure: no clock, no I/O.
 */
import { isoWeekday, localDate, localMinutes } from "../scenarios/shared/time.ts";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

/** Some days of the week (ISO: 1 = Monday) from `from` to `to` minutes of the day. */
interface Span {
  days: ReadonlySet<number>;
  from: number;
  to: number;
}

export interface WeeklyHours {
  readonly spans: readonly Span[];
  /** As written, for the agent ("no one is available; the team answers Mon-Fri 08:00-17:00"). */
  readonly text: string;
}

const SPAN = /^([a-z]{3})(?:-([a-z]{3}))?\s+(\d{2}):(\d{2})-(\d{2}):(\d{2})$/i;

function day(name: string): number {
  const index = DAYS.indexOf(name.toLowerCase() as (typeof DAYS)[number]);
  if (index < 0) throw new Error(`${name} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)`);
  return index + 1;
}

function minutes(hours: string, mins: string, written: string): number {
  const value = Number(hours) * 60 + Number(mins);
  if (Number(mins) > 59 || value > 24 * 60) throw new Error(`${written} is not a time of day`);
  return value;
}

/**
 * Spans separated by `;`, each a day or a day range (wrapping past Sunday is allowed) and a time
 * range within the day (24:00 is the end of the day; overnight spans are written as two).
 * @example parseWeeklyHours("Mon-Fri 08:00-17:00; Sat 09:00-12:00")
 * @throws Error naming what is wrong
 */
export function parseWeeklyHours(text: string): WeeklyHours {
  const spans = text.split(";").map((written) => {
    const match = SPAN.exec(written.trim());
    if (!match)
      throw new Error(
        `"${written.trim()}" is not of the form Mon-Fri 08:00-17:00 or Sat 09:00-12:00`,
      );
    const [, first = "", last, fromH = "", fromM = "", toH = "", toM = ""] = match;
    const start = day(first);
    const end = last ? day(last) : start;
    const days = new Set<number>();
    for (let d = start; ; d = (d % 7) + 1) {
      days.add(d);
      if (d === end) break;
    }
    const from = minutes(fromH, fromM, `${fromH}:${fromM}`);
    const to = minutes(toH, toM, `${toH}:${toM}`);
    if (to <= from)
      throw new Error(
        `${fromH}:${fromM}-${toH}:${toM} ends before it starts (write an overnight span as two)`,
      );
    return { days, from, to };
  });
  return { spans, text: text.trim().replace(/\s*;\s*/g, "; ") };
}

/** True when `instant`, in `timeZone`, falls in one of the spans. */
export function isOpen(hours: WeeklyHours, instant: Date, timeZone: string): boolean {
  const weekday = isoWeekday(localDate(instant, timeZone));
  const minute = localMinutes(instant, timeZone);
  return hours.spans.some(
    (span) => span.days.has(weekday) && minute >= span.from && minute < span.to,
  );
}
