/**
 * Coordination for a service that is one process: tokens and live calls in memory, messages
 * delivered in-process. What the service did before it could run as a fleet, behind the port.
 */

import { StreamTokens } from "../call/stream-tokens.ts";
import type { Clock } from "../clock.ts";
import type { CallMessage, Coordination, StreamGrant, TokenOptions } from "./coordination.ts";

export class LocalCoordination implements Coordination {
  readonly kind = "local";
  readonly #tokens: StreamTokens;
  readonly #held = new Set<string>();
  #handler: ((message: CallMessage) => void) | undefined;

  constructor(
    readonly instance: string,
    clock: Clock,
    ttl?: ConstructorParameters<typeof StreamTokens>[1],
  ) {
    this.#tokens = new StreamTokens(clock, ttl);
  }

  async issueToken(key: string, grant: StreamGrant, options: TokenOptions, limit: number) {
    if (this.#held.size + this.#tokens.outstanding >= limit) return undefined;
    return this.#tokens.issue(key, grant, options);
  }

  async rekeyToken(from: string, to: string) {
    this.#tokens.rekey(from, to);
  }

  async tokenAnswered(callSid: string) {
    this.#tokens.answered(callSid);
  }

  async revokeToken(key: string) {
    this.#tokens.revoke(key);
  }

  async tokenPending(callSid: string) {
    return this.#tokens.pending(callSid);
  }

  async consumeToken(callSid: string, presented: string | undefined) {
    return this.#tokens.consume(callSid, presented);
  }

  async takeExpiredTokens() {
    return this.#tokens.takeExpired();
  }

  async holdCall(callSid: string) {
    if (this.#held.has(callSid)) return false;
    this.#held.add(callSid);
    return true;
  }

  async releaseCall(callSid: string) {
    this.#held.delete(callSid);
  }

  async holder(callSid: string) {
    return this.#held.has(callSid) ? this.instance : undefined;
  }

  async load() {
    return this.#held.size + this.#tokens.outstanding;
  }

  async releaseInstance() {
    // No other process shares this memory.
  }

  async send(instance: string, message: CallMessage) {
    if (instance === this.instance) this.#handler?.(message);
  }

  onMessage(handler: (message: CallMessage) => void) {
    this.#handler = handler;
  }

  async close() {}
}
