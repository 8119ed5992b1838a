/**
 * One-time tokens that bind a media stream to the call they were issued for. The TwiML that opens a
 * stream carries the token as a `<Parameter>`; the stream is bridged only if its `start` presents an
 * unused, unexpired token for its own call SID.
 */
import { timingSafeEqual } from "node:crypto";
import type { Clock } from "../clock.ts";

/** A stream starts when the call is answered: inbound at once, outbound after ringing (≤ 60 s by default). */
const DEFAULT_TTL_MS = 3 * 60_000;

export class StreamTokens {
  readonly #tokens = new Map<string, { token: Buffer; expiresAt: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs = DEFAULT_TTL_MS,
  ) {}

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

  /** Forgets the token of a call that will never stream (placing it failed, or it ended unanswered). */
  revoke(key: string): void {
    this.#tokens.delete(key);
  }

  /** Tokens issued and not yet used or expired: calls about to connect. */
  get outstanding(): number {
    this.#forgetExpired();
    return this.#tokens.size;
  }

  /** A fresh random token for `callSid` (or a provisional key), replacing any earlier one. */
  issue(callSid: string): string {
    const now = this.clock.now().getTime();
    this.#forgetExpired();
    const token = crypto.getRandomValues(new Uint8Array(24));
    this.#tokens.set(callSid, { token: Buffer.from(token), expiresAt: now + this.ttlMs });
    return Buffer.from(token).toString("base64url");
  }

  /**
   * True once per issued token, for its own call SID, before it expires. Compared in constant time.
   * A wrong token does not burn the right one.
   */
  consume(callSid: string, presented: string | undefined): boolean {
    const entry = this.#tokens.get(callSid);
    if (!entry || presented === undefined) return false;
    if (entry.expiresAt <= this.clock.now().getTime()) {
      this.#tokens.delete(callSid);
      return false;
    }
    const candidate = Buffer.from(presented, "base64url");
    if (candidate.length !== entry.token.length || !timingSafeEqual(candidate, entry.token))
      return false;
    this.#tokens.delete(callSid);
    return true;
  }

  #forgetExpired(): void {
    const now = this.clock.now().getTime();
    for (const [sid, entry] of this.#tokens) if (entry.expiresAt <= now) this.#tokens.delete(sid);
  }
}
