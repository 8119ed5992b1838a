/**
 * The live calls of this process, keyed by call SID. It refuses new calls once draining starts and
 * lets shutdown wait for the live ones, and those still being set up, to finish before hanging up
 * whatever is left.
 */

/** What the registry needs from a live call. */
export interface LiveCall {
  readonly callSid: string;
  /** Ends the call politely (e.g. a goodbye, then hang-up); resolves when it has ended. */
  hangUp(reason: string): Promise<void>;
  /** Ends the call at once, whatever is still being said. */
  terminate(reason: string): void;
}

export type RegisterResult = "registered" | "draining" | "duplicate";

export class CallRegistry<Call extends LiveCall = LiveCall> {
  readonly #calls = new Map<string, Call>();
  readonly #emptyWaiters = new Set<() => void>();
  #draining = false;
  /** Streams being set up (their store and coordination awaited): the drain waits for them too. */
  #opening = 0;

  get size(): number {
    return this.#calls.size;
  }

  /** True once `stopAccepting` has been called. */
  get draining(): boolean {
    return this.#draining;
  }

  register(call: Call): RegisterResult {
    if (this.#draining) return "draining";
    if (this.#calls.has(call.callSid)) return "duplicate";
    this.#calls.set(call.callSid, call);
    return "registered";
  }

  get(callSid: string): Call | undefined {
    return this.#calls.get(callSid);
  }

  /** The live calls now. */
  values(): IterableIterator<Call> {
    return this.#calls.values();
  }

  unregister(callSid: string): void {
    if (this.#calls.delete(callSid)) this.#notifyIfEmpty();
  }

  /** A stream is being set up; call the result when it is registered or refused. */
  opening(): () => void {
    this.#opening += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#opening -= 1;
      this.#notifyIfEmpty();
    };
  }

  #notifyIfEmpty(): void {
    if (this.#calls.size > 0 || this.#opening > 0) return;
    for (const notify of this.#emptyWaiters) notify();
    this.#emptyWaiters.clear();
  }

  stopAccepting(): void {
    this.#draining = true;
  }

  /** @returns true when every call ended within `timeoutMs`, false when some are still live */
  waitUntilEmpty(timeoutMs: number): Promise<boolean> {
    if (this.#calls.size === 0 && this.#opening === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (empty: boolean) => {
        clearTimeout(timer);
        this.#emptyWaiters.delete(onEmpty);
        resolve(empty);
      };
      const onEmpty = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#emptyWaiters.add(onEmpty);
    });
  }

  /**
   * Hangs up every live call politely, waits up to `goodbyeMs` for them to end, then ends the rest
   * at once. Resolves when every call has left the registry or been told to end.
   */
  async hangUpAll(reason: string, goodbyeMs: number): Promise<void> {
    const live = [...this.#calls.values()];
    for (const call of live) call.hangUp(reason).catch(() => {});
    if (await this.waitUntilEmpty(goodbyeMs)) return;
    for (const call of this.#calls.values()) {
      try {
        call.terminate(reason);
      } catch {
        this.#calls.delete(call.callSid);
      }
    }
  }
}
