/** A clock tests move by hand: time-stamps are predictable and timers fire only on `advance`. */
import type { Clock, Timer } from "../../src/clock.ts";

interface Scheduled {
  at: number;
  order: number;
  callback: () => void;
  cancelled: boolean;
}

export class ManualClock implements Clock {
  #now: number;
  #order = 0;
  #timers: Scheduled[] = [];

  constructor(start = "2026-03-02T15:00:00.000Z") {
    this.#now = Date.parse(start);
  }

  now(): Date {
    return new Date(this.#now);
  }

  setTimeout(callback: () => void, ms: number): Timer {
    const scheduled: Scheduled = {
      at: this.#now + Math.max(0, ms),
      order: this.#order++,
      callback,
      cancelled: false,
    };
    this.#timers.push(scheduled);
    return {
      cancel: () => {
        scheduled.cancelled = true;
      },
    };
  }

  /** Timers still waiting to fire. */
  get pendingTimers(): number {
    return this.#timers.filter((timer) => !timer.cancelled).length;
  }

  /** Moves time forward, firing due timers in order (including ones they schedule within the window). */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = this.#timers
        .filter((timer) => !timer.cancelled && timer.at <= end)
        .sort((a, b) => a.at - b.at || a.order - b.order)[0];
      if (!due) break;
      this.#now = due.at;
      due.cancelled = true;
      due.callback();
    }
    this.#timers = this.#timers.filter((timer) => !timer.cancelled);
    this.#now = end;
  }
}
