/**
 * Twilio's voice webhooks, all signature-checked. `POST /incoming-call`: records the call, picks the
 * scenario by the called number, and answers TwiML that opens the media stream with a one-time token
 * (or, over capacity or while draining, a polite busy message and a hang-up); a repeat for a known
 * call is refused (409), so a replayed request can neither steal nor reopen a call. `POST /amd-result`: the
 * answering-machine verdict, stored at once and handed to the live session. `POST /call-status`: the
 * call's progress, and the outcome of calls that never got to a conversation. `POST /stream-status`:
 * the `<Stream statusCallback>` reports; a `stream-error` for a call with no live session ends it.
 */
import { Type } from "@sinclair/typebox";
import { Elysia, t } from "elysia";
import {
  connectStreamTwiml,
  InvalidSignatureError,
  sayAndHangUpTwiml,
  streamStatusUrl,
  streamUrl,
  verifyTwilioSignature,
} from "../adapters/twilio-webhooks.ts";
import type { CallRegistry } from "../call/registry.ts";
import type { Clock } from "../clock.ts";
import { type Config, requireIntegration } from "../config.ts";
import { AppError } from "../errors.ts";
import type { Coordination } from "../fleet/coordination.ts";
import type { Logger } from "../log.ts";
import type { Storage } from "../store/port.ts";
import { limitedBody, readForm, WEBHOOK_BODY_BYTES } from "./body.ts";
import { PRINTABLE } from "./models.ts";
import {
  type ErrorCase,
  Errors,
  fromError,
  invalid,
  requestBody,
  responses,
  type Success,
  twilioWebhook,
} from "./openapi.ts";
import { validator } from "./validate.ts";

export const BUSY_MESSAGE =
  "We're sorry, all of our lines are busy right now. Please call again in a few minutes. Goodbye.";

/** Generous time to say `text` (Twilio's `<Say>` speaks about 15 characters a second). */
const spokenMs = (text: string | undefined) => (text?.length ?? 0) * 100;

/** A second `/incoming-call` for a call the service already knows (a replay, or a misconfiguration). */
export class DuplicateWebhookError extends AppError {
  constructor(callSid: string) {
    super(
      409,
      "DUPLICATE_CALL",
      `Call ${callSid} was already answered; its webhook is not repeated`,
    );
  }
}

/** A field Twilio fills with a number, a SID or a word: never a control character. */
const printable = (description: string, options: { minLength?: number; maxLength?: number } = {}) =>
  Type.String({ maxLength: 64, ...options, pattern: PRINTABLE, description });
const CALL_STATUS = Type.String({
  pattern: "^[a-z-]{1,32}$",
  description: "A Twilio call status, e.g. ringing or completed",
});

const IncomingCall = Type.Object({
  CallSid: Type.String({ pattern: "^CA[0-9a-zA-Z]{2,64}$" }),
  From: printable("The caller's number", { minLength: 1 }),
  To: printable("The called number", { minLength: 1 }),
  CallStatus: Type.Optional(CALL_STATUS),
});
const parseIncomingCall = validator(IncomingCall, "body");

const AmdResult = Type.Object({
  CallSid: printable("A call SID", { minLength: 2 }),
  AnsweredBy: Type.String({
    pattern: "^[a-z_]{1,64}$",
    description: "Twilio's AnsweredBy, e.g. human or machine_end_beep",
  }),
  MachineDetectionDuration: Type.Optional(Type.String({ pattern: "^\\d+$" })),
});
const parseAmdResult = validator(AmdResult, "body");

const CallStatus = Type.Object({
  CallSid: printable("A call SID", { minLength: 2 }),
  CallStatus: CALL_STATUS,
  CallDuration: Type.Optional(Type.String()),
});
const parseCallStatus = validator(CallStatus, "body");

/** Twilio's `<Stream statusCallback>` post (TwiML Voice: <Stream>, "Status callback" parameters). */
const StreamStatus = Type.Object({
  CallSid: Type.String({ pattern: "^CA[0-9a-zA-Z]{2,64}$" }),
  StreamSid: Type.String({ pattern: "^MZ[0-9a-zA-Z]{2,64}$" }),
  StreamEvent: Type.Union([
    Type.Literal("stream-started"),
    Type.Literal("stream-stopped"),
    Type.Literal("stream-error"),
  ]),
  StreamError: Type.Optional(Type.String({ maxLength: 2048 })),
  StreamName: Type.Optional(Type.String({ maxLength: 256 })),
  AccountSid: Type.Optional(Type.String({ maxLength: 64 })),
  Timestamp: Type.Optional(Type.String({ maxLength: 64 })),
});
const parseStreamStatus = validator(StreamStatus, "body");

/** Twilio's call statuses in the order a call goes through them; callbacks may arrive out of order. */
const STATUS_RANK: Record<string, number> = {
  queued: 0,
  initiated: 1,
  ringing: 2,
  "in-progress": 3,
};
const TERMINAL = new Set(["completed", "busy", "failed", "no-answer", "canceled"]);
const rank = (status: string) => STATUS_RANK[status] ?? (TERMINAL.has(status) ? 4 : -1);

/** Outcome of a call that ended before any conversation. */
const UNANSWERED_OUTCOMES: Record<string, string> = {
  busy: "busy",
  "no-answer": "no_answer",
  failed: "failed",
  // Cancelled before anyone answered (the detail says so): the attempt failed.
  canceled: "failed",
};

export interface TwilioWebhookDeps {
  config: Config;
  store: Storage;
  calls: CallRegistry;
  coordination: Coordination;
  /** The time on the records (tests move it by hand). */
  clock: Clock;
  logger: Logger;
}

export const twiml = (xml: string) =>
  new Response(xml, { headers: { "content-type": "text/xml; charset=utf-8" } });

/** Form fields as Twilio posts them (application/x-www-form-urlencoded). */
export const TwilioForm = t.Record(t.String(), t.String());

const FORM = "application/x-www-form-urlencoded";
export const EXAMPLE_CALL_SID = "CA0123456789abcdef0123456789abcdef";

/**
 * The documentation of a webhook: the fields it reads (checked once the signature is), an example
 * post, and every answer it can give.
 */
export function webhookDoc(
  fields: Parameters<typeof requestBody>[0]["schema"],
  example: Record<string, string>,
  success: Record<number, Success>,
  ...errors: ErrorCase[]
) {
  return {
    ...twilioWebhook,
    ...requestBody({
      mediaType: FORM,
      schema: fields,
      examples: { twilio: { summary: "As Twilio posts it", value: example } },
    }),
    responses: responses(
      success,
      ...errors,
      fromError(
        "X-Twilio-Signature is missing or does not match (every request not from Twilio)",
        new InvalidSignatureError("Missing X-Twilio-Signature"),
      ),
      Errors.tooLarge(WEBHOOK_BODY_BYTES),
      Errors.mediaType(FORM),
      Errors.twilioNotConfigured,
    ),
  };
}

const NO_CONTENT = { 204: { description: "Recorded" } };

export function twilioWebhookRoutes({
  config,
  store,
  calls,
  coordination,
  clock,
  logger,
}: TwilioWebhookDeps) {
  return new Elysia({ name: "twilio-webhooks" })
    .use(limitedBody((request) => readForm(request, WEBHOOK_BODY_BYTES)))
    .post(
      "/amd-result",
      async ({ body, request, set }) => {
        requireIntegration(config, "twilio");
        await verifyTwilioSignature(config, request, body);
        const result = parseAmdResult(body);
        const detectionMs = result.MachineDetectionDuration
          ? Number(result.MachineDetectionDuration)
          : undefined;
        // A verdict means the call was answered, whether or not it is recorded yet.
        await coordination.tokenAnswered(result.CallSid);
        // Recorded first: a stream that opens later (on any instance) reads it from the record.
        if (await store.calls.update(result.CallSid, { answered_by: result.AnsweredBy })) {
          store.calls.appendEvent(result.CallSid, {
            kind: "amd",
            data: {
              answered_by: result.AnsweredBy,
              ...(detectionMs === undefined ? {} : { detection_ms: detectionMs }),
            },
          });
          // A stream already live, on this instance or another, hears it from its holder.
          const holder = await coordination.holder(result.CallSid);
          if (holder) {
            await coordination.send(holder, {
              kind: "verdict",
              callSid: result.CallSid,
              answeredBy: result.AnsweredBy,
            });
          }
        } else logger.warn("AMD result for an unknown call", { callSid: result.CallSid });
        set.status = 204;
      },
      {
        body: TwilioForm,
        detail: {
          tags: ["Twilio webhooks"],
          summary: "Async answering-machine detection result",
          description: "Set as AsyncAmdStatusCallback by /make-call. Signed by Twilio.",
          ...webhookDoc(
            AmdResult,
            { CallSid: EXAMPLE_CALL_SID, AnsweredBy: "human", MachineDetectionDuration: "2150" },
            NO_CONTENT,
            invalid("body.AnsweredBy", "Expected required property"),
          ),
        },
      },
    )
    .post(
      "/call-status",
      async ({ body, request, set }) => {
        requireIntegration(config, "twilio");
        await verifyTwilioSignature(config, request, body);
        const update = parseCallStatus(body);
        // Also for a call not recorded yet: Twilio may report on it before /make-call has stored it.
        if (update.CallStatus === "in-progress") await coordination.tokenAnswered(update.CallSid);
        if (TERMINAL.has(update.CallStatus)) await coordination.revokeToken(update.CallSid);
        const call = await store.calls.get(update.CallSid);
        set.status = 204;
        if (!call) {
          logger.warn("status for an unknown call", {
            callSid: update.CallSid,
            status: update.CallStatus,
          });
          return;
        }
        if (rank(update.CallStatus) < rank(call.status) || TERMINAL.has(call.status)) return;
        const now = clock.now().toISOString();
        const terminal = TERMINAL.has(update.CallStatus);
        /** The instance whose session has this call live, if any (this one or another). */
        const holder = terminal ? await coordination.holder(update.CallSid) : undefined;
        const unanswered = UNANSWERED_OUTCOMES[update.CallStatus];
        await store.calls.update(update.CallSid, {
          status: update.CallStatus,
          ...(update.CallStatus === "in-progress" && !call.answered_at ? { answered_at: now } : {}),
          ...(terminal && !call.ended_at ? { ended_at: now } : {}),
          ...(unanswered && !call.outcome
            ? { outcome: unanswered, outcome_detail: `Twilio: ${update.CallStatus}` }
            : {}),
          // Completed with no conversation here (e.g. the caller hung up during the disclosure):
          // its end reason, and with it an outcome.
          // A transfer's end reason is its result's to say (/transfer-result).
          ...(update.CallStatus === "completed" &&
          !call.ended_at &&
          !holder &&
          call.transfer?.result !== "pending"
            ? { end_reason: "caller_hung_up" }
            : {}),
        });
        // The call is over on Twilio's side: its session ends too, wherever it runs (its stream's
        // close may come later, or not at all).
        if (holder) {
          await coordination.send(holder, {
            kind: "ended",
            callSid: update.CallSid,
            status: update.CallStatus,
          });
        }
        store.calls.appendEvent(update.CallSid, {
          kind: "status",
          data: { status: update.CallStatus },
        });
      },
      {
        body: TwilioForm,
        detail: {
          tags: ["Twilio webhooks"],
          summary: "Call status callback",
          description:
            "initiated, ringing, answered (in-progress), completed, busy, no-answer, failed, canceled. Signed by Twilio.",
          ...webhookDoc(
            CallStatus,
            { CallSid: EXAMPLE_CALL_SID, CallStatus: "completed", CallDuration: "74" },
            NO_CONTENT,
            invalid("body.CallStatus", "Expected required property"),
          ),
        },
      },
    )
    .post(
      "/stream-status",
      async ({ body, request, set }) => {
        requireIntegration(config, "twilio");
        await verifyTwilioSignature(config, request, body);
        const report = parseStreamStatus(body);
        const callSid = report.CallSid;
        set.status = 204;
        if (!(await store.calls.get(callSid))) {
          logger.warn("stream status for an unknown call", {
            callSid,
            streamSid: report.StreamSid,
            event: report.StreamEvent,
          });
          return;
        }
        const failed = report.StreamEvent === "stream-error";
        const reason =
          report.StreamError?.trim() || "Twilio reported a stream error with no reason";
        store.calls.appendEvent(callSid, {
          kind: "stream",
          data: {
            event: report.StreamEvent,
            stream_sid: report.StreamSid,
            ...(failed ? { error: reason } : {}),
          },
        });
        if (!failed) return;
        // Twilio's only report of a stream it could not open (or lost): the call is over on its side.
        store.calls.appendEvent(callSid, {
          kind: "error",
          data: { source: "twilio", message: reason },
        });
        logger.warn("Twilio reported a media stream error", {
          callSid,
          streamSid: report.StreamSid,
          error: reason,
        });
        // A live session ends itself when its socket closes; a call still waiting for its stream
        // would otherwise hold its record open and its capacity slot until the token expired.
        if (await coordination.holder(callSid)) return;
        await coordination.revokeToken(callSid);
        if (await store.calls.endIfOpen(callSid, "stream_failed", reason))
          logger.warn("call ended: Twilio could not open its media stream", { callSid });
      },
      {
        body: TwilioForm,
        detail: {
          tags: ["Twilio webhooks"],
          summary: "Media stream status callback",
          description:
            "Set as the <Stream statusCallback> of every <Connect><Stream> the service issues: stream-started, stream-stopped, stream-error (with StreamError). A stream-error for a call with no live session ends its record (stream_failed). Signed by Twilio.",
          ...webhookDoc(
            StreamStatus,
            {
              CallSid: EXAMPLE_CALL_SID,
              StreamSid: "MZ0123456789abcdef0123456789abcdef",
              StreamEvent: "stream-started",
            },
            NO_CONTENT,
            invalid("body.StreamSid", "Expected required property"),
          ),
        },
      },
    )
    .post(
      "/incoming-call",
      async ({ body, request }) => {
        requireIntegration(config, "twilio");
        await verifyTwilioSignature(config, request, body);
        const call = parseIncomingCall(body);
        const scenario = config.calls.inboundScenarios.get(call.To) ?? config.calls.defaultScenario;
        // One webhook per call: a replay must neither replace the token Twilio was given nor
        // reopen a call that has streamed or ended.
        const refuseRepeat = async (status: string) => {
          logger.warn("repeated /incoming-call refused", {
            callSid: call.CallSid,
            status,
            waitingForStream: await coordination.tokenPending(call.CallSid),
          });
          return new DuplicateWebhookError(call.CallSid);
        };
        const existing = await store.calls.get(call.CallSid);
        if (existing) throw await refuseRepeat(existing.status);
        try {
          await store.calls.create({
            sid: call.CallSid,
            direction: "inbound",
            from_number: call.From,
            to_number: call.To,
            scenario,
            status: call.CallStatus ?? "ringing",
          });
        } catch (error) {
          // The same webhook twice at once: the database lets one of them create the record.
          const raced = await store.calls.get(call.CallSid);
          if (raced) throw await refuseRepeat(raced.status);
          throw error;
        }
        const grant = { scenario, direction: "inbound" as const, from: call.From, to: call.To };
        // The capacity check and the token are one step, on whichever instance: concurrent calls
        // cannot together pass the limit.
        // A draining instance of a fleet still answers: another instance takes the stream. Alone,
        // it turns the call away.
        const closed = calls.draining && coordination.kind === "local";
        const token = closed
          ? undefined
          : await coordination.issueToken(
              call.CallSid,
              grant,
              { answered: true, extraMs: spokenMs(config.calls.inboundDisclosure) },
              config.calls.maxConcurrent,
            );
        if (!token) {
          await store.calls.update(call.CallSid, {
            status: "completed",
            outcome: "busy",
            outcome_detail: closed
              ? "turned away: the service is shutting down"
              : "turned away: every line is in use",
            end_reason: closed ? "service_shutdown" : "over_capacity",
            ended_at: clock.now().toISOString(),
          });
          logger.warn("inbound call turned away", {
            callSid: call.CallSid,
            draining: closed,
            live: calls.size,
          });
          return twiml(await sayAndHangUpTwiml(BUSY_MESSAGE));
        }
        logger.info("inbound call", { callSid: call.CallSid, scenario });
        return twiml(
          await connectStreamTwiml({
            url: streamUrl(config.server.externalUrl ?? ""),
            statusCallback: streamStatusUrl(config.server.externalUrl ?? ""),
            parameters: { token },
            say: config.calls.inboundDisclosure,
          }),
        );
      },
      {
        body: TwilioForm,
        detail: {
          tags: ["Twilio webhooks"],
          summary: "Twilio voice webhook for inbound calls",
          description:
            "Point a Twilio number's voice webhook here (POST). Requires a valid X-Twilio-Signature over SERVER_EXTERNAL_URL + /incoming-call. Answers TwiML.",
          ...webhookDoc(
            IncomingCall,
            {
              CallSid: EXAMPLE_CALL_SID,
              From: "+15557654321",
              To: "+15550001111",
              CallStatus: "ringing",
            },
            {
              200: {
                description:
                  "TwiML: <Connect><Stream> to /twilio with a one-time token, or, over capacity or while shutting down, a busy message and a hang-up",
                schema: t.String(),
                mediaType: "text/xml",
              },
            },
            invalid("body.From", "Expected required property"),
            fromError(
              "A repeat for a call the service already answered (a replay)",
              new DuplicateWebhookError(EXAMPLE_CALL_SID),
            ),
          ),
        },
      },
    );
}
