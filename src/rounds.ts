/**
 * Background work done in rounds on the service's clock (the outbox of ended calls, the campaign
 * dialer): the next round starts `everyMs` after the last one ended, never two at once; a round that
 * fails is reported and the next one still comes; `stop` waits for the round under way.
 */
import type { Clock, Timer } from "./clock.ts";

export class Rounds {
  #timer: Timer | undefined;
  #running: Promise<unknown> = Promise.resolve();
  #stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly everyMs: number,
    private readonly round: () => Promise<unknown>,
    private readonly failed: (error: unknown) => void,
  ) {}

  /** True once `stop` was called: a round under way should wind down. */
  get stopped(): boolean {
    return this.#stopped;
  }

  start(): void {
    const next = () => {
      if (this.#stopped) return;
      this.#timer = this.clock.setTimeout(() => {
        this.#running = this.round().then(next, (error: unknown) => {
          this.failed(error);
          next();
        });
      }, this.everyMs);
    };
    next();
  }

  /** No new round; resolves once the one under way is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    await this.#running;
  }
}
