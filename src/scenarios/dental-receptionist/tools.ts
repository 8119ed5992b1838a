/**
 * The receptionist's functions: open slots, booking, look-up and cancellation against the storage
 * port. Privacy is enforced here, not left to the prompt: a caller sees and cancels the
 * appointments booked from the number they call from, or one whose confirmation code and patient
 * name they both give; a refusal never tells whether a code exists; read-backs carry the first
 * name (as plain words), provider, time and code, never the reason for the visit or a phone number.
 * Names and reasons must be plain one-line text, and one call or one number can hold only a few
 * bookings, so no caller fills the diary or plants text in someone else's read-back.
 */
import { Type } from "@sinclair/typebox";
import type { Clock } from "../../clock.ts";
import { E164_PATTERN } from "../../phone-number.ts";
import type { BookingDetails, Slot } from "../../store/appointments.ts";
import type { Storage } from "../../store/port.ts";
import { callerNumber, firstName, sameName } from "../shared/caller.ts";
import { endCallTool } from "../shared/end-call.ts";
import { takeMessageTool } from "../shared/take-message.ts";
import { plainText, spoken } from "../shared/text.ts";
import { addDays, localMinutes, spokenTime, zonedToUtc } from "../shared/time.ts";
import { defineTool, type Tool } from "../types.ts";
import type { Office } from "./office.ts";

const DATE = Type.String({ pattern: "^\\d{4}-\\d{2}-\\d{2}$", description: "YYYY-MM-DD" });
const CODE = Type.String({
  pattern: "^[A-Za-z0-9]{6}$",
  description: "Six-character confirmation code",
});
const PATIENT_NAME = plainText(100, "The patient's full name, as the caller says it", 2);
const NOON = 12 * 60;
const MAX_OFFERED = 6;

/** Live appointments one call may book: enough for a parent and a child, not for the diary. */
export const MAX_BOOKINGS_PER_CALL = 2;
/** Upcoming live appointments one phone number may hold, whoever booked them. */
export const MAX_UPCOMING_PER_NUMBER = 3;
/** Slots are offered only if they start at least this far ahead, so they can still be booked. */
export const MIN_NOTICE_MINUTES = 15;

/** One answer for "no such code", "not yours" and "wrong name", so a refusal is no oracle. */
const NO_MATCH_BY_CODE =
  "No upcoming appointment matches for this caller. Unless it was booked from the number they are calling from, both the confirmation code and the patient's full name as booked are needed: ask them to check both. Do not guess and do not say whether the code exists.";

export function receptionistTools(office: Office, store: Storage, clock: Clock): Tool[] {
  const { appointments } = store;
  const describeSlot = (slot: Slot) => ({
    slot_id: slot.id,
    provider: slot.provider,
    time: spokenTime(new Date(slot.starts_at), office.timeZone),
  });
  /** What a read-back needs: whose (first name), with whom, when, and the code. No reason, no phone. */
  const describeBooking = (booking: BookingDetails) => ({
    confirmation_id: booking.id,
    patient_first_name: firstName(spoken(booking.name)),
    provider: booking.provider,
    time: spokenTime(new Date(booking.starts_at), office.timeZone),
  });
  const isUpcoming = (booking: BookingDetails | undefined): booking is BookingDetails =>
    booking?.status === "booked" &&
    booking.calendar === office.calendar &&
    new Date(booking.starts_at) > clock.now();
  /**
   * The booking with this code, if this caller may see and change it: booked from the number they
   * call from, or they also gave the patient's name as booked.
   */
  const bookingFor = async (
    code: string,
    patientName: string | undefined,
    customerNumber: string,
  ): Promise<BookingDetails | undefined> => {
    const booking = await appointments.booking(code);
    if (!isUpcoming(booking)) return undefined;
    const own = callerNumber(customerNumber);
    const fromItsNumber = own !== undefined && booking.phone === own;
    return fromItsNumber || sameName(patientName, booking.name) ? booking : undefined;
  };
  const openSlots = async (
    from: Date,
    to: Date,
    provider?: string,
    partOfDay?: "morning" | "afternoon",
  ): Promise<Slot[]> => {
    const earliest = clock.now().getTime() + MIN_NOTICE_MINUTES * 60_000;
    const start = new Date(Math.max(from.getTime(), earliest));
    const slots = await appointments.openSlots({
      calendar: office.calendar,
      from: start.toISOString(),
      to: to.toISOString(),
      limit: 500,
      ...(provider ? { provider } : {}),
    });
    return slots.filter((slot) => {
      if (!partOfDay) return true;
      const minutes = localMinutes(new Date(slot.starts_at), office.timeZone);
      return partOfDay === "morning" ? minutes < NOON : minutes >= NOON;
    });
  };
  const dayRange = (date: string, endDate = date) => ({
    from: zonedToUtc(date, 0, office.timeZone),
    to: zonedToUtc(addDays(endDate, 1), 0, office.timeZone),
  });
  const providerNames = office.providers.map((provider) => provider.name);
  /** Why this call may not book for `phone` now, as a sentence for the agent, or undefined. */
  const bookingLimit = async (
    callSid: string,
    phone: string | null,
    own: boolean,
  ): Promise<string | undefined> => {
    const inCall = (await appointments.bookingsByCall(callSid)).filter(
      (booking) => booking.calendar === office.calendar,
    );
    if (inCall.length >= MAX_BOOKINGS_PER_CALL) {
      return `${inCall.length} appointments have already been booked in this call, the most one call may book. Offer to change one of them instead: cancel it, then book the new time.`;
    }
    const upcoming = phone ? (await appointments.bookingsByPhone(phone)).filter(isUpcoming) : [];
    if (upcoming.length >= MAX_UPCOMING_PER_NUMBER) {
      const whose = own ? "The number the caller is calling from" : "That phone number";
      return `${whose} already has ${upcoming.length} upcoming appointments, the most one number may hold. Offer to change one of them instead: cancel it, then book the new time.`;
    }
    return undefined;
  };

  return [
    defineTool({
      name: "check_available_slots",
      description:
        "Find open appointment times. Give a date or a date range; leave both out for the next seven days. Optionally a provider and morning or afternoon.",
      parameters: Type.Object({
        date: Type.Optional(DATE),
        end_date: Type.Optional(DATE),
        provider: Type.Optional(Type.Union(providerNames.map((name) => Type.Literal(name)))),
        part_of_day: Type.Optional(
          Type.Union([Type.Literal("morning"), Type.Literal("afternoon")]),
        ),
      }),
      run: async ({ date, end_date, provider, part_of_day }) => {
        const now = clock.now();
        const range = date
          ? dayRange(date, end_date)
          : { from: now, to: new Date(now.getTime() + 7 * 24 * 3600_000) };
        const slots = await openSlots(range.from, range.to, provider, part_of_day);
        if (slots.length === 0) {
          return {
            available: [],
            note: "Nothing open then. Offer another day, another provider or the other half of the day.",
          };
        }
        return {
          available: slots.slice(0, MAX_OFFERED).map(describeSlot),
          more_available: slots.length > MAX_OFFERED,
        };
      },
    }),
    defineTool({
      name: "book_appointment",
      deferUntilEndOfTurn: true,
      description: "Book an open slot for a patient. Use a slot_id from check_available_slots.",
      parameters: Type.Object({
        slot_id: Type.Integer({ minimum: 1 }),
        patient_name: PATIENT_NAME,
        reason: plainText(200, "The reason for the visit, in a few words", 2),
        phone: Type.Optional(
          Type.String({
            pattern: E164_PATTERN,
            description: "E.164; defaults to the caller's number",
          }),
        ),
      }),
      run: async ({ slot_id, patient_name, reason, phone }, context) => {
        const own = callerNumber(context.customerNumber);
        // A withheld caller ID is no one's number: such a booking is found by code and name only.
        const bookedPhone = phone ?? own ?? null;
        const limit = await bookingLimit(context.callSid, bookedPhone, bookedPhone === own);
        if (limit) return { booked: false, problem: limit };
        const slot = await appointments.slot(slot_id);
        if (!slot || slot.calendar !== office.calendar || new Date(slot.starts_at) <= clock.now()) {
          return {
            booked: false,
            problem: "That slot does not exist or is in the past. Check available slots again.",
          };
        }
        const result = await appointments.book({
          slot_id,
          name: patient_name,
          reason,
          phone: bookedPhone,
          call_sid: context.callSid,
          // Checked again by the store, with the booking: another call may have booked meanwhile.
          limits: {
            perCall: MAX_BOOKINGS_PER_CALL,
            perPhone: MAX_UPCOMING_PER_NUMBER,
            after: clock.now().toISOString(),
          },
        });
        if (!result.ok && (result.reason === "call_limit" || result.reason === "phone_limit")) {
          const problem = await bookingLimit(context.callSid, bookedPhone, bookedPhone === own);
          return { booked: false, problem: problem ?? "No more appointments can be booked now." };
        }
        if (!result.ok) {
          const day = new Date(slot.starts_at);
          const nearby = await openSlots(day, new Date(day.getTime() + 3 * 24 * 3600_000));
          const alternatives = nearby.slice(0, 3).map(describeSlot);
          return { booked: false, problem: "That time was just taken.", alternatives };
        }
        const { booking } = result;
        await store.calls.update(context.callSid, {
          outcome: "appointment_booked",
          outcome_detail: `booked ${booking.id}`,
        });
        return {
          booked: true,
          confirmation_id: booking.id,
          patient_name: spoken(booking.name),
          provider: booking.provider,
          time: spokenTime(new Date(booking.starts_at), office.timeZone),
        };
      },
    }),
    defineTool({
      name: "check_appointment",
      description:
        "Look up upcoming appointments. With no arguments: those booked from the caller's own number. Otherwise a confirmation code, plus the patient's full name unless it was booked from the caller's number. Never another phone number.",
      parameters: Type.Object({
        confirmation_id: Type.Optional(CODE),
        patient_name: Type.Optional(PATIENT_NAME),
        phone: Type.Optional(
          Type.String({
            pattern: E164_PATTERN,
            description: "Only the caller's own number; leave it out",
          }),
        ),
      }),
      run: async ({ confirmation_id, patient_name, phone }, context) => {
        if (confirmation_id) {
          const booking = await bookingFor(confirmation_id, patient_name, context.customerNumber);
          return booking
            ? { appointments: [describeBooking(booking)] }
            : { appointments: [], note: NO_MATCH_BY_CODE };
        }
        const own = callerNumber(context.customerNumber);
        if (own === undefined) {
          return {
            appointments: [],
            note: "The caller's number is withheld, so nothing can be looked up by number. Ask for the confirmation code and the patient's full name.",
          };
        }
        if (phone !== undefined && phone !== own) {
          return {
            appointments: [],
            note: "For privacy, appointments are only looked up by the number the caller is calling from. For one booked from another number, ask for the confirmation code and the patient's full name.",
          };
        }
        const upcoming = (await appointments.bookingsByPhone(own)).filter(isUpcoming);
        return upcoming.length > 0
          ? { appointments: upcoming.map(describeBooking) }
          : {
              appointments: [],
              note: "No upcoming appointment was booked from the number they are calling from. Ask for the confirmation code and the patient's full name, and look it up with both.",
            };
      },
    }),
    defineTool({
      name: "cancel_appointment",
      deferUntilEndOfTurn: true,
      description:
        "Cancel an upcoming appointment by confirmation code. Unless it was booked from the number the caller is calling from, include the patient's full name.",
      parameters: Type.Object({
        confirmation_id: CODE,
        patient_name: Type.Optional(PATIENT_NAME),
      }),
      run: async ({ confirmation_id, patient_name }, context) => {
        const booking = await bookingFor(confirmation_id, patient_name, context.customerNumber);
        if (!booking) return { cancelled: false, problem: NO_MATCH_BY_CODE };
        const cancelled = await appointments.cancel(booking.id);
        if (cancelled) {
          await store.calls.update(context.callSid, {
            outcome: "appointment_cancelled",
            outcome_detail: `cancelled ${cancelled.id}`,
          });
        }
        return cancelled
          ? { cancelled: true, ...describeBooking(cancelled) }
          : { cancelled: false, problem: "It was already cancelled." };
      },
    }),
    takeMessageTool(store, clock),
    endCallTool,
  ];
}
