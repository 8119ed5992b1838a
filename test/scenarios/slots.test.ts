/** slotsForDay: one offset per ordinary day, each time on its own on the days the clocks change. */
import { describe, expect, test } from "bun:test";
import { at, slotsForDay } from "../../src/scenarios/shared/slots.ts";
import { zonedToUtc } from "../../src/scenarios/shared/time.ts";

const day = (date: string, timeZone: string, periods: [number, number][]) =>
  slotsForDay({ calendar: "c", provider: "p", date, periods, slotMinutes: 30, timeZone });

/** The same slots computed one conversion per time, as before the shortcut. */
const oneByOne = (date: string, timeZone: string, periods: [number, number][]) =>
  periods.flatMap(([open, close]) =>
    Array.from({ length: Math.floor((close - open) / 30) }, (_, index) => open + index * 30).map(
      (start) => ({
        calendar: "c",
        provider: "p",
        starts_at: zonedToUtc(date, start, timeZone).toISOString(),
        ends_at: zonedToUtc(date, start + 30, timeZone).toISOString(),
      }),
    ),
  );

describe("slotsForDay", () => {
  test("an ordinary day: every slot at the day's offset", () => {
    const slots = day("2026-03-03", "America/New_York", [[at(9), at(12)]]);
    expect(slots).toHaveLength(6);
    expect(slots[0]?.starts_at).toBe("2026-03-03T14:00:00.000Z");
    expect(slots.at(-1)?.ends_at).toBe("2026-03-03T17:00:00.000Z");
  });

  test.each([
    ["2026-03-08", "America/New_York"],
    ["2026-11-01", "America/New_York"],
    ["2026-10-04", "Australia/Lord_Howe"],
    ["2026-03-29", "Europe/London"],
  ])("the day the clocks change (%s, %s) matches converting each time", (date, timeZone) => {
    const periods: [number, number][] = [
      [at(0), at(4)],
      [at(9), at(17)],
    ];
    expect(day(date, timeZone, periods)).toEqual(oneByOne(date, timeZone, periods));
  });

  test("a closed day has no slots", () => {
    expect(day("2026-03-08", "America/New_York", [])).toEqual([]);
  });
});
