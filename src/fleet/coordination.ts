/**
 * The coordination port: what the instances of one service must agree on, whichever of them a
 * webhook or a stream reaches. One-time stream tokens (issued by one, redeemed once on any), which
 * instance holds each live call, the fleet-wide limit on calls (live ones plus those about to
 * connect), and messages to the instance holding a call (an answering-machine verdict that reached
 * another). In one process it is memory (`LocalCoordination`); across processes, Redis.
 */
import type { StreamGrant } from "../call/stream-tokens.ts";

export type { StreamGrant } from "../call/stream-tokens.ts";

/** A message for the session of a call held by another instance. */
export type CallMessage =
  /** Twilio's answering-machine verdict. */
  | { kind: "verdict"; callSid: string; answeredBy: string }
  /** Twilio's terminal call status (completed, canceled, …): the call is over. */
  | { kind: "ended"; callSid: string; status: string };

export interface TokenOptions {
  /** The call is already answered (inbound): its stream must come within the short wait. */
  answered: boolean;
  /** Added to the wait, e.g. the time a disclosure takes to say before the stream opens. */
  extraMs?: number;
}

export interface Coordination {
  /** Which implementation: this process alone, or Redis. */
  readonly kind: "local" | "redis";
  /** This instance's id (the owner written on the calls it holds). */
  readonly instance: string;

  /**
   * A fresh one-time token for `key` (a call SID, or a provisional key until Twilio names the
   * call), unless the fleet already has `limit` calls live or about to connect: then undefined.
   * The check and the issue are one step, so concurrent requests on any instances cannot together
   * pass the limit.
   */
  issueToken(
    key: string,
    grant: StreamGrant,
    options: TokenOptions,
    limit: number,
  ): Promise<string | undefined>;
  /** Moves a token to the call SID Twilio gave the call. */
  rekeyToken(from: string, to: string): Promise<void>;
  /** The call was answered: its stream has the short wait from now on (never longer than before). */
  tokenAnswered(callSid: string): Promise<void>;
  /** Forgets the token of a call that will never stream. */
  revokeToken(key: string): Promise<void>;
  /** True while `callSid` holds an unused, unexpired token. */
  tokenPending(callSid: string): Promise<boolean>;
  /**
   * The grant, once per issued token, for its own call SID, before it expires (a wrong token does
   * not burn the right one); in the same step this instance takes the call, so the slot its token
   * held passes to the live call with no moment in between when another call could take it.
   * `held` false: another instance already holds the call (this stream is a duplicate).
   */
  redeemToken(
    callSid: string,
    presented: string | undefined,
  ): Promise<{ grant: StreamGrant; held: boolean } | undefined>;
  /** Calls whose tokens expired unused since they were last taken, each given to one taker. */
  takeExpiredTokens(): Promise<string[]>;

  /** This instance holds the live call now. @returns false when another instance already does */
  holdCall(callSid: string): Promise<boolean>;
  /** The call is no longer live here. */
  releaseCall(callSid: string): Promise<void>;
  /** Which instance holds the live call, if any does. */
  holder(callSid: string): Promise<string | undefined>;
  /** Calls live on every instance plus tokens not yet redeemed: what counts against the limit. */
  load(): Promise<number>;
  /** The live calls another instance held when it died no longer count. */
  releaseInstance(instance: string): Promise<void>;

  /** Delivers `message` to the instance holding its call (this one included). */
  send(instance: string, message: CallMessage): Promise<void>;
  /** Where messages for this instance's calls go. */
  onMessage(handler: (message: CallMessage) => void): void;
  close(): Promise<void>;
}
