/**
 * The do-not-call list over HTTP, behind the endpoint secret: `GET /dnc` (newest first, paged),
 * `POST /dnc` (`{"numbers": [...], "reason": "..."}`, or CSV with a header row naming a `number`
 * column and optionally `reason`), `DELETE /dnc/{number}`. Every number is E.164; a row that is not
 * is reported with its row and reason and the others are added. `/make-call` (and campaigns) refuse
 * a listed number with 409.
 */
import { Elysia, t } from "elysia";
import type { Clock } from "../clock.ts";
import { AppError, NotFoundError } from "../errors.ts";
import { E164_PATTERN } from "../phone-number.ts";
import type { DncEntry } from "../store/dnc.ts";
import type { DncStore } from "../store/port.ts";
import { BEARER_SECURITY, type EndpointGuard, endpointAuth } from "./auth.ts";
import { csvRows, limitedBody, MAX_BODY_BYTES, readJsonOrCsv } from "./body.ts";
import { PageQuery, page } from "./models.ts";
import { Errors, guardedErrors, invalid, responses } from "./openapi.ts";
import { BadRequestError, validator } from "./validate.ts";

const E164 = new RegExp(E164_PATTERN);
/** Numbers one request may add. */
const MAX_NUMBERS = 10_000;

/** A number on the list: no call rings it. */
export class DoNotCallError extends AppError {
  constructor(entry: DncEntry) {
    super(
      409,
      "DO_NOT_CALL",
      `${entry.number} is on the do-not-call list (since ${entry.added_at}${entry.reason ? `: ${entry.reason}` : ""}); remove it with DELETE /dnc/{number} first`,
    );
  }
}

const DncModel = t.Object({
  number: t.String({ description: "E.164" }),
  reason: t.Union([t.String(), t.Null()]),
  source: t.Union([t.Literal("api"), t.Literal("agent")], {
    description: "api: an operator; agent: the lead asked on a call",
  }),
  added_at: t.String(),
});

const AddNumbers = t.Object(
  {
    numbers: t.Array(t.String({ maxLength: 64 }), { minItems: 1, maxItems: MAX_NUMBERS }),
    reason: t.Optional(t.String({ maxLength: 300, pattern: "^[^\\u0000-\\u001f\\u007f]*$" })),
  },
  { additionalProperties: false },
);
const parseAdd = validator(AddNumbers, "body");

const AddResult = t.Object({
  added: t.Integer({ description: "Numbers added now" }),
  already: t.Integer({ description: "Numbers that were listed already" }),
  rejected: t.Array(
    t.Object({
      row: t.Integer({ description: "1-based, as given" }),
      number: t.String(),
      reason: t.String(),
    }),
  ),
});

/** The numbers (and reasons) of a CSV with a `number` column. */
async function fromCsv(csv: string): Promise<{ number: string; reason?: string }[]> {
  const { fields, rows } = await csvRows(csv, MAX_NUMBERS);
  if (!fields.includes("number"))
    throw new BadRequestError("body: the CSV needs a header row with a number column");
  return rows.map((row) => ({
    number: (row.number ?? "").trim(),
    ...(row.reason?.trim() ? { reason: row.reason.trim().slice(0, 300) } : {}),
  }));
}

export function dncRoutes({
  dnc,
  guard,
  clock,
}: {
  dnc: DncStore;
  guard: EndpointGuard;
  clock: Clock;
}) {
  return new Elysia({ name: "dnc" })
    .use(endpointAuth(guard))
    .use(
      limitedBody(
        (request) => readJsonOrCsv(request, MAX_BODY_BYTES),
        ({ request, server }) => guard.authorize(request, server),
      ),
    )
    .get(
      "/dnc",
      async ({ query }) => {
        const { limit, offset } = page(query);
        return { numbers: await dnc.list(limit, offset), limit, offset };
      },
      {
        query: t.Object(PageQuery),
        detail: {
          tags: ["Do not call"],
          summary: "The do-not-call list, newest first",
          security: BEARER_SECURITY,
          responses: responses(
            {
              200: {
                description: "A page of the list",
                schema: t.Object({
                  numbers: t.Array(DncModel),
                  limit: t.Integer(),
                  offset: t.Integer(),
                }),
              },
            },
            ...guardedErrors(false),
          ),
        },
      },
    )
    .post(
      "/dnc",
      async ({ body }) => {
        const rows =
          typeof body === "object" && body !== null && "csv" in body
            ? await fromCsv(String((body as { csv: unknown }).csv))
            : (() => {
                const { numbers, reason } = parseAdd(body);
                return numbers.map((number) => ({ number, ...(reason ? { reason } : {}) }));
              })();
        const rejected: { row: number; number: string; reason: string }[] = [];
        const accepted = new Map<string, string | null>();
        rows.forEach(({ number, reason }, index) => {
          if (!E164.test(number))
            rejected.push({
              row: index + 1,
              number: number.slice(0, 64),
              reason: "not an E.164 number",
            });
          else accepted.set(number, reason ?? null);
        });
        const added = await dnc.add(
          [...accepted].map(([number, reason]) => ({ number, reason, source: "api" as const })),
          clock.now().toISOString(),
        );
        return { added: added.length, already: accepted.size - added.length, rejected };
      },
      {
        detail: {
          tags: ["Do not call"],
          summary: "Add numbers to the do-not-call list",
          description:
            'JSON {"numbers": ["+15551234567"], "reason": "asked by email"} or text/csv with a header row (number[,reason]). Rows that are not E.164 are reported in `rejected`; the others are added.',
          security: BEARER_SECURITY,
          responses: responses(
            { 200: { description: "What was added", schema: AddResult } },
            invalid("body.numbers", "Expected array"),
            Errors.notJson,
            Errors.tooLarge(MAX_BODY_BYTES),
            ...guardedErrors(true),
          ),
        },
      },
    )
    .delete(
      "/dnc/:number",
      async ({ params, set }) => {
        if (!(await dnc.remove(params.number)))
          throw new NotFoundError(`${params.number} is not on the do-not-call list`);
        set.status = 204;
      },
      {
        params: t.Object({ number: t.String({ pattern: E164_PATTERN, description: "E.164" }) }),
        detail: {
          tags: ["Do not call"],
          summary: "Remove a number from the do-not-call list",
          security: BEARER_SECURITY,
          responses: responses(
            { 204: { description: "Removed" } },
            invalid("params.number", "Expected string to match"),
            Errors.notFound("number", "+15551234567 is not on the do-not-call list"),
            ...guardedErrors(true),
          ),
        },
      },
    );
}
