/**
 * Failed attempts counted per client in fixed windows: after `maxFailures` in one window the client
 * is refused until the window ends. Bounded memory: at most `maxClients` are tracked, the oldest
 * forgotten first, so a flood of addresses cannot grow it.
 */
import type { Clock } from "../clock.ts";
import { AppError } from "../errors.ts";

export class TooManyFailuresError extends AppError {
  constructor(readonly retryAfterSeconds: number) {
    super(
      429,
      "TOO_MANY_FAILED_ATTEMPTS",
      `Too many failed attempts from this address; retry after ${retryAfterSeconds} s`,
    );
    this.headers["retry-after"] = String(retryAfterSeconds);
  }
}

export interface ThrottleLimits {
  maxFailures: number;
  windowMs: number;
  maxClients: number;
}

/** Ten wrong secrets a minute per address: enough for typos, nothing for guessing. */
export const AUTH_FAILURE_LIMITS: ThrottleLimits = {
  maxFailures: 10,
  windowMs: 60_000,
  maxClients: 10_000,
};

export class FailureThrottle {
  readonly #windows = new Map<string, { startedAt: number; failures: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly limits: ThrottleLimits = AUTH_FAILURE_LIMITS,
  ) {}

  /** Throws 429 (with the seconds to wait) while `client` has used up its failures. */
  check(client: string): void {
    const window = this.#current(client);
    if (!window || window.failures < this.limits.maxFailures) return;
    const waitMs = window.startedAt + this.limits.windowMs - this.clock.now().getTime();
    throw new TooManyFailuresError(Math.max(1, Math.ceil(waitMs / 1000)));
  }

  fail(client: string): void {
    const window = this.#current(client);
    if (window) {
      window.failures += 1;
      return;
    }
    if (this.#windows.size >= this.limits.maxClients) {
      const oldest = this.#windows.keys().next().value;
      if (oldest !== undefined) this.#windows.delete(oldest);
    }
    this.#windows.set(client, { startedAt: this.clock.now().getTime(), failures: 1 });
  }

  #current(client: string) {
    const window = this.#windows.get(client);
    if (window && window.startedAt + this.limits.windowMs <= this.clock.now().getTime()) {
      this.#windows.delete(client);
      return undefined;
    }
    return window;
  }
}
