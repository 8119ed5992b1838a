/** Calling windows across zones and daylight-saving changes, and the retry policy: pure, no sockets. */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  afterAttempt,
  type CallingWindow,
  DEFAULT_RETRY,
  FINAL_OUTCOMES,
  insideWindow,
  minutesOf,
  nextOpening,
  WEEKDAYS,
} from "../../src/campaigns/schedule.ts";
import { isoWeekday, localDate, localMinutes } from "../../src/scenarios/shared/time.ts";

const WEEKDAYS_9_TO_8: CallingWindow = {
  days: ["mon", "tue", "wed", "thu", "fri"],
  start: "09:00",
  end: "20:00",
};

describe("nextOpening", () => {
  test("inside the window it is now; before it, today's start; after it, the next day's", () => {
    const chicago = "America/Chicago";
    const at = (iso: string) => nextOpening(new Date(iso), WEEKDAYS_9_TO_8, chicago)?.toISOString();
    // Monday 2026-03-02: 10:00 in Chicago is 16:00 UTC.
    expect(at("2026-03-02T16:00:00.000Z")).toBe("2026-03-02T16:00:00.000Z");
    expect(at("2026-03-02T12:00:00.000Z")).toBe("2026-03-02T15:00:00.000Z");
    // 20:00 is closed (end exclusive): Tuesday 09:00.
    expect(at("2026-03-03T02:00:00.000Z")).toBe("2026-03-03T15:00:00.000Z");
    // Friday evening to Monday morning, across the change to daylight time (March 8): 09:00 CDT.
    expect(at("2026-03-07T03:00:00.000Z")).toBe("2026-03-09T14:00:00.000Z");
  });

  test("a window that names no day never opens", () => {
    expect(nextOpening(new Date(), { ...WEEKDAYS_9_TO_8, days: [] }, "UTC")).toBeUndefined();
  });

  test("the clock set back repeats an hour: inside by the local reading", () => {
    // New York falls back on 2026-11-01 at 02:00 (to 01:00). A window 01:00–01:30 on a Sunday.
    const window: CallingWindow = { days: ["sun"], start: "01:00", end: "01:30" };
    const zone = "America/New_York";
    const first = new Date("2026-11-01T05:10:00.000Z"); // 01:10 EDT
    const second = new Date("2026-11-01T06:10:00.000Z"); // 01:10 EST, the hour again
    expect(insideWindow(first, window, zone)).toBe(true);
    expect(insideWindow(second, window, zone)).toBe(true);
    expect(insideWindow(new Date("2026-11-01T06:40:00.000Z"), window, zone)).toBe(false);
  });

  test("property: the answer is at or after the moment, inside the window, and the window's first minute when later", () => {
    const zones = [
      "America/New_York",
      "America/Los_Angeles",
      "America/St_Johns",
      "Europe/London",
      "Asia/Kathmandu",
      "Australia/Lord_Howe",
      "Pacific/Chatham",
      "UTC",
    ];
    const time = fc
      .tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
      .map(([h, m]) => `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`);
    const window = fc
      .tuple(fc.subarray([...WEEKDAYS], { minLength: 1 }), time, time)
      .filter(([, start, end]) => minutesOf(end) - minutesOf(start) >= 90)
      .map(([days, start, end]): CallingWindow => ({ days, start, end }));
    fc.assert(
      fc.property(
        fc.date({
          min: new Date("2026-01-01T00:00:00Z"),
          max: new Date("2027-12-31T00:00:00Z"),
          noInvalidDate: true,
        }),
        fc.constantFrom(...zones),
        window,
        (from, zone, open) => {
          const found = nextOpening(from, open, zone);
          if (!found) return false;
          expect(found.getTime()).toBeGreaterThanOrEqual(from.getTime());
          expect(found.getTime() - from.getTime()).toBeLessThanOrEqual(8 * 86_400_000);
          const local = localMinutes(found, zone);
          const weekday = WEEKDAYS[
            isoWeekday(localDate(found, zone)) - 1
          ] as (typeof WEEKDAYS)[number];
          expect(open.days).toContain(weekday);
          expect(local).toBeGreaterThanOrEqual(minutesOf(open.start));
          expect(local).toBeLessThan(minutesOf(open.end));
          if (found.getTime() > from.getTime()) {
            // A later answer is where the window opens (or, where that local time does not exist
            // on a spring-forward day, the minute the clocks jump to).
            expect(insideWindow(new Date(found.getTime() - 60_000), open, zone)).toBe(false);
          }
          return true;
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("afterAttempt", () => {
  const base = {
    endedAt: new Date("2026-03-02T16:00:00.000Z"),
    attempts: 1,
    maxAttempts: 3,
    retry: DEFAULT_RETRY,
    retryNoDecision: false,
  };
  const minutesLater = (step: ReturnType<typeof afterAttempt>) =>
    step.kind === "retry" ? (step.at.getTime() - base.endedAt.getTime()) / 60_000 : step.result;

  test("each retried outcome waits its own delay; others wait failed's", () => {
    expect(minutesLater(afterAttempt({ ...base, outcome: "no_answer" }))).toBe(120);
    expect(minutesLater(afterAttempt({ ...base, outcome: "busy" }))).toBe(30);
    expect(minutesLater(afterAttempt({ ...base, outcome: "no_answer_voicemail_left" }))).toBe(1440);
    expect(minutesLater(afterAttempt({ ...base, outcome: "voicemail_failed" }))).toBe(120);
    expect(minutesLater(afterAttempt({ ...base, outcome: "callback_requested" }))).toBe(1440);
    for (const outcome of ["failed", "caller_hung_up", "agent_error", "service_shutdown", "what"])
      expect(minutesLater(afterAttempt({ ...base, outcome }))).toBe(60);
  });

  test("final outcomes end it; no_decision only unless the campaign retries it", () => {
    for (const outcome of FINAL_OUTCOMES)
      expect(afterAttempt({ ...base, outcome })).toEqual({ kind: "done", result: outcome });
    expect(
      minutesLater(afterAttempt({ ...base, outcome: "no_decision", retryNoDecision: true })),
    ).toBe(60);
  });

  test("the last attempt ends it, but a callback the lead asked for is still placed", () => {
    expect(afterAttempt({ ...base, outcome: "no_answer", attempts: 3 })).toEqual({
      kind: "done",
      result: "max_attempts",
    });
    const callbackAt = new Date("2026-03-03T20:00:00.000Z");
    expect(
      afterAttempt({ ...base, outcome: "callback_requested", attempts: 3, callbackAt }),
    ).toEqual({
      kind: "retry",
      at: callbackAt,
      reason: "callback",
    });
    // Not for ever: two callbacks past the limit at most.
    expect(
      afterAttempt({ ...base, outcome: "callback_requested", attempts: 5, callbackAt }),
    ).toEqual({ kind: "done", result: "max_attempts" });
    // A booking made on the same call wins over the callback.
    expect(afterAttempt({ ...base, outcome: "appointment_booked", callbackAt })).toEqual({
      kind: "done",
      result: "appointment_booked",
    });
  });
});
