/**
 * Bookable slots and their bookings on PostgreSQL: the same rows and answers as the SQLite
 * `AppointmentRepository`. The partial unique index `bookings_one_live_per_slot` lets a slot hold
 * one live booking, whichever process books it; a booking it refuses is `slot_taken`.
 */
import { SQL } from "bun";
import type { Clock } from "../../clock.ts";
import type {
  BookingDetails,
  BookingResult,
  NewBooking,
  NewSlot,
  OpenSlotQuery,
  Slot,
} from "../appointments.ts";
import type { AppointmentStore } from "../port.ts";

const CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_LENGTH = 6;

function confirmationCode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(CODE_LENGTH));
  return Array.from(bytes, (byte) => CODE_ALPHABET[byte % CODE_ALPHABET.length]).join("");
}

/** SQLSTATE unique_violation. */
const UNIQUE_VIOLATION = "23505";

export class PostgresAppointmentStore implements AppointmentStore {
  constructor(
    private readonly sql: SQL,
    private readonly clock: Clock,
  ) {}

  /**
   * One statement for any number of slots (arrays, not one parameter per value). Only the first of
   * a list's duplicates, and only slots not stored yet, reach the insert, so skipped slots use up no
   * ids, as on SQLite; the conflict clause skips slots another process adds at the same moment.
   */
  async addSlots(slots: NewSlot[]): Promise<number> {
    const column = (name: keyof NewSlot) => slots.map((slot) => slot[name]);
    const { count } = await this.sql`
      INSERT INTO slots (calendar, provider, starts_at, ends_at)
      SELECT calendar, provider, starts_at, ends_at
      FROM (
        SELECT DISTINCT ON (calendar, provider, starts_at) *
        FROM unnest(${column("calendar")}::text[], ${column("provider")}::text[],
                    ${column("starts_at")}::text[], ${column("ends_at")}::text[])
             WITH ORDINALITY AS listed (calendar, provider, starts_at, ends_at, position)
        ORDER BY calendar, provider, starts_at, position
      ) AS added
      WHERE NOT EXISTS (
        SELECT 1 FROM slots s
        WHERE s.calendar = added.calendar AND s.provider = added.provider
          AND s.starts_at = added.starts_at)
      ORDER BY position
      ON CONFLICT DO NOTHING`;
    return count;
  }

  async slot(id: number): Promise<Slot | undefined> {
    const [slot] = await this.sql<Slot[]>`SELECT * FROM slots WHERE id = ${id}`;
    return slot;
  }

  async openSlots(query: OpenSlotQuery): Promise<Slot[]> {
    const ofProvider =
      query.provider === undefined ? this.sql`true` : this.sql`s.provider = ${query.provider}`;
    const slots = await this.sql<Slot[]>`
      SELECT s.* FROM slots s
      WHERE s.calendar = ${query.calendar} AND s.starts_at >= ${query.from} AND s.starts_at < ${query.to}
        AND ${ofProvider}
        AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.slot_id = s.id AND b.status = 'booked')
      ORDER BY s.starts_at, s.provider LIMIT ${query.limit}`;
    return [...slots];
  }

  async book(request: NewBooking): Promise<BookingResult> {
    const createdAt = this.clock.now().toISOString();
    const { limits, ...booking } = request;
    const made = await this.sql.begin(async (tx): Promise<BookingResult | string> => {
      const [slot] = await tx<{ calendar: string }[]>`
        SELECT calendar FROM slots WHERE id = ${request.slot_id}`;
      if (!slot) return { ok: false, reason: "no_such_slot" };
      if (limits) {
        // One booking at a time per call and per phone number, on every instance: the counts and
        // the insert below happen under these locks (always taken call first, then phone).
        if (booking.call_sid)
          await tx`SELECT pg_advisory_xact_lock(hashtext(${`booking-call:${booking.call_sid}`}))`;
        if (booking.phone)
          await tx`SELECT pg_advisory_xact_lock(hashtext(${`booking-phone:${booking.phone}`}))`;
        if (limits.perCall !== undefined && booking.call_sid) {
          const [{ n }] = await tx<[{ n: number }]>`
            SELECT count(*)::int AS n FROM bookings b JOIN slots s ON s.id = b.slot_id
            WHERE b.call_sid = ${booking.call_sid} AND b.status = 'booked'
              AND s.calendar = ${slot.calendar}`;
          if (n >= limits.perCall) return { ok: false, reason: "call_limit" };
        }
        if (limits.perPhone !== undefined && booking.phone) {
          const [{ n }] = await tx<[{ n: number }]>`
            SELECT count(*)::int AS n FROM bookings b JOIN slots s ON s.id = b.slot_id
            WHERE b.phone = ${booking.phone} AND b.status = 'booked'
              AND s.calendar = ${slot.calendar} AND s.starts_at > ${limits.after}`;
          if (n >= limits.perPhone) return { ok: false, reason: "phone_limit" };
        }
      }
      for (;;) {
        const id = confirmationCode();
        try {
          // A savepoint: a refused insert leaves the transaction usable for the next code.
          await tx.savepoint(
            (sp) => sp`
              INSERT INTO bookings (id, slot_id, name, phone, reason, lead_id, call_sid, created_at)
              VALUES (${id}, ${booking.slot_id}, ${booking.name}, ${booking.phone ?? null},
                      ${booking.reason ?? null}, ${booking.lead_id ?? null},
                      ${booking.call_sid ?? null}, ${createdAt})`,
          );
          return id;
        } catch (error) {
          if (!(error instanceof SQL.PostgresError) || error.errno !== UNIQUE_VIOLATION)
            throw error;
          if (error.constraint === "bookings_one_live_per_slot") {
            return { ok: false, reason: "slot_taken" };
          }
          if (error.constraint !== "bookings_pkey") throw error;
          // A confirmation code collision: draw another one.
        }
      }
    });
    if (typeof made !== "string") return made;
    return { ok: true, booking: (await this.booking(made)) as BookingDetails };
  }

  async booking(id: string): Promise<BookingDetails | undefined> {
    const [booking] = await this.#details(this.sql`b.id = ${id.toUpperCase()}`);
    return booking;
  }

  async bookingsByPhone(phone: string): Promise<BookingDetails[]> {
    return [...(await this.#details(this.sql`b.phone = ${phone} AND b.status = 'booked'`))];
  }

  async bookingsByCall(callSid: string): Promise<BookingDetails[]> {
    return [...(await this.#details(this.sql`b.call_sid = ${callSid} AND b.status = 'booked'`))];
  }

  async cancel(id: string): Promise<BookingDetails | undefined> {
    const code = id.toUpperCase();
    const { count } = await this.sql`
      UPDATE bookings SET status = 'cancelled', cancelled_at = ${this.clock.now().toISOString()}
      WHERE id = ${code} AND status = 'booked'`;
    return count === 1 ? this.booking(code) : undefined;
  }

  /** Bookings with their slot's time and provider, earliest first. */
  #details(condition: SQL.Query<unknown>): SQL.Query<BookingDetails[]> {
    return this.sql<BookingDetails[]>`
      SELECT b.*, s.calendar, s.provider, s.starts_at, s.ends_at
      FROM bookings b JOIN slots s ON s.id = b.slot_id
      WHERE ${condition} ORDER BY s.starts_at`;
  }
}
