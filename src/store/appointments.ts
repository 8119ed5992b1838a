/**
 * Bookable time slots (insurance consultations, dental appointments) and their bookings. A partial
 * unique index in the schema lets a slot hold one live booking, so double booking cannot happen
 * even across processes; cancelling frees the slot.
 */
import { type Database, SQLiteError, type Statement } from "bun:sqlite";
import type { Clock } from "../clock.ts";
import type { NamedParams } from "./sql.ts";

export interface Slot {
  id: number;
  /** Which diary the slot belongs to, e.g. "insurance-consultation" or "dental". */
  calendar: string;
  /** Who the appointment is with (licensed agent, dentist, hygienist). */
  provider: string;
  /** ISO 8601 instants. */
  starts_at: string;
  ends_at: string;
}

export type NewSlot = Omit<Slot, "id">;

export interface Booking {
  /** Confirmation code read to the caller: six letters/digits without look-alikes. */
  id: string;
  slot_id: number;
  status: "booked" | "cancelled";
  name: string;
  phone: string | null;
  reason: string | null;
  lead_id: string | null;
  call_sid: string | null;
  created_at: string;
  cancelled_at: string | null;
}

/** A booking with its slot's time and provider, as read back to a caller. */
export type BookingDetails = Booking &
  Pick<Slot, "calendar" | "provider" | "starts_at" | "ends_at">;

export interface NewBooking {
  slot_id: number;
  name: string;
  phone?: string | null;
  reason?: string | null;
  lead_id?: string | null;
  call_sid?: string | null;
  /**
   * Caps checked in the same step as the booking, so that concurrent calls (on any instance)
   * cannot together pass them: live bookings in the slot's calendar made during `call_sid`, and
   * those for `phone` that start after `after` (an ISO instant: now).
   */
  limits?: { perCall?: number; perPhone?: number; after: string };
}

export type BookingResult =
  | { ok: true; booking: BookingDetails }
  | { ok: false; reason: "slot_taken" | "no_such_slot" | "call_limit" | "phone_limit" };

/** Live bookings in a calendar made during a call, and those for a phone starting after a moment. */
const LIMIT_COUNTS = {
  perCall: `SELECT count(*) AS n FROM bookings b JOIN slots s ON s.id = b.slot_id
            WHERE b.call_sid = $call_sid AND b.status = 'booked' AND s.calendar = $calendar`,
  perPhone: `SELECT count(*) AS n FROM bookings b JOIN slots s ON s.id = b.slot_id
             WHERE b.phone = $phone AND b.status = 'booked' AND s.calendar = $calendar
               AND s.starts_at > $after`,
};

export interface OpenSlotQuery {
  calendar: string;
  /** ISO instants; slots starting in [from, to). */
  from: string;
  to: string;
  provider?: string;
  limit: number;
}

const CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_LENGTH = 6;

function confirmationCode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(CODE_LENGTH));
  return Array.from(bytes, (byte) => CODE_ALPHABET[byte % CODE_ALPHABET.length]).join("");
}

const DETAILS = `SELECT b.*, s.calendar, s.provider, s.starts_at, s.ends_at
                 FROM bookings b JOIN slots s ON s.id = b.slot_id`;

export class AppointmentRepository {
  readonly #insertSlot: Statement<unknown, [NamedParams]>;
  readonly #slot: Statement<Slot, [number]>;
  readonly #openSlots: Statement<Slot, [NamedParams]>;
  readonly #insertBooking: Statement<unknown, [NamedParams]>;
  readonly #booking: Statement<BookingDetails, [string]>;
  readonly #bookingsByPhone: Statement<BookingDetails, [string]>;
  readonly #bookingsByCall: Statement<BookingDetails, [string]>;
  readonly #cancel: Statement<unknown, [NamedParams]>;
  readonly #perCall: Statement<{ n: number }, [NamedParams]>;
  readonly #perPhone: Statement<{ n: number }, [NamedParams]>;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
  ) {
    this.#insertSlot = db.prepare(
      `INSERT INTO slots (calendar, provider, starts_at, ends_at)
       VALUES ($calendar, $provider, $starts_at, $ends_at) ON CONFLICT DO NOTHING`,
    );
    this.#slot = db.prepare("SELECT * FROM slots WHERE id = ?");
    this.#openSlots = db.prepare(
      `SELECT s.* FROM slots s
       WHERE s.calendar = $calendar AND s.starts_at >= $from AND s.starts_at < $to
         AND ($provider IS NULL OR s.provider = $provider)
         AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.slot_id = s.id AND b.status = 'booked')
       ORDER BY s.starts_at, s.provider LIMIT $limit`,
    );
    this.#insertBooking = db.prepare(
      `INSERT INTO bookings (id, slot_id, name, phone, reason, lead_id, call_sid, created_at)
       VALUES ($id, $slot_id, $name, $phone, $reason, $lead_id, $call_sid, $created_at)`,
    );
    this.#booking = db.prepare(`${DETAILS} WHERE b.id = ?`);
    this.#bookingsByPhone = db.prepare(
      `${DETAILS} WHERE b.phone = ? AND b.status = 'booked' ORDER BY s.starts_at`,
    );
    this.#bookingsByCall = db.prepare(
      `${DETAILS} WHERE b.call_sid = ? AND b.status = 'booked' ORDER BY s.starts_at`,
    );
    this.#perCall = db.prepare(LIMIT_COUNTS.perCall);
    this.#perPhone = db.prepare(LIMIT_COUNTS.perPhone);
    this.#cancel = db.prepare(
      `UPDATE bookings SET status = 'cancelled', cancelled_at = $at WHERE id = $id AND status = 'booked'`,
    );
  }

  /** Adds slots, skipping any that already exist (same calendar, provider and start). @returns how many were new */
  addSlots(slots: NewSlot[]): number {
    return this.db.transaction(() => {
      let added = 0;
      for (const slot of slots) added += this.#insertSlot.run({ ...slot }).changes;
      return added;
    })();
  }

  slot(id: number): Slot | undefined {
    return this.#slot.get(id) ?? undefined;
  }

  /** Slots with no live booking, earliest first. */
  openSlots(query: OpenSlotQuery): Slot[] {
    return this.#openSlots.all({ provider: null, ...query });
  }

  /** Books a slot; a slot that already has a live booking answers `slot_taken`, never a second booking. */
  book(request: NewBooking): BookingResult {
    const { limits, ...booking } = request;
    const row = {
      phone: null,
      reason: null,
      lead_id: null,
      call_sid: null,
      ...booking,
      created_at: this.clock.now().toISOString(),
    };
    // One write transaction: the caps are counted and the booking made with no other writer between.
    return this.db
      .transaction((): BookingResult => {
        const slot = this.#slot.get(request.slot_id);
        if (!slot) return { ok: false, reason: "no_such_slot" };
        if (limits?.perCall !== undefined && row.call_sid) {
          const { n } = this.#perCall.get({ call_sid: row.call_sid, calendar: slot.calendar }) ?? {
            n: 0,
          };
          if (n >= limits.perCall) return { ok: false, reason: "call_limit" };
        }
        if (limits?.perPhone !== undefined && row.phone) {
          const { n } = this.#perPhone.get({
            phone: row.phone,
            calendar: slot.calendar,
            after: limits.after,
          }) ?? { n: 0 };
          if (n >= limits.perPhone) return { ok: false, reason: "phone_limit" };
        }
        for (;;) {
          const id = confirmationCode();
          try {
            this.#insertBooking.run({ ...row, id });
            return { ok: true, booking: this.#booking.get(id) as BookingDetails };
          } catch (error) {
            if (!(error instanceof SQLiteError) || error.code !== "SQLITE_CONSTRAINT_UNIQUE")
              throw error;
            if (!error.message.includes("bookings.id")) return { ok: false, reason: "slot_taken" };
            // A confirmation code collision: draw another one.
          }
        }
      })
      .immediate();
  }

  booking(id: string): BookingDetails | undefined {
    return this.#booking.get(id.toUpperCase()) ?? undefined;
  }

  /** Live bookings for a phone number, earliest first. */
  bookingsByPhone(phone: string): BookingDetails[] {
    return this.#bookingsByPhone.all(phone);
  }

  /** Live bookings made during one call, earliest first. */
  bookingsByCall(callSid: string): BookingDetails[] {
    return this.#bookingsByCall.all(callSid);
  }

  /** Cancels a live booking, freeing its slot. @returns the cancelled booking, or undefined if none was live */
  cancel(id: string): BookingDetails | undefined {
    const code = id.toUpperCase();
    const { changes } = this.#cancel.run({ id: code, at: this.clock.now().toISOString() });
    return changes === 1 ? (this.#booking.get(code) ?? undefined) : undefined;
  }
}
