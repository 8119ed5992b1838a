/** Bookable slots generated from opening hours, in the business's own time zone. */
import type { NewSlot } from "../../store/appointments.ts";
import { zonedToUtc } from "./time.ts";

/** Minutes since midnight, for writing opening hours: `at(9, 30)`. */
export const at = (hour: number, minute = 0): number => hour * 60 + minute;

export interface DayOfSlots {
  calendar: string;
  provider: string;
  /** YYYY-MM-DD in `timeZone`. */
  date: string;
  /** Opening periods as [start, end) minutes of the day. */
  periods: readonly (readonly [number, number])[];
  slotMinutes: number;
  timeZone: string;
}

/**
 * Back-to-back slots filling each opening period of one provider's day. The zone's offset is looked
 * up at the day's first opening and last closing only: when both agree (every day but the two a
 * year the clocks change), every time in between has it too, and start-up seeds weeks of slots.
 */
export function slotsForDay({
  calendar,
  provider,
  date,
  periods,
  slotMinutes,
  timeZone,
}: DayOfSlots): NewSlot[] {
  if (periods.length === 0) return [];
  const [year, month, day] = date.split("-").map(Number) as [number, number, number];
  const wall = (minutes: number) => Date.UTC(year, month - 1, day, 0, minutes);
  const offsetAt = (minutes: number) =>
    wall(minutes) - zonedToUtc(date, minutes, timeZone).getTime();
  const opens = periods.map(([open]) => open);
  const closes = periods.map(([, close]) => close);
  const offset = offsetAt(Math.min(...opens));
  const sameAllDay = offset === offsetAt(Math.max(...closes));
  const utc = (minutes: number) =>
    sameAllDay ? new Date(wall(minutes) - offset) : zonedToUtc(date, minutes, timeZone);
  const slots: NewSlot[] = [];
  for (const [open, close] of periods) {
    for (let start = open; start + slotMinutes <= close; start += slotMinutes) {
      slots.push({
        calendar,
        provider,
        starts_at: utc(start).toISOString(),
        ends_at: utc(start + slotMinutes).toISOString(),
      });
    }
  }
  return slots;
}
