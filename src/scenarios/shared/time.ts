/**
 * Office-local time for scenarios: slots are stored as UTC instants, generated from and spoken in the
 * office's own time zone (IANA name), with daylight-saving handled by Intl.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

/**
 * One `Intl.DateTimeFormat` per locale, zone and options, made once: making one costs far more than
 * using one, and seeding the booking weeks' slots at start-up takes thousands of conversions.
 */
function formatter(
  locale: string,
  timeZone: string,
  options: Intl.DateTimeFormatOptions,
): Intl.DateTimeFormat {
  const key = `${locale} ${timeZone} ${JSON.stringify(options)}`;
  let format = formatters.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat(locale, { ...options, timeZone });
    formatters.set(key, format);
  }
  return format;
}

/** Minutes to add to UTC to get local time in `timeZone` at `instant`. */
function offsetMinutes(instant: number, timeZone: string): number {
  const parts = formatter("en-US", timeZone, {
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  }).formatToParts(new Date(instant));
  const get = (type: string) => Number(parts.find((part) => part.type === type)?.value);
  const local = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"));
  return Math.round((local - Math.floor(instant / 60_000) * 60_000) / 60_000);
}

/**
 * The UTC instant of a wall-clock time in `timeZone`.
 * @example zonedToUtc("2026-03-03", 9 * 60, "America/New_York") // 2026-03-03T14:00:00.000Z
 */
export function zonedToUtc(date: string, minutesOfDay: number, timeZone: string): Date {
  const [year, month, day] = date.split("-").map(Number) as [number, number, number];
  const wall = Date.UTC(year, month - 1, day, 0, minutesOfDay);
  let instant = wall - offsetMinutes(wall, timeZone) * 60_000;
  instant = wall - offsetMinutes(instant, timeZone) * 60_000;
  return new Date(instant);
}

/** The calendar date (YYYY-MM-DD) of `instant` in `timeZone`. */
export function localDate(instant: Date, timeZone: string): string {
  return formatter("en-CA", timeZone, {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).format(instant);
}

/** Minutes since local midnight of `instant` in `timeZone`. */
export function localMinutes(instant: Date, timeZone: string): number {
  const parts = formatter("en-US", timeZone, {
    hourCycle: "h23",
    hour: "2-digit",
    minute: "2-digit",
  }).formatToParts(instant);
  const get = (type: string) => Number(parts.find((part) => part.type === type)?.value);
  return get("hour") * 60 + get("minute");
}

/** ISO weekday of a YYYY-MM-DD date: 1 = Monday … 7 = Sunday. */
export function isoWeekday(date: string): number {
  const day = new Date(`${date}T12:00:00Z`).getUTCDay();
  return day === 0 ? 7 : day;
}

/** YYYY-MM-DD `days` after `date`. */
export function addDays(date: string, days: number): string {
  const next = new Date(`${date}T12:00:00Z`);
  next.setUTCDate(next.getUTCDate() + days);
  return next.toISOString().slice(0, 10);
}

/**
 * How a time is said on the phone, in the office's zone.
 * @example spokenTime(new Date("2026-03-03T14:00:00Z"), "America/New_York") // "Tuesday, March 3 at 9:00 AM"
 */
export function spokenTime(instant: Date, timeZone: string): string {
  const day = formatter("en-US", timeZone, {
    weekday: "long",
    month: "long",
    day: "numeric",
  }).format(instant);
  const time = formatter("en-US", timeZone, {
    hour: "numeric",
    minute: "2-digit",
  }).format(instant);
  return `${day} at ${time}`;
}

/** A long date for prompts, e.g. "Monday, March 2, 2026". */
export function spokenDate(instant: Date, timeZone: string): string {
  return formatter("en-US", timeZone, {
    weekday: "long",
    month: "long",
    day: "numeric",
    year: "numeric",
  }).format(instant);
}
