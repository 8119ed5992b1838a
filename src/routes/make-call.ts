/**
 * `POST /make-call`: places an outbound insurance follow-up. Validates the number and the lead (inline,
 * stored, or the demo lead), checks capacity, and asks Twilio (through the SDK) to dial with inline
 * TwiML that opens the media stream with a one-time token (and reports the stream's life to
 * /stream-status), async AMD (tuned by the MACHINE_DETECTION_* variables) and status callbacks.
 */

import type { Static } from "@sinclair/typebox";
import { Elysia, t } from "elysia";
import { type OutboundCall, TwilioApiError } from "../adapters/twilio-rest.ts";
import { connectStreamTwiml, streamStatusUrl, streamUrl } from "../adapters/twilio-webhooks.ts";
import type { CallRegistry } from "../call/registry.ts";
import { type Config, requireIntegration } from "../config.ts";
import { AppError, CallNotRecordedError, NotFoundError, ShuttingDownError } from "../errors.ts";
import type { Coordination } from "../fleet/coordination.ts";
import type { Logger } from "../log.ts";
import { E164_PATTERN } from "../phone-number.ts";
import { DEMO_LEAD } from "../scenarios/insurance-followup/demo-lead.ts";
import { LeadInput } from "../store/leads.ts";
import type { Storage } from "../store/port.ts";
import { BEARER_SECURITY, type EndpointGuard, endpointAuth, guardedJson } from "./auth.ts";
import { MAX_BODY_BYTES } from "./body.ts";
import { DoNotCallError } from "./dnc.ts";
import { LEAD_EXAMPLE } from "./leads.ts";
import { PRINTABLE } from "./models.ts";
import {
  type ErrorCase,
  Errors,
  fromError,
  guardedErrors,
  invalid,
  requestBody,
  responses,
} from "./openapi.ts";
import { BadRequestError } from "./validate.ts";

export const OUTBOUND_SCENARIO = "insurance-followup";

export class TooManyCallsError extends AppError {
  constructor(limit: number) {
    super(
      429,
      "TOO_MANY_CALLS",
      `The limit of ${limit} concurrent calls is reached (MAX_CONCURRENT_CALLS); try again shortly`,
    );
  }
}

export const MakeCallRequest = t.Object(
  {
    to: t.String({
      pattern: E164_PATTERN,
      description: "Number to call, E.164",
      examples: ["+15551234567"],
    }),
    lead: t.Optional(LeadInput),
    lead_id: t.Optional(
      t.String({
        minLength: 1,
        maxLength: 64,
        pattern: PRINTABLE,
        description: "A lead stored with POST /leads",
      }),
    ),
  },
  {
    additionalProperties: false,
    examples: [
      { to: "+15551234567" },
      { to: "+15551234567", lead: LEAD_EXAMPLE },
      { to: "+15551234567", lead_id: "lead_0193d5c2-7a10-7cc1-9a37-1f2b3c4d5e6f" },
    ],
  },
);

/** The three ways to name the lead, as the reference page's example picker offers them. */
const MAKE_CALL_EXAMPLES = {
  demo: {
    summary: "Demo lead",
    description: "No lead given: the call follows up on the demo lead, Alex Mitchell.",
    value: { to: "+15551234567" },
  },
  inline: {
    summary: "Inline lead",
    description: "The lead is stored with the call; the answer names its `lead_id`.",
    value: { to: "+15551234567", lead: LEAD_EXAMPLE },
  },
  stored: {
    summary: "Stored lead (lead_id)",
    description: "A lead stored earlier with POST /leads.",
    value: { to: "+15551234567", lead_id: "lead_0193d5c2-7a10-7cc1-9a37-1f2b3c4d5e6f" },
  },
};

/** Every way /make-call can fail, beyond the guard's. */
const MAKE_CALL_ERRORS: ErrorCase[] = [
  fromError(
    "The number is on the do-not-call list",
    new DoNotCallError({
      number: "+15551234567",
      reason: "asked not to be called again",
      source: "agent",
      added_at: "2026-12-02T15:04:05.000Z",
    }),
  ),
  invalid("body.to", "expected number to call, E.164"),
  invalid(
    "body.lead_id",
    "give either lead or lead_id, not both",
    "Both `lead` and `lead_id` given",
  ),
  Errors.notJson,
  Errors.notFound("lead", "No lead lead_0193d5c2-7a10-7cc1-9a37-1f2b3c4d5e6f"),
  Errors.tooLarge(MAX_BODY_BYTES),
  Errors.mediaType("application/json"),
  fromError(
    "MAX_CONCURRENT_CALLS calls are live or being placed; try again shortly",
    new TooManyCallsError(10),
  ),
  fromError(
    "Twilio refused the call or could not be reached; the error is Twilio's",
    new TwilioApiError(
      "Twilio refused to place the call: The 'To' number +15551234567 is not a valid phone number.",
    ),
  ),
  Errors.twilioNotConfigured,
  Errors.deepgramNotConfigured,
  Errors.shuttingDown,
  fromError(
    "Twilio placed the call but it could not be recorded (database or Redis); it was hung up",
    new CallNotRecordedError(),
  ),
];

export const MakeCallResponse = t.Object({
  call_sid: t.String(),
  status: t.Literal("initiated"),
  lead_id: t.String(),
});

/** What the route needs from Twilio: placing a call. */
export interface CallPlacer {
  placeCall(call: OutboundCall): Promise<{ sid: string; status: string }>;
  /** Ends a call Twilio is placing (one the service could not record). */
  hangUp(callSid: string): Promise<void>;
}

export interface MakeCallDeps {
  config: Config;
  store: Storage;
  calls: CallRegistry;
  coordination: Coordination;
  twilio: CallPlacer | undefined;
  guard: EndpointGuard;
  logger: Logger;
}

/** What a campaign's dialer adds to a placement. */
export interface PlacementOptions {
  /** The caller ID, instead of TWILIO_PHONE_NUMBER. */
  from?: string;
  /** The calls that may be live at once for this one to go ahead (default MAX_CONCURRENT_CALLS). */
  capacity?: number;
  /** Runs just before Twilio is asked; throwing stops the placement (nothing was dialled). */
  beforeRequest?(): Promise<void>;
}

/**
 * Places an outbound call (what `POST /make-call` and the console's form do): checks, the lead,
 * a one-time stream token within the call limit, Twilio's create with AMD, the record.
 */
export async function placeOutboundCall(
  { config, store, calls, coordination, twilio, logger }: Omit<MakeCallDeps, "guard">,
  body: Static<typeof MakeCallRequest>,
  options: PlacementOptions = {},
): Promise<Static<typeof MakeCallResponse>> {
  requireIntegration(config, "twilio");
  requireIntegration(config, "deepgram");
  if (!twilio) throw new Error("Twilio client missing although configured");
  if (body.lead && body.lead_id)
    throw new BadRequestError("body.lead_id: give either lead or lead_id, not both");
  const listed = await store.dnc.get(body.to);
  if (listed) throw new DoNotCallError(listed);
  const maxConcurrent = options.capacity ?? config.calls.maxConcurrent;
  // A draining instance of a fleet still places calls: another instance takes the stream.
  // Alone, it takes none. Refused early, before a lead is stored; the token is the binding check.
  const closed = () => calls.draining && coordination.kind === "local";
  if (closed()) throw new ShuttingDownError();
  if ((await coordination.load()) >= maxConcurrent) throw new TooManyCallsError(maxConcurrent);
  const stored = body.lead_id ? await store.leads.get(body.lead_id) : undefined;
  if (body.lead_id && !stored) throw new NotFoundError(`No lead ${body.lead_id}`);
  const lead =
    stored ??
    (await store.leads.create({
      ...(body.lead ?? DEMO_LEAD),
      phone: body.lead?.phone ?? body.to,
    }));
  if (closed()) throw new ShuttingDownError();

  const externalUrl = config.server.externalUrl ?? "";
  const from = options.from ?? config.twilio.phoneNumber ?? "";
  const provisional = `pending:${crypto.randomUUID()}`;
  // The capacity check and the token are one step, on whichever instance: concurrent
  // requests cannot together pass the limit.
  const token = await coordination.issueToken(
    provisional,
    {
      scenario: OUTBOUND_SCENARIO,
      direction: "outbound",
      leadId: lead.id,
      from,
      to: body.to,
    },
    { answered: false },
    maxConcurrent,
  );
  if (!token) throw new TooManyCallsError(maxConcurrent);
  let twiml: string;
  try {
    twiml = await connectStreamTwiml({
      url: streamUrl(externalUrl),
      statusCallback: streamStatusUrl(externalUrl),
      parameters: { token },
    });
  } catch (error) {
    await coordination.revokeToken(provisional);
    throw error;
  }
  let placed: { sid: string; status: string };
  try {
    await options.beforeRequest?.();
    placed = await twilio.placeCall({
      to: body.to,
      from,
      twiml,
      statusCallback: `${externalUrl}/call-status`,
      asyncAmdStatusCallback: `${externalUrl}/amd-result`,
      machineDetection: config.twilio.machineDetection,
    });
  } catch (error) {
    await coordination.revokeToken(provisional);
    throw error;
  }
  try {
    await coordination.rekeyToken(provisional, placed.sid);
    await store.calls.ensure({
      sid: placed.sid,
      direction: "outbound",
      from_number: from,
      to_number: body.to,
      scenario: OUTBOUND_SCENARIO,
      lead_id: lead.id,
      status: placed.status,
    });
  } catch (error) {
    // Twilio is dialling a call whose stream could not be admitted or record kept: it is
    // hung up now, so the person is not rung into silence and a retry does not ring twice.
    logger.error("a placed call could not be recorded; hanging it up", {
      callSid: placed.sid,
      error,
    });
    await twilio.hangUp(placed.sid).catch((hangUpError: unknown) =>
      logger.error("could not hang up the call", {
        callSid: placed.sid,
        error: hangUpError,
      }),
    );
    await coordination.revokeToken(provisional).catch(() => {});
    throw new CallNotRecordedError();
  }
  logger.info("outbound call placed", {
    callSid: placed.sid,
    leadId: lead.id,
    pii: { to: body.to },
  });
  return { call_sid: placed.sid, status: "initiated" as const, lead_id: lead.id };
}

export function makeCallRoutes(deps: MakeCallDeps) {
  const { guard } = deps;
  return new Elysia({ name: "make-call" })
    .use(endpointAuth(guard))
    .use(guardedJson(guard))
    .post("/make-call", ({ body }) => placeOutboundCall(deps, body), {
      body: MakeCallRequest,
      response: { 200: MakeCallResponse },
      detail: {
        tags: ["Calls"],
        summary: "Place an outbound follow-up call",
        description:
          "Dials `to` through Twilio with answering-machine detection. A person gets the insurance follow-up agent; a machine gets a personalised voicemail. Give an inline `lead`, the `lead_id` of a stored lead, or neither for the demo lead (Alex Mitchell): pick one under the request body's examples.",
        security: BEARER_SECURITY,
        ...requestBody({ mediaType: "application/json", examples: MAKE_CALL_EXAMPLES }),
        responses: responses(
          { 200: { description: "Twilio is dialling", schema: MakeCallResponse } },
          ...guardedErrors(true),
          ...MAKE_CALL_ERRORS,
        ),
      },
    });
}
