/**
 * The follow-up's functions: consultation slots, booking, the lead update (outcome) and hang-up.
 * Everything is tied to the call's own lead and number, set when the call was placed: no argument
 * names another lead, books for another number, or links another lead's booking to this call.
 * Free text (notes, summary, facts) must be plain one-line text; a call books one consultation and
 * a number holds only a few.
 */
import { Type } from "@sinclair/typebox";
import type { Clock } from "../../clock.ts";
import type { Logger } from "../../log.ts";
import type { NewSlot, Slot } from "../../store/appointments.ts";
import type { Lead } from "../../store/leads.ts";
import type { Storage } from "../../store/port.ts";
import { callerNumber } from "../shared/caller.ts";
import { endCallTool } from "../shared/end-call.ts";
import { slotsForDay } from "../shared/slots.ts";
import { takeMessageTool } from "../shared/take-message.ts";
import { FACT_NAME, plainText } from "../shared/text.ts";
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
/** Live consultations one call may book. */
export const MAX_BOOKINGS_PER_CALL = 1;
/** Upcoming live consultations one phone number may hold, across calls. */
export const MAX_UPCOMING_PER_NUMBER = 3;
/** Facts `verified_info` may carry. */
const MAX_VERIFIED_FACTS = 20;

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
  store: Storage,
  clock: Clock,
  logger: Logger,
): Tool[] {
  const { appointments } = store;
  const describe = (slot: Slot) => ({
    slot_id: slot.id,
    licensed_agent: slot.provider,
    time: spokenTime(new Date(slot.starts_at), company.timeZone),
  });
  const openSlots = async (
    from: Date,
    days: number,
    partOfDay?: "morning" | "afternoon",
  ): Promise<Slot[]> => {
    const start = new Date(Math.max(from.getTime(), clock.now().getTime() + MIN_NOTICE_MS));
    const to = zonedToUtc(addDays(localDate(start, company.timeZone), days), 0, company.timeZone);
    const slots = await appointments.openSlots({
      calendar: company.calendar,
      from: start.toISOString(),
      to: to.toISOString(),
      limit: 400,
    });
    return slots.filter((slot) => {
      if (!partOfDay) return true;
      const minutes = localMinutes(new Date(slot.starts_at), company.timeZone);
      return partOfDay === "morning" ? minutes < NOON : minutes >= NOON;
    });
  };
  /** Why this call may not book now, as an answer for the agent, or undefined. */
  const bookingLimit = async (callSid: string, phone: string) => {
    const inCall = (await appointments.bookingsByCall(callSid)).filter(
      (booking) => booking.calendar === company.calendar,
    );
    const [booked] = inCall;
    if (booked && inCall.length >= MAX_BOOKINGS_PER_CALL) {
      return {
        booked: false,
        problem:
          "A consultation is already booked in this call, and one call books only one. Confirm that time with them instead; the licensed agent can move it when they call.",
        appointment_id: booked.id,
        licensed_agent: booked.provider,
        time: spokenTime(new Date(booked.starts_at), company.timeZone),
      };
    }
    const upcoming = (await appointments.bookingsByPhone(phone)).filter(
      (booking) =>
        booking.calendar === company.calendar && new Date(booking.starts_at) > clock.now(),
    );
    if (upcoming.length >= MAX_UPCOMING_PER_NUMBER) {
      return {
        booked: false,
        problem: `This number already has ${upcoming.length} upcoming consultations, the most one number may hold. Book no more; tell them a licensed agent will be in touch at the times already booked.`,
      };
    }
    return undefined;
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
      run: async ({ day, part_of_day }) => {
        const from = day ? zonedToUtc(day, 0, company.timeZone) : clock.now();
        const slots = distinctTimes(await openSlots(from, day ? 1 : 5, part_of_day));
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
      deferUntilEndOfTurn: true,
      description: "Book a consultation slot (slot_id from check_availability) for this lead.",
      parameters: Type.Object({
        slot_id: Type.Integer({ minimum: 1 }),
        notes: Type.Optional(plainText(500, "Anything the licensed agent should know")),
      }),
      run: async ({ slot_id, notes }, context) => {
        const limit = await bookingLimit(context.callSid, context.customerNumber);
        if (limit) return limit;
        const slot = await appointments.slot(slot_id);
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
        const result = await appointments.book({
          slot_id,
          name: `${lead.first_name} ${lead.last_name}`,
          phone: context.customerNumber,
          reason: notes ?? "homeowners insurance quote consultation",
          lead_id: lead.id,
          call_sid: context.callSid,
          // Checked again by the store, with the booking: another call may have booked meanwhile.
          limits: {
            perCall: MAX_BOOKINGS_PER_CALL,
            perPhone: MAX_UPCOMING_PER_NUMBER,
            after: clock.now().toISOString(),
          },
        });
        if (!result.ok && (result.reason === "call_limit" || result.reason === "phone_limit")) {
          return (
            (await bookingLimit(context.callSid, context.customerNumber)) ?? {
              booked: false,
              problem: "No more consultations can be booked now.",
            }
          );
        }
        if (!result.ok) {
          const alternatives = distinctTimes(await openSlots(new Date(slot.starts_at), 2))
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
      deferUntilEndOfTurn: true,
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
          Type.Record(Type.String({ pattern: FACT_NAME }), plainText(300, "What they confirmed"), {
            maxProperties: MAX_VERIFIED_FACTS,
            additionalProperties: false,
            description: `Facts the lead confirmed, by short name (letters, digits, spaces), at most ${MAX_VERIFIED_FACTS}`,
          }),
        ),
        new_info: Type.Optional(
          Type.Object(
            {
              roof_age_years: Type.Optional(Type.Integer({ minimum: 0, maximum: 200 })),
              claims_last_5_years: Type.Optional(Type.Integer({ minimum: 0, maximum: 50 })),
              other: Type.Optional(plainText(1000, "Anything else new")),
            },
            { description: "What the lead told us that the quote request did not have" },
          ),
        ),
        summary: plainText(1000, "One sentence: how the call went"),
      }),
      run: async (update, context) => {
        const appointment = update.appointment_id
          ? await appointments.booking(update.appointment_id)
          : undefined;
        if (update.appointment_id && appointment?.lead_id !== lead.id) {
          // The same answer whether the id exists or not: no oracle for other leads' bookings.
          return "Nothing was recorded: that appointment_id was not booked for this lead. Call update_lead again with the appointment_id book_appointment returned in this call, or without one.";
        }
        await store.calls.update(context.callSid, {
          outcome: update.disposition,
          outcome_detail: update.summary,
        });
        // Asked not to be called again: no call from this service rings the number again.
        if (update.disposition === "do_not_call" && callerNumber(context.customerNumber)) {
          await store.dnc.add(
            [
              {
                number: context.customerNumber,
                reason: `asked on call ${context.callSid}`,
                source: "agent",
              },
            ],
            context.now.toISOString(),
          );
        }
        logger.info("lead update", {
          callSid: context.callSid,
          leadId: lead.id,
          callOutcome: update.call_outcome,
          disposition: update.disposition,
          appointmentId: appointment?.id ?? null,
          pii: {
            verified: update.verified_info ?? {},
            // Only the fields the schema checked; anything else the agent added stays out.
            new: knownNewInfo(update.new_info),
            summary: update.summary,
          },
        });
        return "Recorded. Now say goodbye and call end_call.";
      },
    }),
    takeMessageTool(store, clock),
    endCallTool,
  ];
}

/** The `new_info` fields update_lead validates, without any extra property the agent sent. */
function knownNewInfo(
  info: { roof_age_years?: number; claims_last_5_years?: number; other?: string } = {},
) {
  const { roof_age_years, claims_last_5_years, other } = info;
  return Object.fromEntries(
    Object.entries({ roof_age_years, claims_last_5_years, other }).filter(
      ([, value]) => value !== undefined,
    ),
  );
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
