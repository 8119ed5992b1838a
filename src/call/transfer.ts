/**
 * Handing the caller to a person. Which number a scenario transfers to and when someone is there
 * (TRANSFER_NUMBER, TRANSFER_NUMBERS, TRANSFER_HOURS); the `transfer_call` tool, offered only when
 * a scenario has a target; and the redirect behind the session's `CallTransfer` port: the record
 * says a transfer is pending and that no process holds the call any more, then Twilio is told to
 * dial the person (`<Dial>` with a whisper of the agent's briefing), which stops the call's media
 * stream. How it went comes back on `<Dial action>`: `POST /transfer-result` (routes/transfer.ts).
 */
import { Type } from "@sinclair/typebox";
import { dialTwiml } from "../adapters/twilio-webhooks.ts";
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import { plainText } from "../scenarios/shared/text.ts";
import { defineTool, type Tool } from "../scenarios/types.ts";
import type { CallStore } from "../store/port.ts";
import { isOpen, type WeeklyHours } from "./transfer-hours.ts";

export const TRANSFER_TOOL = "transfer_call";

/** The keypad key that asks for a person when a scenario names none. */
export const DEFAULT_TRANSFER_KEY = "0";

/** What the agent asks for: why, and the briefing the person hears before the caller joins. */
export interface TransferRequest {
  reason: string;
  summary: string;
}

/** The session's way to hand its call over; resolves once Twilio has taken the redirect. */
export interface CallTransfer {
  /** `live`: whether the session still runs (when Twilio refuses, the call may be gone). */
  start(request: TransferRequest, live: () => boolean): Promise<void>;
}

/** Where a scenario's transfers go, and when someone answers there (undefined: always). */
export interface TransferTarget {
  number: string;
  hours: WeeklyHours | undefined;
}

/** The scenario's target: its own in TRANSFER_NUMBERS, else TRANSFER_NUMBER; none, no transfers. */
export function transferTarget(
  config: Config["transfer"],
  scenarioId: string,
): TransferTarget | undefined {
  const number = config.numbers.get(scenarioId) ?? config.defaultNumber;
  return number ? { number, hours: config.hours.get(scenarioId) } : undefined;
}

/**
 * `transfer_call`: outside the target's hours the agent is told no one is there and offers a
 * message; inside them the transfer is staged (the session says the handoff line unless the agent
 * already did, then redirects once it has been heard).
 */
export function transferCallTool(target: TransferTarget, timeZone: string): Tool {
  return defineTool({
    name: TRANSFER_TOOL,
    deferUntilEndOfTurn: true,
    description:
      "Transfer the caller to a person on the team when they ask for one, or when you cannot help them. Do not announce it yourself: the handoff line is said for you.",
    parameters: Type.Object({
      reason: plainText(300, "Why the caller needs a person"),
      summary: plainText(
        600,
        "Two sentences briefing the person: who is calling and what they need",
        2,
      ),
    }),
    run: ({ reason, summary }, context) => {
      if (target.hours && !isOpen(target.hours, context.now, timeZone)) {
        return `No one is available to take the call right now (the team answers ${target.hours.text}, ${timeZone} time). Tell the caller so, and offer to take a message with take_message.`;
      }
      context.transfer({ reason, summary });
      return "The caller is being transferred to a person now; the handoff line is said for you. Say nothing more.";
    },
  });
}

/** Redirects a live call (Twilio REST: the call's TwiML replaced). */
export interface CallRedirect {
  redirect(callSid: string, twiml: string): Promise<void>;
}

export interface TwilioTransferDeps {
  callSid: string;
  target: TransferTarget;
  /** The number the person sees: ours (the called number inbound, the calling number outbound). */
  callerId: string;
  /** SERVER_EXTERNAL_URL: where Twilio posts the result and fetches the whisper. */
  externalUrl: string;
  ringTimeoutS: number;
  telephony: CallRedirect;
  calls: CallStore;
  clock: Clock;
}

/** The `CallTransfer` of one call, through Twilio. */
export function twilioTransfer(deps: TwilioTransferDeps): CallTransfer {
  const { callSid, calls, clock } = deps;
  return {
    async start({ reason, summary }, live) {
      const twiml = await dialTwiml({
        to: deps.target.number,
        callerId: deps.callerId,
        timeoutS: deps.ringTimeoutS,
        action: `${deps.externalUrl}/transfer-result`,
        whisper: `${deps.externalUrl}/transfer-whisper?call=${encodeURIComponent(callSid)}`,
      });
      const transfer = {
        requested_at: clock.now().toISOString(),
        to: deps.target.number,
        reason,
        summary,
      };
      // Before Twilio acts: its result may reach any instance, and this one may stop meanwhile.
      await calls.update(callSid, { transfer: { ...transfer, result: "pending" }, released: true });
      calls.appendEvent(callSid, { kind: "transfer", data: { stage: "dialling", reason } });
      try {
        await deps.telephony.redirect(callSid, twiml);
      } catch (error) {
        const message = (error as Error).message;
        await calls.update(callSid, {
          transfer: { ...transfer, result: "failed", result_at: clock.now().toISOString() },
        });
        // The conversation goes on here and this process holds the call again; unless the
        // caller hung up meanwhile (why Twilio refused).
        if (live()) await calls.started(callSid);
        else
          await calls.endIfOpen(
            callSid,
            "caller_hung_up",
            "the caller hung up while the transfer was being started",
          );
        calls.appendEvent(callSid, { kind: "transfer", data: { stage: "failed", error: message } });
        throw error;
      }
    },
  };
}
