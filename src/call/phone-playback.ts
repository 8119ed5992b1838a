/**
 * Agent audio out to the phone: encodes it for the Twilio stream with a mark after every stretch and
 * at the end of each turn, and knows from the echoed marks what the caller has heard; `clear` drops
 * what is still queued (a listener, the call's recording, hears both). The mark bookkeeping itself
 * is `PlaybackTracker`'s.
 */
import { TwilioEncoder } from "../protocol/twilio-media.ts";
import { type MarkOutcome, PlaybackTracker } from "./playback.ts";
import type { PhoneChannel } from "./session.ts";

/** Hears what the phone is sent and what it drops (a call's recording). */
export interface PlaybackListener {
  agent(audio: Uint8Array): void;
  cleared(): void;
}

export class PhonePlayback {
  readonly #phone: PhoneChannel;
  readonly #encoder: TwilioEncoder;
  readonly #tracker = new PlaybackTracker();

  readonly #listener: PlaybackListener | undefined;

  constructor(phone: PhoneChannel, streamSid: string, listener?: PlaybackListener) {
    this.#phone = phone;
    this.#encoder = new TwilioEncoder(streamSid);
    this.#listener = listener;
  }

  /** Everything sent has been heard (or dropped). */
  get idle(): boolean {
    return this.#tracker.idle;
  }

  /** Audio sent to the phone and not yet confirmed heard, in ms. */
  get queuedMs(): number {
    return this.#tracker.queuedMs;
  }

  play(audio: Uint8Array): void {
    this.#listener?.agent(audio);
    const mark = this.#tracker.sent(audio.byteLength);
    this.#phone.send(
      this.#encoder.media(audio),
      mark === undefined ? undefined : this.#encoder.mark(mark),
    );
  }

  /** Marks the end of what has been sent, so its playback can be confirmed. */
  markEnd(): void {
    const mark = this.#tracker.flush();
    if (mark !== undefined) this.#phone.send(this.#encoder.mark(mark));
  }

  /** A mark Twilio echoed back. */
  echoed(name: string): MarkOutcome {
    return this.#tracker.echoed(name);
  }

  /** Drops the audio still queued on the phone; returns how many of its marks go unplayed. */
  clear(): number {
    this.#listener?.cleared();
    this.#phone.send(this.#encoder.clear());
    return this.#tracker.clear();
  }
}
