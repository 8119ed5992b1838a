/**
 * Writes a call's timeline and end to the store. Everything a live call records is written behind
 * (held and written together shortly after), so nothing on its audio path waits on the database;
 * the call's end writes what is held at once (a transfer's handoff ends only the stream: the record
 * stays open for the transfer's result). A failing write is logged, never thrown into the call.
 */
import type { Clock } from "../clock.ts";
import { type Logger, tryLogged } from "../log.ts";
import type { CallStore } from "../store/port.ts";
import type { CallRecorder } from "./session.ts";

export function storeRecorder(
  calls: CallStore,
  callSid: string,
  clock: Clock,
  logger: Logger,
): CallRecorder {
  const attempt = (what: string, write: () => void) =>
    tryLogged(logger, "could not record call data", { what }, write);
  return {
    event: (event) =>
      attempt(event.kind, () => {
        calls.appendEvent(callSid, event);
        if (event.kind === "agent_connected" && event.data.request_id)
          calls.updateLater(callSid, { agent_request_id: event.data.request_id });
      }),
    outcome: (outcome, detail) =>
      attempt("outcome", () => calls.updateLater(callSid, { outcome, outcome_detail: detail })),
    ended: (reason, detail, callerAudio) =>
      attempt("end", () => {
        if (reason === "transferred") {
          // Only this stream is over: the call goes on with a person, and its record stays open
          // for Twilio's result (/transfer-result).
          calls.appendEvent(callSid, { kind: "transfer", data: { stage: "handed_off" } });
          if (callerAudio) calls.updateLater(callSid, { caller_audio: callerAudio });
        } else {
          calls.appendEvent(callSid, { kind: "ended", data: { reason, detail } });
          // The stream's end is the call's end: closing a <Connect><Stream> socket hangs up.
          calls.updateLater(callSid, {
            status: "completed",
            ended_at: clock.now().toISOString(),
            end_reason: reason,
            ...(callerAudio ? { caller_audio: callerAudio } : {}),
          });
        }
        calls
          .flush()
          .catch((error: unknown) =>
            logger.error("could not record call data", { what: "end", error }),
          );
      }),
  };
}
