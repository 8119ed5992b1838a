/**
 * The two webhooks of a transfer to a person, both signed by Twilio and answerable by any instance
 * (they read the call record and the coordination, never a live session). `POST /transfer-whisper`
 * (`<Number url>`): the person who answers hears the agent's briefing before the caller is
 * connected. `POST /transfer-result` (`<Dial action>`): how the dial went. Answered: the record ends
 * as `transferred` with the talk time, and the call hangs up when the person does. Not answered
 * (busy, no answer, failed) while the caller is still there: the caller goes back to the agent on a
 * new stream whose one-time token this answer carries, the one webhook besides /incoming-call and
 * /make-call that issues one; a repeat of the result issues none.
 */
import { Type } from "@sinclair/typebox";
import { Elysia, t } from "elysia";
import {
  connectStreamTwiml,
  hangUpTwiml,
  streamStatusUrl,
  streamUrl,
  verifyTwilioSignature,
  whisperTwiml,
} from "../adapters/twilio-webhooks.ts";
import type { Clock } from "../clock.ts";
import { type Config, requireIntegration } from "../config.ts";
import { AppError } from "../errors.ts";
import type { Coordination } from "../fleet/coordination.ts";
import type { Logger } from "../log.ts";
import type { TransferResult } from "../store/calls.ts";
import type { Storage } from "../store/port.ts";
import { limitedBody, readForm, WEBHOOK_BODY_BYTES } from "./body.ts";
import { fromError, invalid } from "./openapi.ts";
import { EXAMPLE_CALL_SID, TwilioForm, twiml, webhookDoc } from "./twilio-webhooks.ts";
import { validator } from "./validate.ts";

const CALL_SID = Type.String({ pattern: "^CA[0-9a-zA-Z]{2,64}$", description: "A call SID" });

const DIAL_STATUSES = ["completed", "answered", "busy", "no-answer", "failed", "canceled"] as const;

const TransferResultForm = Type.Object({
  CallSid: CALL_SID,
  DialCallStatus: Type.Union(
    DIAL_STATUSES.map((status) => Type.Literal(status)),
    { description: "How the dialled leg went" },
  ),
  DialCallDuration: Type.Optional(
    Type.String({ pattern: "^\\d{1,9}$", description: "Seconds the person and the caller talked" }),
  ),
  CallStatus: Type.Optional(
    Type.String({ pattern: "^[a-z-]{1,32}$", description: "The caller's call, e.g. in-progress" }),
  ),
});
const parseTransferResult = validator(TransferResultForm, "body");

const WhisperQuery = Type.Object({ call: CALL_SID });
const parseWhisperQuery = validator(WhisperQuery, "query");

/** The caller's own call is over: there is no one to put back with the agent. */
const CALL_OVER = new Set(["completed", "busy", "failed", "no-answer", "canceled"]);

/** A second result for a transfer already reported (a replay): no second stream for the call. */
export class TransferAlreadyReportedError extends AppError {
  constructor(callSid: string) {
    super(409, "TRANSFER_ALREADY_REPORTED", `The transfer of call ${callSid} was already reported`);
  }
}

export interface TransferRouteDeps {
  config: Config;
  store: Storage;
  coordination: Coordination;
  clock: Clock;
  logger: Logger;
}

/** What the person hears first: who is calling and why, in the agent's words. */
export const briefing = (summary: string) =>
  `A caller is being transferred to you by the AI assistant. Its summary: ${summary} Connecting you now.`;

const TWIML = {
  200: {
    description: "TwiML",
    schema: t.String(),
    mediaType: "text/xml",
  },
};

export function transferRoutes({ config, store, coordination, clock, logger }: TransferRouteDeps) {
  return new Elysia({ name: "transfer-webhooks" })
    .use(limitedBody((request) => readForm(request, WEBHOOK_BODY_BYTES)))
    .post(
      "/transfer-whisper",
      async ({ body, query, request }) => {
        requireIntegration(config, "twilio");
        await verifyTwilioSignature(config, request, body);
        const { call } = parseWhisperQuery(query);
        const transfer = (await store.calls.get(call))?.transfer;
        if (transfer?.result !== "pending") {
          logger.warn("whisper for a call with no pending transfer", { callSid: call });
          return twiml(await whisperTwiml("A caller is being transferred to you."));
        }
        return twiml(await whisperTwiml(briefing(transfer.summary)));
      },
      {
        body: TwilioForm,
        detail: {
          tags: ["Twilio webhooks"],
          summary: "Transfer whisper: the briefing the person hears",
          description:
            "The <Number url> of a transfer's <Dial> (?call= names the caller's call). Twilio runs it for the person who answers, before the caller is connected: the agent's summary, spoken. Signed by Twilio.",
          ...webhookDoc(
            Type.Object({ CallSid: CALL_SID }),
            { CallSid: "CAfedcba9876543210fedcba9876543210" },
            TWIML,
            invalid("query.call", "Expected required property"),
          ),
        },
      },
    )
    .post(
      "/transfer-result",
      async ({ body, request }) => {
        requireIntegration(config, "twilio");
        await verifyTwilioSignature(config, request, body);
        const report = parseTransferResult(body);
        const callSid = report.CallSid;
        const call = await store.calls.get(callSid);
        if (!call?.transfer) {
          logger.warn("transfer result for a call with no transfer", { callSid });
          return twiml(await hangUpTwiml());
        }
        if (call.transfer.result !== "pending") throw new TransferAlreadyReportedError(callSid);
        const now = clock.now().toISOString();
        const answered =
          report.DialCallStatus === "completed" || report.DialCallStatus === "answered";
        const result: TransferResult = answered
          ? "answered"
          : (report.DialCallStatus as Exclude<TransferResult, "answered" | "pending">);
        const talkSeconds =
          report.DialCallDuration === undefined ? undefined : Number(report.DialCallDuration);
        const transfer = {
          ...call.transfer,
          result,
          result_at: now,
          ...(talkSeconds === undefined ? {} : { talk_seconds: talkSeconds }),
        };
        store.calls.appendEvent(callSid, {
          kind: "transfer",
          data: {
            stage: "result",
            result,
            ...(talkSeconds === undefined ? {} : { talk_seconds: talkSeconds }),
          },
        });
        const callerGone = CALL_OVER.has(report.CallStatus ?? "") || call.ended_at !== null;
        if (answered || callerGone) {
          await store.calls.update(callSid, {
            transfer,
            ...(answered
              ? {
                  outcome: "transferred",
                  outcome_detail: `talked with a person${talkSeconds === undefined ? "" : ` for ${talkSeconds} s`}`,
                }
              : {}),
            // Twilio's final status may have come first (the caller hung up on the person).
            status: "completed",
            ...(call.ended_at ? {} : { ended_at: now }),
            ...(answered || !call.ended_at
              ? { end_reason: answered ? "transferred" : "caller_hung_up" }
              : {}),
          });
          logger.info("transfer over", { callSid, result });
          return twiml(await hangUpTwiml());
        }
        // Back to the agent: a new stream, never refused for capacity (this call held a slot
        // until its handoff and the caller is waiting on the line).
        await store.calls.update(callSid, { transfer });
        const token = await coordination.issueToken(
          callSid,
          {
            scenario: call.scenario,
            direction: call.direction,
            from: call.from_number,
            to: call.to_number,
            ...(call.lead_id ? { leadId: call.lead_id } : {}),
            afterTransfer: result,
          },
          { answered: true },
          Number.MAX_SAFE_INTEGER,
        );
        logger.info("transfer did not connect: back to the agent", { callSid, result });
        return twiml(
          await connectStreamTwiml({
            url: streamUrl(config.server.externalUrl ?? ""),
            statusCallback: streamStatusUrl(config.server.externalUrl ?? ""),
            parameters: { token: token ?? "" },
          }),
        );
      },
      {
        body: TwilioForm,
        detail: {
          tags: ["Twilio webhooks"],
          summary: "Transfer result: how the dial to a person went",
          description:
            "The <Dial action> of a transfer. Answered (completed): the call record ends as transferred, with the talk time (DialCallDuration), and the call hangs up after. No answer, busy or failed while the caller is still on the line: a <Connect><Stream> back to the agent with a new one-time token; the agent offers to take a message. Signed by Twilio.",
          ...webhookDoc(
            TransferResultForm,
            {
              CallSid: EXAMPLE_CALL_SID,
              DialCallStatus: "no-answer",
              DialCallSid: "CAfedcba9876543210fedcba9876543210",
              CallStatus: "in-progress",
            },
            TWIML,
            invalid("body.DialCallStatus", "Expected required property"),
            fromError(
              "A repeat of a transfer's result (a replay): no new stream is issued",
              new TransferAlreadyReportedError(EXAMPLE_CALL_SID),
            ),
          ),
        },
      },
    );
}
