/** Inbound dental front desk: checks slots, books, looks up and cancels appointments for callers. */
import type { NewSlot } from "../../store/appointments.ts";
import { slotsForDay } from "../shared/slots.ts";
import { addDays, isoWeekday, localDate } from "../shared/time.ts";
import type { Scenario } from "../types.ts";
import { type Office, office } from "./office.ts";
import { greeting, systemPrompt } from "./prompt.ts";
import { receptionistTools } from "./tools.ts";

export const dentalReceptionist: Scenario = {
  id: "dental-receptionist",
  description: `Inbound receptionist for ${office.name}`,
  timeZone: office.timeZone,
  async prepare(call, { store, clock }) {
    return {
      prompt: systemPrompt(office, call.startedAt, call.from),
      greeting: greeting(office),
      tools: receptionistTools(office, store, clock),
      keyterms: officeKeyterms(office),
    };
  },
  async seed({ store, clock }) {
    const today = localDate(clock.now(), office.timeZone);
    const slots: NewSlot[] = [];
    for (let day = 0; day < office.bookingWeeks * 7; day++) {
      const date = addDays(today, day);
      for (const provider of office.providers) {
        slots.push(
          ...slotsForDay({
            calendar: office.calendar,
            provider: provider.name,
            date,
            periods: provider.hours[isoWeekday(date)] ?? [],
            slotMinutes: provider.slotMinutes,
            timeZone: office.timeZone,
          }),
        );
      }
    }
    await store.appointments.addSlots(slots);
  },
};

/**
 * Flux keyterms: the office's name and its providers' names. A title is left off ("Dr. Sarah
 * Patel" → "Sarah Patel"): callers say it in several ways, and the names are what is hard to hear.
 */
export function officeKeyterms(practice: Office): string[] {
  return [
    practice.name,
    ...practice.providers.map((provider) => provider.name.replace(/^Dr\.?\s+/, "")),
  ];
}
