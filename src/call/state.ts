/**
 * The call's lifecycle as an explicit state machine. Only the moves listed here are allowed; `ended`
 * is terminal. The outbound answering-machine states belong here too.
 */

export type CallState =
  /** Stream started, agent socket opening. */
  | "connecting"
  /** Outbound: waiting for Twilio's answering-machine verdict; caller audio is held. */
  | "awaiting_verdict"
  /** The agent and the caller are talking. */
  | "live"
  /** Outbound: a machine answered; the voicemail is playing. */
  | "voicemail"
  /** Final audio is playing; hang-up follows once it has been heard. */
  | "ending"
  | "ended";

const moves: Record<CallState, readonly CallState[]> = {
  connecting: ["awaiting_verdict", "live", "ending", "ended"],
  awaiting_verdict: ["live", "voicemail", "ending", "ended"],
  live: ["voicemail", "ending", "ended"],
  voicemail: ["ending", "ended"],
  // Back to live only when the agent withdraws the end_call that began the ending.
  ending: ["live", "ended"],
  ended: [],
};

export function canTransition(from: CallState, to: CallState): boolean {
  return moves[from].includes(to);
}

/** Why a call ended; stored on the call record. */
export type EndReason =
  | "caller_hung_up"
  | "agent_ended_call"
  | "silence"
  | "max_duration"
  | "agent_error"
  | "agent_unavailable"
  | "service_shutdown"
  | "voicemail_left"
  | "voicemail_failed"
  | "fax_detected"
  /** This stream's part is over: the caller was handed to a person (the call itself goes on). */
  | "transferred"
  /** The service had issued the stream's token but refused the stream (e.g. it was shutting down). */
  | "stream_refused"
  /** A bug in the service while handling this call; the error is in the call's events and the log. */
  | "internal_error";
