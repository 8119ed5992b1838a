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

/** Back-to-back slots filling each opening period of one provider's day. */
export function slotsForDay({
  calendar,
  provider,
  date,
  periods,
  slotMinutes,
  timeZone,
}: DayOfSlots): NewSlot[] {
  const slots: NewSlot[] = [];
  for (const [open, close] of periods) {
    for (let start = open; start + slotMinutes <= close; start += slotMinutes) {
      slots.push({
        calendar,
        provider,
        starts_at: zonedToUtc(date, start, timeZone).toISOString(),
        ends_at: zonedToUtc(date, start + slotMinutes, timeZone).toISOString(),
      });
    }
  }
  return slots;
}
