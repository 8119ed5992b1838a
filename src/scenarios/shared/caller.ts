/**
 * Who is on the line, as far as the tools may trust it: the customer's number when it is a real
 * E.164 number, nothing when the caller ID is withheld (otherwise every withheld caller would share
 * one "number" and see each other's bookings).
 */
import { E164 } from "../../phone-number.ts";

/**
 * What Twilio puts in `From` when the caller ID is withheld: keypad spellings of ANONYMOUS,
 * RESTRICTED, BLOCKED, UNKNOWN and UNAVAILABLE. They look like numbers but identify no one.
 */
const WITHHELD = new Set(["+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253"]);

/**
 * The customer's own number, or undefined when it is withheld or not a phone number.
 * @example callerNumber("+15557654321") // "+15557654321"
 * @example callerNumber("anonymous") // undefined
 */
export function callerNumber(customerNumber: string): string | undefined {
  return E164.test(customerNumber) && !WITHHELD.has(customerNumber) ? customerNumber : undefined;
}

/** Names compared the way a caller says them: case, spacing and Unicode form do not matter. */
export function sameName(spoken: string | undefined, booked: string): boolean {
  if (spoken === undefined) return false;
  const normal = (name: string) => name.normalize("NFKC").trim().replace(/\s+/g, " ").toLowerCase();
  return normal(spoken) !== "" && normal(spoken) === normal(booked);
}

/** The first word of a name, which is all a read-back needs. */
export function firstName(name: string): string {
  return name.trim().split(/\s+/)[0] ?? "";
}
