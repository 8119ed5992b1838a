/** Time as a dependency: production uses the system clock, tests inject a manual one. */

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
