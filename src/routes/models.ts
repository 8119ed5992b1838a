/** Small TypeBox building blocks shared by the route models. */
import { t } from "elysia";

/** `schema` or null (columns that may be empty). */
export const Nullable = <T extends Parameters<typeof t.Union>[0][number]>(schema: T) =>
  t.Union([schema, t.Null()]);

/**
 * Text without control characters. A NUL or another C0 control is in no SID, number or status the
 * service knows, and PostgreSQL's text cannot hold a NUL: such input is refused at the edge, a 400
 * naming the field, on every engine alike.
 */
export const PRINTABLE = "^[^\\u0000-\\u001f\\u007f]*$";

/** Deepest page a listing serves: far beyond any table here, well inside SQLite's integers. */
const MAX_OFFSET = 1_000_000_000;

/**
 * `limit` and `offset` of a listing. The field name sits in each `error`: Elysia drops it when a
 * coerced query number is out of range. (The OpenAPI document shows them as plain integers: docs.ts.)
 */
export const PageQuery = {
  limit: t.Optional(
    t.Integer({
      minimum: 1,
      maximum: 200,
      default: 20,
      description: "How many to answer",
      error: "query.limit: expected an integer from 1 to 200",
    }),
  ),
  offset: t.Optional(
    t.Integer({
      minimum: 0,
      maximum: MAX_OFFSET,
      default: 0,
      description: "How many to skip, newest first",
      error: `query.offset: expected an integer from 0 to ${MAX_OFFSET}`,
    }),
  ),
};

/** The page a listing query asks for, with its defaults. */
export function page(query: { limit?: number; offset?: number }): {
  limit: number;
  offset: number;
} {
  return { limit: query.limit ?? 20, offset: query.offset ?? 0 };
}
