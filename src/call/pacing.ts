/**
 * Keeps a call moving and within its time through words the session itself has the agent say:
 * "Are you still there?" once the line has been quiet, a goodbye if that goes unanswered; a hint to
 * wrap up shortly before the time limit, and a goodbye at it. A goodbye (these two, and the
 * shutdown's) must be said: one the agent refuses is sent once more, interrupting. Ending the call
 * after a goodbye is the session's business.
 */
import type { Timer } from "../clock.ts";
import { type InjectionBehavior, injectAgentMessage } from "../protocol/deepgram-agent.ts";
import type { CallEventInput } from "../store/calls.ts";
import type { CallTimings } from "./session.ts";
import type { EndReason } from "./state.ts";

export const PHRASES = {
  stillThere: "Are you still there?",
  silenceGoodbye:
    "I haven't heard anything, so I'll end the call now. Feel free to call back any time. Goodbye!",
  timeLimit:
    "I'm sorry, we've reached the time limit for this call. Thank you for your time. Goodbye!",
  wrapUp:
    "The call reaches its time limit in under a minute. Wrap up now: finish the current point, briefly say what happens next, and say goodbye. Do not start anything new.",
  shutdown: "I'm sorry, I have to end the call now. Please call back in a few minutes. Goodbye!",
  handoff: "Let me connect you with someone, one moment.",
  transferNotStarted:
    "I'm sorry, I couldn't connect you just now. Would you like me to take a message so someone can call you back?",
} as const;

export interface PacingDeps {
  timings: CallTimings;
  /** A timer inside the session's containment. */
  after(ms: number, work: () => void): Timer;
  /** Sends a text message to the agent (nothing happens while no socket is open). */
  send(text: string): void;
  record(event: CallEventInput): void;
  /** The conversation is live with an agent socket open. */
  live(): boolean;
  /** Encodes the message that tells the agent to wrap up (UpdateThink: its prompt + PHRASES.wrapUp). */
  wrapUpMessage: () => string;
  /** Has the agent say `words`, then ends the call once they have been heard. */
  endWithWords(reason: EndReason, detail: string, words: string): void;
}

/** Words the call must not end without: sent again, interrupting, if the agent refuses them once. */
interface Injection {
  words: string;
  retried: boolean;
}

export class Pacing {
  readonly #deps: PacingDeps;
  #silencePrompted = false;
  #silenceTimer: Timer | undefined;
  #maxDurationTimer: Timer | undefined;
  #wrapUpTimer: Timer | undefined;
  /** Ending words sent to the agent and not yet spoken. */
  #injection: Injection | undefined;

  constructor(deps: PacingDeps) {
    this.#deps = deps;
  }

  /** Arms the time limit, and the hint to wrap up `wrapUpMs` before it. */
  start(): void {
    const { timings } = this.#deps;
    this.#maxDurationTimer = this.#deps.after(timings.maxCallMs, () =>
      this.#deps.endWithWords(
        "max_duration",
        `call reached ${timings.maxCallMs} ms`,
        PHRASES.timeLimit,
      ),
    );
    if (timings.wrapUpMs < timings.maxCallMs) {
      this.#wrapUpTimer = this.#deps.after(timings.maxCallMs - timings.wrapUpMs, () => {
        if (!this.#deps.live()) return;
        this.#deps.send(this.#deps.wrapUpMessage());
        this.#deps.record({
          kind: "prompt_updated",
          data: { reason: `wrap up: ${timings.wrapUpMs} ms left` },
        });
      });
    }
  }

  /** The line is quiet (all the agent said has been heard): the silence count starts again. */
  armSilence(): void {
    const { timings } = this.#deps;
    this.stopSilence();
    this.#silenceTimer = this.#deps.after(
      this.#silencePrompted ? timings.silenceHangupMs : timings.silencePromptMs,
      () => {
        if (!this.#silencePrompted) {
          this.#silencePrompted = true;
          // `default`: if either side is mid-turn the agent refuses, and the line is not silent.
          this.#deps.send(injectAgentMessage(PHRASES.stillThere, "default"));
        } else {
          this.#deps.endWithWords(
            "silence",
            "no response after a silence prompt",
            PHRASES.silenceGoodbye,
          );
        }
      },
    );
  }

  stopSilence(): void {
    this.#silenceTimer?.cancel();
    this.#silenceTimer = undefined;
  }

  /** The caller was heard: the silence count stops, and a later one asks again first. */
  callerActive(): void {
    this.stopSilence();
    this.#silencePrompted = false;
  }

  /**
   * Sends ending words to the agent. `queue` lets what the agent is saying finish first;
   * `interrupt` cuts it off, and is not sent again if refused.
   */
  say(words: string, behavior: Exclude<InjectionBehavior, "default">): void {
    this.#deps.send(injectAgentMessage(words, behavior));
    this.#injection = { words, retried: behavior === "interrupt" };
  }

  /** The agent refused the ending words: sends them once more, interrupting, unless it was done. */
  sayAgain(): boolean {
    const injection = this.#injection;
    if (!injection || injection.retried) return false;
    injection.retried = true;
    this.#deps.send(injectAgentMessage(injection.words, "interrupt"));
    return true;
  }

  /** The agent's turn is over: ending words sent to it are no longer awaited. */
  said(): void {
    this.#injection = undefined;
  }

  /** The call has ended: no timer of this pacing fires any more. */
  stop(): void {
    for (const timer of [this.#silenceTimer, this.#maxDurationTimer, this.#wrapUpTimer]) {
      timer?.cancel();
    }
  }
}
