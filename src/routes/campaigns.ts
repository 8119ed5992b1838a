/**
 * Campaigns over HTTP, behind the endpoint secret: `POST /campaigns` (a list of leads, or every new
 * lead, with calling hours, limits and a retry policy), `GET /campaigns`, `GET /campaigns/{id}`
 * (its settings, counts by state and outcome, the next attempts), `GET /campaigns/{id}/leads`
 * (each lead's attempts and their calls), and `POST /campaigns/{id}/pause`, `/resume`, `/cancel`.
 * The dialer (`campaigns/dialer.ts`) does the calling.
 */
import { Elysia, t } from "elysia";
import { DEFAULT_RETRY, WEEKDAYS } from "../campaigns/schedule.ts";
import type { Clock } from "../clock.ts";
import { type Config, requireIntegration } from "../config.ts";
import { AppError, NotFoundError } from "../errors.ts";
import { E164_PATTERN } from "../phone-number.ts";
import type { Campaign, CampaignLeadInput, CampaignState } from "../store/campaigns.ts";
import { PLAIN_TEXT } from "../store/leads.ts";
import type { CampaignStore, LeadStore } from "../store/port.ts";
import { BEARER_SECURITY, type EndpointGuard, endpointAuth, guardedJson } from "./auth.ts";
import { MAX_BODY_BYTES } from "./body.ts";
import { OUTBOUND_SCENARIO } from "./make-call.ts";
import { PageQuery, PRINTABLE, page } from "./models.ts";
import { Errors, fromError, guardedErrors, invalid, requestBody, responses } from "./openapi.ts";
import { BadRequestError } from "./validate.ts";

/** Leads one campaign may hold. */
export const MAX_CAMPAIGN_LEADS = 10_000;
const TIME = "^(?:[01]\\d|2[0-3]):[0-5]\\d$";
/** A retry waits at most 30 days. */
const MAX_RETRY_MINUTES = 43_200;

const minutes = (name: string, description: string) =>
  t.Optional(
    t.Integer({
      minimum: 1,
      maximum: MAX_RETRY_MINUTES,
      description,
      error: `body.retry_after_minutes.${name}: expected minutes, an integer from 1 to ${MAX_RETRY_MINUTES}`,
    }),
  );
/** A limit from 1 to `maximum`, named in its error (Elysia's own says only "Expected union value"). */
const limit = (name: string, maximum: number, fallback: number, description: string) =>
  t.Optional(
    t.Integer({
      minimum: 1,
      maximum,
      default: fallback,
      description,
      error: `body.${name}: expected an integer from 1 to ${maximum}`,
    }),
  );

export const CampaignRequest = t.Object(
  {
    name: t.String({
      minLength: 1,
      maxLength: 100,
      pattern: PLAIN_TEXT,
      description: "One line of plain text, up to 100 characters",
    }),
    scenario: t.Optional(
      t.Literal(OUTBOUND_SCENARIO, { description: "The outbound scenario (the default)" }),
    ),
    lead_ids: t.Optional(
      t.Array(t.String({ minLength: 1, maxLength: 64, pattern: PRINTABLE }), {
        minItems: 1,
        maxItems: MAX_CAMPAIGN_LEADS,
        description:
          "Stored leads to call (give this or leads); as many as fit in the 64 KB body, about 1,400",
      }),
    ),
    leads: t.Optional(
      t.Literal("all_new", {
        description: "Every lead with a phone number never called and in no campaign",
      }),
    ),
    from: t.Optional(
      t.String({
        pattern: E164_PATTERN,
        description: "Caller ID, a number of the Twilio account (default TWILIO_PHONE_NUMBER)",
      }),
    ),
    timezone: t.String({
      maxLength: 64,
      format: "iana-time-zone",
      description: "An IANA time zone, e.g. America/Chicago (for leads that name none)",
    }),
    window: t.Object(
      {
        days: t.Array(
          t.Union(
            WEEKDAYS.map((day) => t.Literal(day)),
            { error: `body.window.days: expected days of ${WEEKDAYS.join(", ")}` },
          ),
          {
            minItems: 1,
            maxItems: 7,
            uniqueItems: true,
            error: `body.window.days: expected one to seven of ${WEEKDAYS.join(", ")}, each once`,
          },
        ),
        start: t.String({
          pattern: TIME,
          description: "A time of day, HH:MM (24-hour), local to the lead",
        }),
        end: t.String({
          pattern: TIME,
          description: "A time of day, HH:MM (24-hour), after start, the same day",
        }),
      },
      { additionalProperties: false, description: "Calling hours in each lead's own zone" },
    ),
    max_concurrent: limit("max_concurrent", 1000, 5, "Calls in progress at once"),
    max_per_minute: limit("max_per_minute", 1000, 10, "New calls in any 60 seconds"),
    max_attempts: limit("max_attempts", 20, 3, "Tries per lead"),
    retry_after_minutes: t.Optional(
      t.Object(
        {
          no_answer: minutes("no_answer", "Default 120"),
          busy: minutes("busy", "Default 30"),
          failed: minutes("failed", "Default 60; also every other outcome that is not final"),
          no_answer_voicemail_left: minutes("no_answer_voicemail_left", "Default 1440"),
          callback_requested: minutes(
            "callback_requested",
            "Asked to be called back, no time given. Default 1440",
          ),
        },
        { additionalProperties: false },
      ),
    ),
    retry_no_decision: t.Optional(
      t.Boolean({ description: "Call again after no_decision (final by default)" }),
    ),
  },
  { additionalProperties: false },
);

const EXAMPLE = {
  name: "December leads",
  scenario: OUTBOUND_SCENARIO,
  leads: "all_new",
  from: "+15005550006",
  timezone: "America/Chicago",
  window: { days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "20:00" },
  max_concurrent: 5,
  max_per_minute: 10,
  max_attempts: 3,
  retry_after_minutes: { no_answer: 120, busy: 30, failed: 60, no_answer_voicemail_left: 1440 },
};

/** A campaign that cannot move the way asked (cancelled, completed, not paused). */
export class CampaignStateError extends AppError {
  constructor(campaign: Campaign, action: string) {
    super(
      409,
      "CAMPAIGN_STATE",
      `Campaign ${campaign.id} is ${campaign.state}: it cannot ${action}`,
    );
  }
}

export type CampaignMove = "pause" | "resume" | "cancel";

/** Each move: the states it may start from, the state it leads to. */
export const TRANSITIONS: Record<
  CampaignMove,
  { from: CampaignState[]; to: CampaignState; verb: string }
> = {
  pause: { from: ["active"], to: "paused", verb: "be paused" },
  resume: { from: ["paused"], to: "active", verb: "be resumed" },
  cancel: { from: ["active", "paused"], to: "cancelled", verb: "be cancelled" },
};

const noSuchCampaign = Errors.notFound(
  "campaign",
  "No campaign cmp_0193d5c2-7a10-7cc1-9a37-1f2b3c4d5e6f",
);
export const IdParams = t.Object({ id: t.String({ maxLength: 64, pattern: PRINTABLE }) });

/** The campaign, or a 404. */
export async function campaignOf(campaigns: CampaignStore, id: string): Promise<Campaign> {
  const campaign = await campaigns.get(id);
  if (!campaign) throw new NotFoundError(`No campaign ${id}`);
  return campaign;
}

/** Pauses, resumes or cancels a campaign (the API's and the console's): a 404, or a 409 when its state does not allow it. */
export async function moveCampaign(
  campaigns: CampaignStore,
  id: string,
  action: CampaignMove,
  now: string,
): Promise<Campaign> {
  const { from, to, verb } = TRANSITIONS[action];
  const campaign = await campaignOf(campaigns, id);
  const moved = await campaigns.transition(campaign.id, from, to, now);
  if (!moved) throw new CampaignStateError((await campaigns.get(campaign.id)) ?? campaign, verb);
  return moved;
}

export interface CampaignRouteDeps {
  campaigns: CampaignStore;
  leads: LeadStore;
  guard: EndpointGuard;
  clock: Clock;
  /** Twilio and Deepgram must be configured; TWILIO_PHONE_NUMBER is the default caller ID. */
  config: Config;
}

export function campaignRoutes({ campaigns, leads, guard, clock, config }: CampaignRouteDeps) {
  const found = (id: string) => campaignOf(campaigns, id);
  const transition =
    (action: CampaignMove) =>
    ({ params }: { params: { id: string } }) =>
      moveCampaign(campaigns, params.id, action, clock.now().toISOString());
  const transitionDetail = (action: string, summary: string) => ({
    params: IdParams,
    detail: {
      tags: ["Campaigns"],
      summary,
      security: BEARER_SECURITY,
      responses: responses(
        { 200: { description: "The campaign now" } },
        noSuchCampaign,
        fromError(
          `The campaign cannot ${action} from its state`,
          new CampaignStateError(
            { id: "cmp_0193d5c2-7a10-7cc1-9a37-1f2b3c4d5e6f", state: "completed" } as Campaign,
            `be ${action}`,
          ),
        ),
        ...guardedErrors(true),
      ),
    },
  });

  const data = new Elysia({ name: "campaign-data" })
    .use(endpointAuth(guard))
    .use(guardedJson(guard))
    .post(
      "/campaigns",
      async ({ body, set }) => {
        if ((body.lead_ids === undefined) === (body.leads === undefined))
          throw new BadRequestError("body.lead_ids: give either lead_ids or leads, not both");
        if (body.window.start >= body.window.end)
          throw new BadRequestError("body.window.end: must be after window.start, the same day");
        // Campaigns are dialled by a service that can place calls; none would start otherwise.
        requireIntegration(config, "twilio");
        requireIntegration(config, "deepgram");
        const from = body.from ?? config.twilio.phoneNumber ?? "";
        const skipped: { lead_id: string; reason: string }[] = [];
        let chosen: CampaignLeadInput[];
        if (body.lead_ids) {
          chosen = [];
          const busy = await campaigns.busyLeads(body.lead_ids);
          for (const id of new Set(body.lead_ids)) {
            const lead = await leads.get(id);
            const other = busy.get(id);
            if (!lead) skipped.push({ lead_id: id, reason: "no such lead" });
            else if (!lead.phone)
              skipped.push({ lead_id: id, reason: "the lead has no phone number" });
            else if (other)
              skipped.push({ lead_id: id, reason: `still to be called by campaign ${other}` });
            else chosen.push({ lead_id: id, phone: lead.phone, timezone: lead.timezone ?? "" });
          }
        } else {
          chosen = await campaigns.newLeads(MAX_CAMPAIGN_LEADS);
        }
        if (chosen.length === 0)
          throw new BadRequestError(
            `body.${body.lead_ids ? "lead_ids" : "leads"}: no lead to call${skipped[0] ? ` (${skipped[0].lead_id}: ${skipped[0].reason})` : ""}`,
          );
        const created = await campaigns.create(
          {
            name: body.name,
            scenario: body.scenario ?? OUTBOUND_SCENARIO,
            from,
            timezone: body.timezone,
            window: body.window,
            max_concurrent: body.max_concurrent ?? 5,
            max_per_minute: body.max_per_minute ?? 10,
            max_attempts: body.max_attempts ?? 3,
            retry_after_minutes: { ...DEFAULT_RETRY, ...body.retry_after_minutes },
            retry_no_decision: body.retry_no_decision ?? false,
          },
          chosen.map((lead) => ({ ...lead, timezone: lead.timezone || body.timezone })),
          clock.now().toISOString(),
        );
        set.status = 201;
        if (!created)
          throw new BadRequestError(
            `body.${body.lead_ids ? "lead_ids" : "leads"}: no lead to call (their numbers are being called by another campaign's leads)`,
          );
        for (const id of created.conflicts)
          skipped.push({
            lead_id: id,
            reason: "its number is being called for another lead (here or in another campaign)",
          });
        return {
          campaign: created.campaign,
          leads: chosen.length - created.conflicts.length,
          skipped,
        };
      },
      {
        body: CampaignRequest,
        detail: {
          tags: ["Campaigns"],
          summary: "Start a campaign over a list of leads",
          description:
            "The dialer calls each lead inside `window` in the lead's own `timezone` (the campaign's when the lead names none), never above `max_concurrent` calls or `max_per_minute` new calls, leaving CAMPAIGN_INBOUND_HEADROOM calls free for inbound. A lead is tried again after `retry_after_minutes` for what happened, up to `max_attempts`; appointment_booked, not_interested, already_insured, wrong_person, do_not_call and no_decision (unless `retry_no_decision`) end its part; a callback the lead asked for is placed at that time. Leads that cannot be called come back in `skipped`.",
          security: BEARER_SECURITY,
          ...requestBody({
            mediaType: "application/json",
            examples: {
              all_new: { summary: "Every new lead", value: EXAMPLE },
              chosen: {
                summary: "Chosen leads",
                value: {
                  ...EXAMPLE,
                  leads: undefined,
                  lead_ids: ["lead_0193d5c2-7a10-7cc1-9a37-1f2b3c4d5e6f"],
                },
              },
            },
          }),
          responses: responses(
            { 201: { description: "The campaign, how many leads it holds, and those skipped" } },
            invalid("body.window.end", "must be after window.start, the same day"),
            invalid("body.lead_ids", "give either lead_ids or leads, not both"),
            Errors.notJson,
            Errors.tooLarge(MAX_BODY_BYTES),
            Errors.mediaType("application/json"),
            Errors.twilioNotConfigured,
            Errors.deepgramNotConfigured,
            ...guardedErrors(true),
          ),
        },
      },
    )
    .get(
      "/campaigns",
      async ({ query }) => {
        const { limit, offset } = page(query);
        return { campaigns: await campaigns.list(limit, offset), limit, offset };
      },
      {
        query: t.Object(PageQuery),
        detail: {
          tags: ["Campaigns"],
          summary: "Campaigns, newest first",
          security: BEARER_SECURITY,
          responses: responses(
            { 200: { description: "A page of campaigns" } },
            ...guardedErrors(false),
          ),
        },
      },
    )
    .get(
      "/campaigns/:id",
      async ({ params }) => {
        const campaign = await found(params.id);
        return { ...campaign, progress: await campaigns.summary(campaign.id) };
      },
      {
        params: IdParams,
        detail: {
          tags: ["Campaigns"],
          summary: "A campaign: its settings, counts by state and outcome, the next attempts",
          security: BEARER_SECURITY,
          responses: responses(
            { 200: { description: "The campaign and its progress" } },
            noSuchCampaign,
            ...guardedErrors(false),
          ),
        },
      },
    )
    .get(
      "/campaigns/:id/leads",
      async ({ params, query }) => {
        const campaign = await found(params.id);
        const { limit, offset } = page(query);
        return { leads: await campaigns.leads(campaign.id, limit, offset), limit, offset };
      },
      {
        params: IdParams,
        query: t.Object(PageQuery),
        detail: {
          tags: ["Campaigns"],
          summary: "A campaign's leads, each with its attempts and their calls",
          security: BEARER_SECURITY,
          responses: responses(
            { 200: { description: "A page of the campaign's leads, by lead id" } },
            noSuchCampaign,
            ...guardedErrors(false),
          ),
        },
      },
    );

  // Bodiless actions: no JSON to send, the same guard (secret, throttle, cross-site refusal).
  const control = new Elysia({ name: "campaign-control" })
    .use(endpointAuth(guard))
    .post(
      "/campaigns/:id/pause",
      transition("pause"),
      transitionDetail("be paused", "Pause a campaign: no new attempts; calls under way go on"),
    )
    .post(
      "/campaigns/:id/resume",
      transition("resume"),
      transitionDetail("be resumed", "Resume a paused campaign"),
    )
    .post(
      "/campaigns/:id/cancel",
      transition("cancel"),
      transitionDetail(
        "be cancelled",
        "Cancel a campaign: its leads not being called are never called",
      ),
    );
  return new Elysia({ name: "campaigns" }).use(data).use(control);
}
