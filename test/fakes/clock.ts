/** A clock tests move by hand, so time-stamped records are predictable. */
import type { Clock } from "../../src/clock.ts";

export class ManualClock implements Clock {
  #now: number;

  constructor(start = "2026-03-02T15:00:00.000Z") {
    this.#now = Date.parse(start);
  }

  now(): Date {
    return new Date(this.#now);
  }

  advance(ms: number): void {
    this.#now += ms;
  }
}
