/** `GET /calls` and `GET /calls/:sid`: call records with their timeline (transcript, functions, barge-ins, outcome). */
import { Elysia, t } from "elysia";
import { NotFoundError } from "../errors.ts";
import { callDetail } from "../ops/call-detail.ts";
import type { Storage } from "../store/port.ts";
import { BEARER_SECURITY, type EndpointGuard, endpointAuth } from "./auth.ts";
import { LeadModel } from "./leads.ts";
import { Nullable, PageQuery, PRINTABLE, page } from "./models.ts";
import { Errors, guardedErrors, invalid, responses } from "./openapi.ts";

export const CallRecordModel = t.Object({
  sid: t.String(),
  direction: t.Union([t.Literal("inbound"), t.Literal("outbound")]),
  from_number: t.String(),
  to_number: t.String(),
  scenario: t.String(),
  lead_id: Nullable(t.String()),
  status: t.String(),
  answered_by: Nullable(t.String()),
  outcome: Nullable(t.String()),
  outcome_detail: Nullable(t.String()),
  end_reason: Nullable(t.String()),
  created_at: t.String(),
  answered_at: Nullable(t.String()),
  ended_at: Nullable(t.String()),
  agent_request_id: Nullable(
    t.String({ description: "Deepgram's request id of the agent session, for support requests" }),
  ),
  caller_audio: Nullable(
    t.Object(
      {
        received: t.Integer({ description: "Caller frames (20 ms) that reached the service" }),
        forwarded: t.Integer({ description: "Of those, frames forwarded to the agent" }),
        held_back: t.Object(
          {
            before_agent_ready: t.Integer(),
            awaiting_verdict: t.Integer(),
            agent_reconnecting: t.Integer(),
            ending: t.Integer(),
          },
          { description: "Frames not forwarded by design, by reason (docs/ARCHITECTURE.md)" },
        ),
      },
      { description: "What became of the caller's audio; set when the call ends" },
    ),
  ),
  message: Nullable(
    t.Object(
      {
        caller_name: t.String(),
        callback_number: Nullable(t.String({ description: "E.164" })),
        message: t.String(),
        taken_at: t.String(),
      },
      { description: "A message the caller left for a person (take_message); personal data" },
    ),
  ),
  transfer: Nullable(
    t.Object(
      {
        requested_at: t.String(),
        to: t.String({ description: "The person's number, E.164; personal data" }),
        reason: t.String(),
        summary: t.String({ description: "The agent's briefing, spoken to the person" }),
        result: t.Union([
          t.Literal("pending"),
          t.Literal("answered"),
          t.Literal("no-answer"),
          t.Literal("busy"),
          t.Literal("failed"),
          t.Literal("canceled"),
        ]),
        talk_seconds: t.Optional(
          t.Integer({ description: "Time the caller talked with the person (Twilio's)" }),
        ),
        result_at: t.Optional(t.String()),
      },
      { description: "The caller's transfer to a person (transfer_call)" },
    ),
  ),
  recording: Nullable(
    t.Object(
      {
        file: t.String({ description: "The file in RECORDINGS_DIR" }),
        duration_ms: t.Integer(),
        bytes: t.Integer(),
        deleted_at: t.Optional(
          t.String({ description: "When RECORDING_RETENTION_DAYS deleted the file" }),
        ),
      },
      {
        description:
          "The call's recording (RECORDING=local), set once its stream has ended; GET /calls/{sid}/recording serves it",
      },
    ),
  ),
});

/** `:sid` of the routes under /calls/{sid}. */
export const CallSidParams = t.Object({
  sid: t.String({
    minLength: 2,
    maxLength: 64,
    pattern: PRINTABLE,
    description: "A call SID, without control characters",
  }),
});

const CallEventModel = t.Object({
  id: t.Number(),
  at: t.String(),
  kind: t.String({
    description:
      "status, amd, stream, transcript, function_call, function_call_cancelled, barge_in, dtmf, transfer, latency, error, ended",
  }),
  data: t.Unknown(),
});

const LatencySummaryModel = t.Object(
  {
    turns: t.Number({ description: "Agent turns with a reported total latency" }),
    p50_ms: t.Number(),
    p95_ms: t.Number(),
  },
  { description: "The agent's LatencyReports: caller's end of speech → first agent audio" },
);

const CallList = t.Object({
  calls: t.Array(CallRecordModel),
  limit: t.Number(),
  offset: t.Number(),
});

const DeliveryModel = t.Object(
  {
    state: t.Union(
      [
        t.Literal("new"),
        t.Literal("pending"),
        t.Literal("delivered"),
        t.Literal("failed"),
        t.Literal("none"),
      ],
      {
        description:
          "new: not looked at yet; pending: being delivered (retried); delivered; failed: given up after an hour; none: no EVENTS_WEBHOOK_URL",
      },
    ),
    attempts: t.Integer(),
    last_status: Nullable(t.Integer({ description: "The receiver's last HTTP status" })),
    last_error: Nullable(t.String()),
    delivered_at: Nullable(t.String()),
    next_attempt_at: Nullable(t.String()),
  },
  { description: "The events webhook's delivery of this call's end (EVENTS_WEBHOOK_URL)" },
);

const CallDetail = t.Object({
  call: CallRecordModel,
  lead: Nullable(LeadModel),
  duration_ms: Nullable(t.Number()),
  latency: Nullable(LatencySummaryModel),
  recording_url: Nullable(
    t.String({ description: "Where GET /calls/{sid}/recording serves the recording" }),
  ),
  delivery: Nullable(DeliveryModel),
  timeline: t.Array(CallEventModel),
});

export function callRoutes(
  store: Pick<Storage, "calls" | "leads" | "endings">,
  guard: EndpointGuard,
  externalUrl: string | undefined,
) {
  const { calls } = store;
  return new Elysia({ name: "calls" })
    .use(endpointAuth(guard))
    .get(
      "/calls",
      async ({ query }) => {
        const { limit, offset } = page(query);
        return {
          calls: await calls.list({
            limit,
            offset,
            ...(query.status ? { status: query.status } : {}),
          }),
          limit,
          offset,
        };
      },
      {
        query: t.Object({
          status: t.Optional(
            t.String({
              maxLength: 32,
              pattern: "^[a-z-]*$",
              description: "A Twilio call status in lower case, e.g. completed",
            }),
          ),
          ...PageQuery,
        }),
        response: { 200: CallList },
        detail: {
          tags: ["Calls"],
          summary: "List calls, newest first",
          security: BEARER_SECURITY,
          responses: responses(
            { 200: { description: "A page of calls", schema: CallList } },
            invalid("query.limit", "expected an integer from 1 to 200"),
            invalid("query.offset", "expected an integer from 0 to 1000000000"),
            invalid("query.status", "Expected string length less or equal to 32"),
            ...guardedErrors(false),
          ),
        },
      },
    )
    .get(
      "/calls/:sid",
      async ({ params }) => {
        const detail = await callDetail(store, params.sid, externalUrl);
        if (!detail) throw new NotFoundError(`No call ${params.sid}`);
        return detail;
      },
      {
        params: CallSidParams,
        response: { 200: CallDetail },
        detail: {
          tags: ["Calls"],
          summary: "One call with its timeline",
          description:
            "Numbers, status, AMD verdict, transcript, function calls with results, barge-ins, errors and why it ended.",
          security: BEARER_SECURITY,
          responses: responses(
            { 200: { description: "The call and its timeline", schema: CallDetail } },
            invalid("params.sid", "Expected string length greater or equal to 2"),
            ...guardedErrors(false),
            Errors.notFound("call", "No call CA0123456789abcdef0123456789abcdef"),
          ),
        },
      },
    );
}
