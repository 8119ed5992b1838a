/**
 * An outbound call's answering-machine handling: until Twilio's verdict says who answered (none in
 * time counts as a person) the agent's greeting is held back, so that a person hears it from its
 * start and a machine never does; a machine gets the voicemail, synthesised as it is spoken, and a
 * fax a hang-up. What each answer means for the call is carried out by the session.
 */
import type { Timer } from "../clock.ts";
import type { CallEventInput } from "../store/calls.ts";
import type { CallState } from "./state.ts";

/** Speech synthesis streamed as raw mu-law 8 kHz chunks. */
export interface TextToSpeech {
  stream(text: string): AsyncIterable<Uint8Array>;
}

/** Outbound calls wait for Twilio's answering-machine verdict before the agent is heard. */
export interface OutboundOptions {
  /** No verdict by then counts as a person. */
  verdictTimeoutMs: number;
  /** A verdict that arrived before the stream started. */
  initialVerdict?: string | null;
  /** What to say to an answering machine. */
  voicemail: string;
  tts: TextToSpeech;
}

/** Twilio's AnsweredBy values that mean a machine took the call (DetectMessageEnd and Enable). */
export function isMachine(answeredBy: string): boolean {
  return answeredBy.startsWith("machine_");
}

/** The agent's greeting as it came while the verdict was awaited. */
export interface HeldGreeting {
  audio: Buffer[];
  events: CallEventInput[];
  /** The agent finished the greeting's turn (AgentAudioDone). */
  turnDone: boolean;
}

export interface AnsweringMachineDeps {
  options: OutboundOptions;
  /** A timer inside the session's containment. */
  after(ms: number, work: () => void): Timer;
  /** The session's way in for verdicts: no verdict in time arrives there as `unknown`. */
  verdict(answeredBy: string, detail: string): void;
  /** A person answered: the greeting held so far is theirs. */
  person(held: HeldGreeting): void;
  /** A machine answered, also when its verdict came late in a live conversation. */
  machine(detail: string): void;
  fax(detail: string): void;
}

export class AnsweringMachine {
  readonly #deps: AnsweringMachineDeps;
  #timer: Timer | undefined;
  #held: HeldGreeting = { audio: [], events: [], turnDone: false };

  constructor(deps: AnsweringMachineDeps) {
    this.#deps = deps;
  }

  /** Starts waiting for the verdict. */
  awaitVerdict(): void {
    const { verdictTimeoutMs } = this.#deps.options;
    this.#timer = this.#deps.after(verdictTimeoutMs, () =>
      this.#deps.verdict("unknown", `no verdict within ${verdictTimeoutMs} ms`),
    );
  }

  /** Twilio's verdict (`AnsweredBy`), arriving while the call is in `state`. */
  verdict(answeredBy: string, detail: string, state: CallState): void {
    if (state === "awaiting_verdict") {
      this.#timer?.cancel();
      if (answeredBy === "fax") this.#deps.fax(detail);
      else if (isMachine(answeredBy)) this.#deps.machine(detail);
      else {
        const held = this.#held;
        this.#held = { audio: [], events: [], turnDone: false };
        this.#deps.person(held);
      }
    } else if (state === "live" && isMachine(answeredBy)) {
      this.#deps.machine(`late verdict ${answeredBy}: the agent had already started`);
    }
  }

  /** While the verdict is awaited: the greeting's audio, its lines and the end of its turn. */
  hold(audio: Buffer): void {
    this.#held.audio.push(audio);
  }

  holdEvent(event: CallEventInput): void {
    this.#held.events.push(event);
  }

  holdTurnDone(): void {
    this.#held.turnDone = true;
  }

  /** A machine answered: the greeting will never be heard. */
  dropHeld(): void {
    this.#held.audio = [];
    this.#held.events = [];
  }

  /** The voicemail's audio, as it is synthesised. */
  voicemail(): AsyncIterable<Uint8Array> {
    const { tts, voicemail } = this.#deps.options;
    return tts.stream(voicemail);
  }

  /** The call has ended: no verdict timeout any more. */
  stop(): void {
    this.#timer?.cancel();
  }
}
