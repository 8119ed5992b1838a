/** The receptionist's functions: open slots, booking, look-up and cancellation against the SQLite store. */
import { Type } from "@sinclair/typebox";
import type { Clock } from "../../clock.ts";
import type { BookingDetails, Slot } from "../../store/appointments.ts";
import type { Store } from "../../store/index.ts";
import { endCallTool } from "../shared/end-call.ts";
import { addDays, localMinutes, spokenTime, zonedToUtc } from "../shared/time.ts";
import { defineTool, type Tool } from "../types.ts";
import type { Office } from "./office.ts";

const DATE = Type.String({ pattern: "^\\d{4}-\\d{2}-\\d{2}$", description: "YYYY-MM-DD" });
const CODE = Type.String({
  pattern: "^[A-Za-z0-9]{6}$",
  description: "Six-character confirmation code",
});
const NOON = 12 * 60;
const MAX_OFFERED = 6;

export function receptionistTools(office: Office, store: Store, clock: Clock): Tool[] {
  const { appointments } = store;
  const describeSlot = (slot: Slot) => ({
    slot_id: slot.id,
    provider: slot.provider,
    time: spokenTime(new Date(slot.starts_at), office.timeZone),
  });
  const describeBooking = (booking: BookingDetails) => ({
    confirmation_id: booking.id,
    patient_name: booking.name,
    provider: booking.provider,
    time: spokenTime(new Date(booking.starts_at), office.timeZone),
    reason: booking.reason,
  });
  const openSlots = (
    from: Date,
    to: Date,
    provider?: string,
    partOfDay?: "morning" | "afternoon",
  ) => {
    const start = new Date(Math.max(from.getTime(), clock.now().getTime()));
    return appointments
      .openSlots({
        calendar: office.calendar,
        from: start.toISOString(),
        to: to.toISOString(),
        limit: 500,
        ...(provider ? { provider } : {}),
      })
      .filter((slot) => {
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
      run: ({ date, end_date, provider, part_of_day }) => {
        const now = clock.now();
        const range = date
          ? dayRange(date, end_date)
          : { from: now, to: new Date(now.getTime() + 7 * 24 * 3600_000) };
        const slots = openSlots(range.from, range.to, provider, part_of_day);
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
      description: "Book an open slot for a patient. Use a slot_id from check_available_slots.",
      parameters: Type.Object({
        slot_id: Type.Integer({ minimum: 1 }),
        patient_name: Type.String({ minLength: 2, maxLength: 100 }),
        reason: Type.String({ minLength: 2, maxLength: 200 }),
        phone: Type.Optional(
          Type.String({
            pattern: "^\\+[1-9][0-9]{1,14}$",
            description: "E.164; defaults to the caller's number",
          }),
        ),
      }),
      run: ({ slot_id, patient_name, reason, phone }, context) => {
        const slot = appointments.slot(slot_id);
        if (!slot || slot.calendar !== office.calendar || new Date(slot.starts_at) <= clock.now()) {
          return {
            booked: false,
            problem: "That slot does not exist or is in the past. Check available slots again.",
          };
        }
        const result = appointments.book({
          slot_id,
          name: patient_name,
          reason,
          phone: phone ?? context.customerNumber,
          call_sid: context.callSid,
        });
        if (!result.ok) {
          const day = new Date(slot.starts_at);
          const alternatives = openSlots(day, new Date(day.getTime() + 3 * 24 * 3600_000))
            .slice(0, 3)
            .map(describeSlot);
          return { booked: false, problem: "That time was just taken.", alternatives };
        }
        return { booked: true, ...describeBooking(result.booking) };
      },
    }),
    defineTool({
      name: "check_appointment",
      description:
        "Look up upcoming appointments by confirmation code, or by phone number (the caller's by default).",
      parameters: Type.Object({
        confirmation_id: Type.Optional(CODE),
        phone: Type.Optional(Type.String({ pattern: "^\\+[1-9][0-9]{1,14}$" })),
      }),
      run: ({ confirmation_id, phone }, context) => {
        const found = confirmation_id
          ? [appointments.booking(confirmation_id)].filter(
              (booking): booking is BookingDetails =>
                booking?.status === "booked" && booking.calendar === office.calendar,
            )
          : appointments
              .bookingsByPhone(phone ?? context.customerNumber)
              .filter((booking) => booking.calendar === office.calendar);
        const upcoming = found.filter((booking) => new Date(booking.starts_at) > clock.now());
        return upcoming.length > 0
          ? { appointments: upcoming.map(describeBooking) }
          : {
              appointments: [],
              note: "No upcoming appointment found. Ask for the confirmation code or the number used to book.",
            };
      },
    }),
    defineTool({
      name: "cancel_appointment",
      description:
        "Cancel an appointment by confirmation code. If it was booked from another number, include the patient's name.",
      parameters: Type.Object({
        confirmation_id: CODE,
        patient_name: Type.Optional(Type.String()),
      }),
      run: ({ confirmation_id, patient_name }, context) => {
        const booking = appointments.booking(confirmation_id);
        if (booking?.status !== "booked" || booking.calendar !== office.calendar) {
          return {
            cancelled: false,
            problem: "No live appointment has that code. Ask the caller to check it.",
          };
        }
        const sameCaller = booking.phone === context.customerNumber;
        const sameName = patient_name?.trim().toLowerCase() === booking.name.trim().toLowerCase();
        if (!sameCaller && !sameName) {
          return {
            cancelled: false,
            problem: "It was booked from another number: ask for the patient's full name.",
          };
        }
        const cancelled = appointments.cancel(confirmation_id);
        return cancelled
          ? { cancelled: true, ...describeBooking(cancelled) }
          : { cancelled: false, problem: "It was already cancelled." };
      },
    }),
    endCallTool,
  ];
}
