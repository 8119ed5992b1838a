/** `POST /leads`, `GET /leads`, `GET /leads/:id`: the people outbound calls follow up on (behind the endpoint secret). */
import { Elysia, t } from "elysia";
import { NotFoundError } from "../errors.ts";
import { DEMO_LEAD } from "../scenarios/insurance-followup/demo-lead.ts";
import { LeadInput, type LeadRepository } from "../store/leads.ts";
import { BEARER_SECURITY, type EndpointGuard, endpointAuth, guardedJson } from "./auth.ts";
import { Nullable, PageQuery, page } from "./models.ts";

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

export function leadRoutes(leads: LeadRepository, guard: EndpointGuard) {
  return new Elysia({ name: "leads" })
    .use(endpointAuth(guard))
    .use(guardedJson(guard))
    .post(
      "/leads",
      ({ body, set }) => {
        set.status = 201;
        return leads.create(body);
      },
      {
        body: t.Composite([LeadInput], { examples: [LEAD_EXAMPLE] }),
        response: { 201: LeadModel },
        detail: { tags: ["Leads"], summary: "Store a lead", security: BEARER_SECURITY },
      },
    )
    .get(
      "/leads",
      ({ query }) => {
        const { limit, offset } = page(query);
        return { leads: leads.list(limit, offset), limit, offset };
      },
      {
        query: t.Object({
          ...PageQuery,
        }),
        response: {
          200: t.Object({ leads: t.Array(LeadModel), limit: t.Number(), offset: t.Number() }),
        },
        detail: { tags: ["Leads"], summary: "List leads, newest first", security: BEARER_SECURITY },
      },
    )
    .get(
      "/leads/:id",
      ({ params }) => {
        const lead = leads.get(params.id);
        if (!lead) throw new NotFoundError(`No lead ${params.id}`);
        return lead;
      },
      {
        params: t.Object({ id: t.String({ minLength: 1, maxLength: 64 }) }),
        response: { 200: LeadModel },
        detail: { tags: ["Leads"], summary: "One lead", security: BEARER_SECURITY },
      },
    );
}
