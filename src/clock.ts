/** Time as a dependency: the current instant and timers. Production uses the system clock; tests a manual one. */

export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): Date;
  /** Runs `callback` once after `ms` milliseconds unless cancelled. */
  setTimeout(callback: () => void, ms: number): Timer;
}

export const systemClock: Clock = {
  now: () => new Date(),
  setTimeout(callback, ms) {
    const handle = setTimeout(callback, ms);
    return { cancel: () => clearTimeout(handle) };
  },
};
