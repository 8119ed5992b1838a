/**
 * The follow-up's functions: consultation slots, booking, the lead update (outcome) and hang-up.
 * Everything is tied to the call's own lead and number, set when the call was placed: no argument
 * names another lead, books for another number, or links another lead's booking to this call.
 */
import { Type } from "@sinclair/typebox";
import type { Clock } from "../../clock.ts";
import type { Logger } from "../../log.ts";
import type { NewSlot, Slot } from "../../store/appointments.ts";
import type { Store } from "../../store/index.ts";
import type { Lead } from "../../store/leads.ts";
import { endCallTool } from "../shared/end-call.ts";
import { slotsForDay } from "../shared/slots.ts";
import {
  addDays,
  isoWeekday,
  localDate,
  localMinutes,
  spokenTime,
  zonedToUtc,
} from "../shared/time.ts";
import { defineTool, type Tool } from "../types.ts";
import type { Company } from "./company.ts";

const NOON = 12 * 60;
const MAX_OFFERED = 3;
/** A consultation is offered at least this far ahead, so the licensed agent can prepare. */
const MIN_NOTICE_MS = 60 * 60_000;

export const DISPOSITIONS = [
  "appointment_booked",
  "callback_requested",
  "not_interested",
  "already_insured",
  "wrong_person",
  "do_not_call",
  "no_decision",
] as const;

export const CALL_OUTCOMES = ["completed", "partial", "unreachable", "declined"] as const;

const literals = <T extends string>(values: readonly T[]) =>
  Type.Union(values.map((value) => Type.Literal(value)));

export function followUpTools(
  company: Company,
  lead: Lead,
  store: Store,
  clock: Clock,
  logger: Logger,
): Tool[] {
  const { appointments } = store;
  const describe = (slot: Slot) => ({
    slot_id: slot.id,
    licensed_agent: slot.provider,
    time: spokenTime(new Date(slot.starts_at), company.timeZone),
  });
  const openSlots = (from: Date, days: number, partOfDay?: "morning" | "afternoon") => {
    const start = new Date(Math.max(from.getTime(), clock.now().getTime() + MIN_NOTICE_MS));
    const to = zonedToUtc(addDays(localDate(start, company.timeZone), days), 0, company.timeZone);
    return appointments
      .openSlots({
        calendar: company.calendar,
        from: start.toISOString(),
        to: to.toISOString(),
        limit: 400,
      })
      .filter((slot) => {
        if (!partOfDay) return true;
        const minutes = localMinutes(new Date(slot.starts_at), company.timeZone);
        return partOfDay === "morning" ? minutes < NOON : minutes >= NOON;
      });
  };
  /** One slot per distinct start time, earliest first, so the caller hears different times. */
  const distinctTimes = (slots: Slot[]) =>
    slots.filter((slot, index) => slots.findIndex((s) => s.starts_at === slot.starts_at) === index);

  return [
    defineTool({
      name: "check_availability",
      description:
        "Find consultation times with a licensed agent over the next business days. Optionally a day (YYYY-MM-DD) and morning or afternoon.",
      parameters: Type.Object({
        day: Type.Optional(Type.String({ pattern: "^\\d{4}-\\d{2}-\\d{2}$" })),
        part_of_day: Type.Optional(literals(["morning", "afternoon"])),
      }),
      run: ({ day, part_of_day }) => {
        const from = day ? zonedToUtc(day, 0, company.timeZone) : clock.now();
        const slots = distinctTimes(openSlots(from, day ? 1 : 5, part_of_day));
        if (slots.length === 0)
          return {
            available: [],
            note: "Nothing open then. Offer another day or the other half of the day.",
          };
        return { available: slots.slice(0, MAX_OFFERED).map(describe) };
      },
    }),
    defineTool({
      name: "book_appointment",
      description: "Book a consultation slot (slot_id from check_availability) for this lead.",
      parameters: Type.Object({
        slot_id: Type.Integer({ minimum: 1 }),
        notes: Type.Optional(Type.String({ maxLength: 500 })),
      }),
      run: ({ slot_id, notes }, context) => {
        const slot = appointments.slot(slot_id);
        if (
          !slot ||
          slot.calendar !== company.calendar ||
          new Date(slot.starts_at) <= clock.now()
        ) {
          return {
            booked: false,
            problem: "That time does not exist or has passed. Check availability again.",
          };
        }
        const result = appointments.book({
          slot_id,
          name: `${lead.first_name} ${lead.last_name}`,
          phone: context.customerNumber,
          reason: notes ?? "homeowners insurance quote consultation",
          lead_id: lead.id,
          call_sid: context.callSid,
        });
        if (!result.ok) {
          const alternatives = distinctTimes(openSlots(new Date(slot.starts_at), 2))
            .slice(0, MAX_OFFERED)
            .map(describe);
          return { booked: false, problem: "Sorry, that time was just taken.", alternatives };
        }
        return {
          booked: true,
          appointment_id: result.booking.id,
          licensed_agent: result.booking.provider,
          time: spokenTime(new Date(result.booking.starts_at), company.timeZone),
        };
      },
    }),
    defineTool({
      name: "update_lead",
      description: "Record the result of this call. Call it once, before end_call.",
      parameters: Type.Object({
        call_outcome: literals(CALL_OUTCOMES),
        disposition: literals(DISPOSITIONS),
        appointment_id: Type.Optional(
          Type.String({
            maxLength: 20,
            description:
              "The appointment_id book_appointment returned in this call, if one was booked",
          }),
        ),
        verified_info: Type.Optional(
          Type.Record(Type.String(), Type.String(), { description: "Facts the lead confirmed" }),
        ),
        new_info: Type.Optional(
          Type.Object(
            {
              roof_age_years: Type.Optional(Type.Integer({ minimum: 0, maximum: 200 })),
              claims_last_5_years: Type.Optional(Type.Integer({ minimum: 0, maximum: 50 })),
              other: Type.Optional(Type.String({ maxLength: 1000 })),
            },
            { description: "What the lead told us that the quote request did not have" },
          ),
        ),
        summary: Type.String({ minLength: 1, maxLength: 1000 }),
      }),
      run: (update, context) => {
        const appointment = update.appointment_id
          ? appointments.booking(update.appointment_id)
          : undefined;
        if (update.appointment_id && appointment?.lead_id !== lead.id) {
          // The same answer whether the id exists or not: no oracle for other leads' bookings.
          return "Nothing was recorded: that appointment_id was not booked for this lead. Call update_lead again with the appointment_id book_appointment returned in this call, or without one.";
        }
        store.calls.update(context.callSid, {
          outcome: update.disposition,
          outcome_detail: update.summary,
        });
        logger.info("lead update", {
          callSid: context.callSid,
          leadId: lead.id,
          callOutcome: update.call_outcome,
          disposition: update.disposition,
          appointmentId: appointment?.id ?? null,
          pii: {
            verified: update.verified_info ?? {},
            new: update.new_info ?? {},
            summary: update.summary,
          },
        });
        return "Recorded. Now say goodbye and call end_call.";
      },
    }),
    endCallTool,
  ];
}

/** Consultation slots for the next business days, per licensed agent. */
export function consultationSlots(company: Company, now: Date): NewSlot[] {
  const today = localDate(now, company.timeZone);
  const slots: NewSlot[] = [];
  for (let day = 0, businessDays = 0; businessDays < company.bookingBusinessDays; day++) {
    const date = addDays(today, day);
    if (isoWeekday(date) > 5) continue;
    businessDays++;
    for (const agent of company.licensedAgents) {
      slots.push(
        ...slotsForDay({
          calendar: company.calendar,
          provider: agent,
          date,
          periods: company.hours,
          slotMinutes: company.consultationMinutes,
          timeZone: company.timeZone,
        }),
      );
    }
  }
  return slots;
}
