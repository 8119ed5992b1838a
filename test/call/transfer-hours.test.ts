import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { isOpen, parseWeeklyHours } from "../../src/call/transfer-hours.ts";
import { configError } from "../helpers/context.ts";

const NEW_YORK = "America/New_York";

describe("TRANSFER_HOURS", () => {
  test("days, day ranges and several spans, in the scenario's time zone", () => {
    const hours = parseWeeklyHours("Mon-Fri 08:00-17:00;sat 09:00-12:00");
    expect(hours.text).toBe("Mon-Fri 08:00-17:00; sat 09:00-12:00");
    // Tuesday 2026-03-03: 08:00 New York is 13:00 UTC (EST).
    expect(isOpen(hours, new Date("2026-03-03T12:59:00Z"), NEW_YORK)).toBe(false);
    expect(isOpen(hours, new Date("2026-03-03T13:00:00Z"), NEW_YORK)).toBe(true);
    expect(isOpen(hours, new Date("2026-03-03T21:59:00Z"), NEW_YORK)).toBe(true);
    // The end is exclusive.
    expect(isOpen(hours, new Date("2026-03-03T22:00:00Z"), NEW_YORK)).toBe(false);
    // Saturday morning, Sunday never.
    expect(isOpen(hours, new Date("2026-03-07T15:00:00Z"), NEW_YORK)).toBe(true);
    expect(isOpen(hours, new Date("2026-03-08T15:00:00Z"), NEW_YORK)).toBe(false);
    // After the change to daylight saving time 08:00 is 12:00 UTC.
    expect(isOpen(hours, new Date("2026-03-10T12:00:00Z"), NEW_YORK)).toBe(true);
  });

  test("a range may wrap past Sunday, and 24:00 is the end of the day", () => {
    const hours = parseWeeklyHours("Fri-Mon 00:00-24:00");
    expect(isOpen(hours, new Date("2026-03-08T23:59:00Z"), "UTC")).toBe(true);
    expect(isOpen(hours, new Date("2026-03-09T10:00:00Z"), "UTC")).toBe(true);
    expect(isOpen(hours, new Date("2026-03-10T10:00:00Z"), "UTC")).toBe(false);
  });

  test("what cannot be read is named", () => {
    expect(() => parseWeeklyHours("Weekdays 9-5")).toThrow(
      '"Weekdays 9-5" is not of the form Mon-Fri 08:00-17:00 or Sat 09:00-12:00',
    );
    expect(() => parseWeeklyHours("Mon-Fry 08:00-17:00")).toThrow("Fry is not a day");
    expect(() => parseWeeklyHours("Mon 08:00-25:00")).toThrow("25:00 is not a time of day");
    expect(() => parseWeeklyHours("Mon 08:61-09:00")).toThrow("08:61 is not a time of day");
    expect(() => parseWeeklyHours("Mon 22:00-06:00")).toThrow("write an overnight span as two");
  });

  test("any text either parses or throws an Error, never anything else", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        try {
          parseWeeklyHours(text);
        } catch (error) {
          expect(error).toBeInstanceOf(Error);
        }
      }),
    );
  });

  test("start-up refuses bad transfer settings, naming the variable", () => {
    expect(configError({ TRANSFER_HOURS: "dental-receptionist=Mon-Fri 8-5" }).problems).toEqual([
      'TRANSFER_HOURS: dental-receptionist: "Mon-Fri 8-5" is not of the form Mon-Fri 08:00-17:00 or Sat 09:00-12:00 (got "dental-receptionist=Mon-Fri 8-5")',
    ]);
    expect(
      configError({ TRANSFER_NUMBERS: "dental-receptionist=5551230000" }).problems[0],
    ).toStartWith("TRANSFER_NUMBERS: expected comma-separated scenario-id=+E164 pairs");
    expect(configError({ TRANSFER_NUMBER: "call Bob" }).problems[0]).toStartWith(
      "TRANSFER_NUMBER: expected an E.164 phone number",
    );
  });
});
