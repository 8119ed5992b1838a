/** The dental office as data: name, time zone, providers and their weekly hours. Edit here to change the practice. */
import { at } from "../shared/slots.ts";

export interface Provider {
  name: string;
  role: string;
  /** Length of one appointment with this provider. */
  slotMinutes: number;
  /** ISO weekday (1 = Monday) → opening periods as [start, end) minutes of the day. */
  hours: Partial<Record<number, [number, number][]>>;
}

const weekdays = (periods: [number, number][]) =>
  Object.fromEntries([1, 2, 3, 4, 5].map((day) => [day, periods]));

export const office = {
  name: "Bright Smile Dental",
  timeZone: "America/New_York",
  address: "120 Main Street, Springfield",
  calendar: "dental",
  /** How far ahead slots are generated. */
  bookingWeeks: 4,
  providers: [
    {
      name: "Dr. Sarah Patel",
      role: "general dentist",
      slotMinutes: 30,
      hours: {
        ...weekdays([
          [at(8), at(12)],
          [at(13), at(17)],
        ]),
        6: [[at(9), at(13)]],
      },
    },
    {
      name: "Dr. Michael Chen",
      role: "general dentist",
      slotMinutes: 30,
      hours: weekdays([
        [at(9), at(12)],
        [at(13), at(18)],
      ]),
    },
    {
      name: "Emily Rogers",
      role: "dental hygienist (cleanings)",
      slotMinutes: 60,
      hours: weekdays([
        [at(8), at(12)],
        [at(13), at(16)],
      ]),
    },
  ] satisfies Provider[],
};

export type Office = typeof office;
