/** `POST /leads`, `GET /leads`, `GET /leads/:id`: the people outbound calls follow up on (behind the endpoint secret). */
import { Elysia, t } from "elysia";
import { NotFoundError } from "../errors.ts";
import { DEMO_LEAD } from "../scenarios/insurance-followup/demo-lead.ts";
import { LeadInput } from "../store/leads.ts";
import type { LeadStore } from "../store/port.ts";
import { BEARER_SECURITY, type EndpointGuard, endpointAuth, guardedJson } from "./auth.ts";
import { MAX_BODY_BYTES } from "./body.ts";
import { Nullable, PageQuery, PRINTABLE, page } from "./models.ts";
import { Errors, guardedErrors, invalid, requestBody, responses } from "./openapi.ts";

export const LeadModel = t.Object({
  id: t.String(),
  first_name: t.String(),
  last_name: t.String(),
  phone: Nullable(t.String()),
  email: Nullable(t.String()),
  property_address: Nullable(t.String()),
  property_type: Nullable(t.String()),
  year_built: Nullable(t.Number()),
  square_footage: Nullable(t.Number()),
  insurance_status: Nullable(t.String()),
  coverage_start: Nullable(t.String()),
  quote_submitted_at: Nullable(t.String()),
  source: Nullable(t.String()),
  created_at: t.String(),
  updated_at: t.String(),
});

export const LEAD_EXAMPLE = { ...DEMO_LEAD, phone: "+15551234567" };

const LeadList = t.Object({ leads: t.Array(LeadModel), limit: t.Number(), offset: t.Number() });

const noSuchLead = Errors.notFound("lead", "No lead lead_0193d5c2-7a10-7cc1-9a37-1f2b3c4d5e6f");

export function leadRoutes(leads: LeadStore, guard: EndpointGuard) {
  return new Elysia({ name: "leads" })
    .use(endpointAuth(guard))
    .use(guardedJson(guard))
    .post(
      "/leads",
      async ({ body, set }) => {
        set.status = 201;
        return await leads.create(body);
      },
      {
        body: t.Composite([LeadInput], { examples: [LEAD_EXAMPLE] }),
        response: { 201: LeadModel },
        detail: {
          tags: ["Leads"],
          summary: "Store a lead",
          description:
            "Only `first_name` and `last_name` are required; fields the model does not know are dropped. Answers the stored lead with its `id`, for `lead_id` in POST /make-call.",
          security: BEARER_SECURITY,
          ...requestBody({
            mediaType: "application/json",
            examples: {
              complete: { summary: "Every field", value: LEAD_EXAMPLE },
              minimal: {
                summary: "Just the name",
                value: { first_name: "Ada", last_name: "Lovelace" },
              },
            },
          }),
          responses: responses(
            { 201: { description: "The stored lead", schema: LeadModel } },
            invalid("body.first_name", "Expected string"),
            invalid("body.year_built", "Expected integer to be greater or equal to 1600"),
            Errors.notJson,
            ...guardedErrors(true),
            Errors.tooLarge(MAX_BODY_BYTES),
            Errors.mediaType("application/json"),
          ),
        },
      },
    )
    .get(
      "/leads",
      async ({ query }) => {
        const { limit, offset } = page(query);
        return { leads: await leads.list(limit, offset), limit, offset };
      },
      {
        query: t.Object({
          ...PageQuery,
        }),
        response: { 200: LeadList },
        detail: {
          tags: ["Leads"],
          summary: "List leads, newest first",
          security: BEARER_SECURITY,
          responses: responses(
            { 200: { description: "A page of leads", schema: LeadList } },
            invalid("query.limit", "expected an integer from 1 to 200"),
            invalid("query.offset", "expected an integer from 0 to 1000000000"),
            ...guardedErrors(false),
          ),
        },
      },
    )
    .get(
      "/leads/:id",
      async ({ params }) => {
        const lead = await leads.get(params.id);
        if (!lead) throw new NotFoundError(`No lead ${params.id}`);
        return lead;
      },
      {
        params: t.Object({
          id: t.String({
            minLength: 1,
            maxLength: 64,
            pattern: PRINTABLE,
            description: "A lead id, without control characters",
          }),
        }),
        response: { 200: LeadModel },
        detail: {
          tags: ["Leads"],
          summary: "One lead",
          security: BEARER_SECURITY,
          responses: responses(
            { 200: { description: "The lead", schema: LeadModel } },
            invalid("params.id", "Expected string length less or equal to 64"),
            ...guardedErrors(false),
            noSuchLead,
          ),
        },
      },
    );
}
