/**
 * One-time tokens that bind a media stream to the call they were issued for, and to what the service
 * decided about that call (scenario, direction, numbers, lead). The TwiML that opens a stream carries
 * only the token; a stream is bridged only if its `start` presents an unused, unexpired token for its
 * own call SID, and the call is then set up from the grant, never from the stream's parameters.
 * An outstanding token also holds a capacity slot: calls about to connect count against the limit.
 */
import { timingSafeEqual } from "node:crypto";
import type { Clock } from "../clock.ts";
import type { CallDirection, TransferResult } from "../store/calls.ts";

/** What the service decided about a call when it issued the token. */
export interface StreamGrant {
  scenario: string;
  direction: CallDirection;
  /** The caller (inbound) or our number (outbound). */
  from: string;
  to: string;
  leadId?: string;
  /** A stream that puts the caller back with the agent after a transfer that did not connect. */
  afterTransfer?: TransferResult;
}

/** An outbound call rings before it streams (Twilio rings up to 60 s by default). */
export const RINGING_TTL_MS = 3 * 60_000;
/** Once a call is answered its stream opens within a second or two; a slot is held no longer than this. */
export const ANSWERED_TTL_MS = 30_000;

interface Entry {
  token: Buffer;
  grant: StreamGrant;
  expiresAt: number;
}

export class StreamTokens {
  readonly #tokens = new Map<string, Entry>();
  /** Tokens that expired unused, not yet taken by `takeExpired`. */
  #expired: string[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly ttl = { ringingMs: RINGING_TTL_MS, answeredMs: ANSWERED_TTL_MS },
  ) {}

  /**
   * A fresh random token for `key` (a call SID, or a provisional key until Twilio names the call).
   * `answered`: the call is already answered (inbound), so its stream must arrive within the short
   * wait, plus `extraMs` (e.g. the time a disclosure takes to say before the stream opens).
   */
  issue(
    key: string,
    grant: StreamGrant,
    { answered, extraMs = 0 }: { answered: boolean; extraMs?: number },
  ): string {
    const now = this.#now();
    this.#forgetExpired();
    const token = Buffer.from(crypto.getRandomValues(new Uint8Array(24)));
    const ttlMs = (answered ? this.ttl.answeredMs : this.ttl.ringingMs) + extraMs;
    this.#tokens.set(key, { token, grant, expiresAt: now + ttlMs });
    return token.toString("base64url");
  }

  /**
   * Moves a token to another key: an outbound call's token is issued before Twilio has given the
   * call its SID (the TwiML carrying it is part of the create request), then bound to the SID.
   */
  rekey(from: string, to: string): void {
    const entry = this.#tokens.get(from);
    if (!entry) return;
    this.#tokens.delete(from);
    this.#tokens.set(to, entry);
  }

  /** The call was answered: its stream has the short wait from now on (never longer than before). */
  answered(callSid: string): void {
    const entry = this.#tokens.get(callSid);
    if (entry) entry.expiresAt = Math.min(entry.expiresAt, this.#now() + this.ttl.answeredMs);
  }

  /** Forgets the token of a call that will never stream (placing it failed, or it ended unanswered). */
  revoke(key: string): void {
    this.#tokens.delete(key);
  }

  /** True while `callSid` holds an unused, unexpired token. */
  pending(callSid: string): boolean {
    const entry = this.#tokens.get(callSid);
    return entry !== undefined && entry.expiresAt > this.#now();
  }

  /** Tokens issued and not yet used or expired: calls about to connect. */
  get outstanding(): number {
    this.#forgetExpired();
    return this.#tokens.size;
  }

  /**
   * The grant, once per issued token, for its own call SID, before it expires; otherwise undefined.
   * Compared in constant time. A wrong token does not burn the right one.
   */
  consume(callSid: string, presented: string | undefined): StreamGrant | undefined {
    const entry = this.#tokens.get(callSid);
    if (!entry || presented === undefined) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#forgetExpired();
      return undefined;
    }
    const candidate = Buffer.from(presented, "base64url");
    if (candidate.length !== entry.token.length || !timingSafeEqual(candidate, entry.token))
      return undefined;
    this.#tokens.delete(callSid);
    return entry.grant;
  }

  #now(): number {
    return this.clock.now().getTime();
  }

  /** The keys whose tokens expired unused since the last call: calls whose stream never came. */
  takeExpired(): string[] {
    this.#forgetExpired();
    const expired = this.#expired;
    this.#expired = [];
    return expired;
  }

  #forgetExpired(): void {
    const now = this.#now();
    for (const [key, entry] of this.#tokens) {
      if (entry.expiresAt > now) continue;
      this.#tokens.delete(key);
      this.#expired.push(key);
    }
  }
}
