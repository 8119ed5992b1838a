/**
 * Every ended call has an outcome, so reports can count them: the scenario's disposition when the
 * agent recorded one, otherwise what the way the call ended says (the fallback below). The call
 * repository applies it whenever a record ends without an outcome.
 */

/** Outcomes of calls whose agent recorded no disposition, by how they ended. */
export const FALLBACK_OUTCOMES = [
  "no_answer",
  "busy",
  "failed",
  "no_answer_voicemail_left",
  "voicemail_failed",
  "fax",
  "no_response",
  "caller_hung_up",
  "max_duration",
  "agent_error",
  "service_shutdown",
  "internal_error",
  /** The agent ended the conversation without recording a disposition. */
  "no_decision",
] as const;

export type FallbackOutcome = (typeof FALLBACK_OUTCOMES)[number];

const BY_END_REASON: Record<string, FallbackOutcome> = {
  caller_hung_up: "caller_hung_up",
  agent_ended_call: "no_decision",
  silence: "no_response",
  max_duration: "max_duration",
  agent_error: "agent_error",
  agent_unavailable: "agent_error",
  service_shutdown: "service_shutdown",
  voicemail_left: "no_answer_voicemail_left",
  voicemail_failed: "voicemail_failed",
  fax_detected: "fax",
  stream_refused: "failed",
  stream_failed: "failed",
  over_capacity: "busy",
  internal_error: "internal_error",
  /** The process was killed or stopped twice: its calls were cut off with it. */
  interrupted: "service_shutdown",
};

/** The outcome of a call that ended for `endReason` with no disposition recorded. */
export function fallbackOutcome(endReason: string): FallbackOutcome {
  return BY_END_REASON[endReason] ?? "failed";
}
