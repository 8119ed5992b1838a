/**
 * Coordination within one machine's memory: tokens and live calls in a `CoordinationState`, seen
 * by each instance through a `LocalCoordination` of its own. A service that is one process has one
 * state and one view; a supervisor of workers (`--workers`) holds the state and serves each
 * worker's view over IPC, so its workers share tokens, the call limit and verdicts without Redis.
 */

import { StreamTokens } from "../call/stream-tokens.ts";
import type { Clock } from "../clock.ts";
import type { CallMessage, Coordination, StreamGrant, TokenOptions } from "./coordination.ts";

/** What the instances of one machine share. */
export class CoordinationState {
  readonly tokens: StreamTokens;
  /** Live call → the instance holding it. */
  readonly held = new Map<string, string>();
  /** Where each instance's messages go. */
  readonly handlers = new Map<string, (message: CallMessage) => void>();

  constructor(clock: Clock, ttl?: ConstructorParameters<typeof StreamTokens>[1]) {
    this.tokens = new StreamTokens(clock, ttl);
  }

  get load(): number {
    return this.held.size + this.tokens.outstanding;
  }
}

export class LocalCoordination implements Coordination {
  readonly kind = "local";
  readonly #state: CoordinationState;

  /** `state`: shared with the machine's other instances, or (by default) this one's alone. */
  constructor(
    readonly instance: string,
    clock: Clock,
    state: CoordinationState = new CoordinationState(clock),
  ) {
    this.#state = state;
  }

  async issueToken(key: string, grant: StreamGrant, options: TokenOptions, limit: number) {
    if (this.#state.load >= limit) return undefined;
    return this.#state.tokens.issue(key, grant, options);
  }

  async rekeyToken(from: string, to: string) {
    this.#state.tokens.rekey(from, to);
  }

  async tokenAnswered(callSid: string) {
    this.#state.tokens.answered(callSid);
  }

  async revokeToken(key: string) {
    this.#state.tokens.revoke(key);
  }

  async tokenPending(callSid: string) {
    return this.#state.tokens.pending(callSid);
  }

  async redeemToken(callSid: string, presented: string | undefined) {
    // No await in between: nothing else runs on this state from the consume to the hold.
    const grant = this.#state.tokens.consume(callSid, presented);
    if (!grant) return undefined;
    const held = !this.#state.held.has(callSid);
    if (held) this.#state.held.set(callSid, this.instance);
    return { grant, held };
  }

  async takeExpiredTokens() {
    return this.#state.tokens.takeExpired();
  }

  async holdCall(callSid: string) {
    if (this.#state.held.has(callSid)) return false;
    this.#state.held.set(callSid, this.instance);
    return true;
  }

  async releaseCall(callSid: string) {
    if (this.#state.held.get(callSid) === this.instance) this.#state.held.delete(callSid);
  }

  async holder(callSid: string) {
    return this.#state.held.get(callSid);
  }

  async load() {
    return this.#state.load;
  }

  async releaseInstance(instance: string) {
    for (const [callSid, holder] of this.#state.held) {
      if (holder === instance) this.#state.held.delete(callSid);
    }
  }

  async send(instance: string, message: CallMessage) {
    this.#state.handlers.get(instance)?.(message);
  }

  onMessage(handler: (message: CallMessage) => void) {
    this.#state.handlers.set(this.instance, handler);
  }

  async close() {
    this.#state.handlers.delete(this.instance);
  }
}
