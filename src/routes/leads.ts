/** `POST /leads`, `GET /leads`, `GET /leads/:id`: the people outbound calls follow up on (behind the endpoint secret). */

import { Value } from "@sinclair/typebox/value";
import { Elysia, t } from "elysia";
import { NotFoundError } from "../errors.ts";
import { DEMO_LEAD } from "../scenarios/insurance-followup/demo-lead.ts";
import { reasonOf } from "../schema-errors.ts";
import { LeadInput } from "../store/leads.ts";
import type { LeadStore } from "../store/port.ts";
import { BEARER_SECURITY, type EndpointGuard, endpointAuth, guardedJson } from "./auth.ts";
import { csvRows, limitedBody, MAX_BODY_BYTES, readJsonOrCsv } from "./body.ts";
import { Nullable, PageQuery, PRINTABLE, page } from "./models.ts";
import { Errors, guardedErrors, invalid, requestBody, responses } from "./openapi.ts";
import { BadRequestError } from "./validate.ts";

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
  timezone: Nullable(t.String({ description: "IANA time zone" })),
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

/** Rows one import may carry (the body is at most MAX_BODY_BYTES: split bigger files). */
const MAX_IMPORT_ROWS = 5_000;

const ImportResult = t.Object({
  stored: t.Array(
    t.Object({ row: t.Integer({ description: "1-based, as given" }), id: t.String() }),
  ),
  duplicates: t.Array(
    t.Object({ row: t.Integer(), phone: t.String({ description: "Already a lead's" }) }),
  ),
  rejected: t.Array(t.Object({ row: t.Integer(), field: t.String(), reason: t.String() })),
});

/** A row as LeadInput, or the first problem with it (its field and why). */
function leadOf(raw: unknown): { lead: LeadInput } | { field: string; reason: string } {
  // CSV cells are text: numbers converted, empty cells left out.
  const cleaned =
    typeof raw === "object" && raw !== null && !Array.isArray(raw)
      ? Object.fromEntries(
          Object.entries(raw).filter(([, value]) => value !== "" && value !== null),
        )
      : raw;
  const value = Value.Convert(LeadInput, cleaned);
  const first = Value.Errors(LeadInput, value).First();
  if (!first) return { lead: value as LeadInput };
  return {
    field: first.path.replace(/^\//, "").replaceAll("/", ".") || "row",
    reason: reasonOf(first),
  };
}

/**
 * `POST /leads/import`: many leads at once, a JSON array or CSV with a header row naming LeadInput's
 * fields. Each row is checked on its own: bad rows are reported with their field and reason, a row
 * whose phone is already a lead's is reported as a duplicate and not stored, the rest are stored
 * together.
 */
export function leadImportRoutes(leads: LeadStore, guard: EndpointGuard) {
  return new Elysia({ name: "lead-import" })
    .use(endpointAuth(guard))
    .use(
      limitedBody(
        (request) => readJsonOrCsv(request, MAX_BODY_BYTES),
        ({ request, server }) => guard.authorize(request, server),
      ),
    )
    .post(
      "/leads/import",
      async ({ body }) => {
        let rows: unknown[];
        if (typeof body === "object" && body !== null && "csv" in body) {
          const parsed = await csvRows(String((body as { csv: unknown }).csv), MAX_IMPORT_ROWS);
          if (!parsed.fields.includes("first_name") || !parsed.fields.includes("last_name"))
            throw new BadRequestError(
              "body: the CSV needs a header row naming at least first_name and last_name",
            );
          rows = parsed.rows;
        } else if (Array.isArray(body)) {
          if (body.length > MAX_IMPORT_ROWS)
            throw new BadRequestError(`body: at most ${MAX_IMPORT_ROWS} rows`);
          rows = body;
        } else {
          throw new BadRequestError("body: expected a JSON array of leads, or text/csv");
        }
        const rejected: { row: number; field: string; reason: string }[] = [];
        const valid: { row: number; lead: LeadInput }[] = [];
        rows.forEach((raw, index) => {
          const checked = leadOf(raw);
          if ("lead" in checked) valid.push({ row: index + 1, lead: checked.lead });
          else rejected.push({ row: index + 1, ...checked });
        });
        const { stored, duplicates } = await leads.importMany(valid.map(({ lead }) => lead));
        const duplicated = new Set(duplicates);
        const storedRows = valid.filter((_, index) => !duplicated.has(index));
        return {
          stored: storedRows.map(({ row }, index) => ({ row, id: stored[index]?.id ?? "" })),
          duplicates: duplicates.map((index) => ({
            row: valid[index]?.row ?? 0,
            phone: valid[index]?.lead.phone ?? "",
          })),
          rejected,
        };
      },
      {
        detail: {
          tags: ["Leads"],
          summary: "Import many leads (JSON array or CSV)",
          description:
            "A JSON array of leads, or text/csv whose header row names the lead fields (first_name and last_name at least). Bad rows come back in `rejected` with the field and reason; a row whose phone is already a lead's comes back in `duplicates`, not stored twice; the others are stored together. Up to 64 KB a request: split bigger files (voice-agent leads import does).",
          security: BEARER_SECURITY,
          responses: responses(
            { 200: { description: "What became of each row", schema: ImportResult } },
            invalid("body", "expected a JSON array of leads, or text/csv"),
            Errors.notJson,
            Errors.tooLarge(MAX_BODY_BYTES),
            ...guardedErrors(true),
          ),
        },
      },
    );
}
