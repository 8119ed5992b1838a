/**
 * What became of a call's caller frames: forwarded to the agent, or held back by design and why
 * (before the agent is ready, before the answering-machine verdict, while a dropped agent socket is
 * replaced, after hanging up began). Integer increments only: it runs for every frame.
 */
import type { CallerAudioCounts, HeldBackReason } from "../store/calls.ts";
import type { CallState } from "./state.ts";

export class CallerAudio {
  #received: number;
  #forwarded: number;
  readonly #heldBack: Record<HeldBackReason, number>;

  /** `soFar`: the counts of the call's earlier streams (before a transfer that came back). */
  constructor(soFar?: CallerAudioCounts) {
    this.#received = soFar?.received ?? 0;
    this.#forwarded = soFar?.forwarded ?? 0;
    this.#heldBack = {
      before_agent_ready: 0,
      awaiting_verdict: 0,
      agent_reconnecting: 0,
      ending: 0,
      ...soFar?.held_back,
    };
  }

  /** A frame handed to an open agent socket. */
  forwarded(): void {
    this.#received += 1;
    this.#forwarded += 1;
  }

  /**
   * A frame not forwarded. `agentWasUp`: an agent socket of this call had been ready before, so a
   * live call without one is replacing a dropped socket rather than still starting.
   */
  heldBack(state: CallState, agentWasUp: boolean): void {
    this.#received += 1;
    this.#heldBack[reasonFor(state, agentWasUp)] += 1;
  }

  get counts(): CallerAudioCounts {
    return {
      received: this.#received,
      forwarded: this.#forwarded,
      held_back: { ...this.#heldBack },
    };
  }
}

function reasonFor(state: CallState, agentWasUp: boolean): HeldBackReason {
  switch (state) {
    case "connecting":
      return "before_agent_ready";
    case "awaiting_verdict":
      return "awaiting_verdict";
    case "live":
      return agentWasUp ? "agent_reconnecting" : "before_agent_ready";
    default:
      return "ending";
  }
}
