/**
 * OpenAPI metadata the routes declare next to their handlers: every response a route can give (the
 * errors with example bodies of the one error shape), named request examples, and which routes are
 * Twilio's webhooks. `docs.ts` turns the request-body and webhook marks into the document.
 */
import { type DocumentDecoration, type TSchema, t } from "elysia";
import type { ErrorBody } from "./errors.ts";

type Responses = NonNullable<DocumentDecoration["responses"]>;
type Schema = NonNullable<
  Extract<Responses[string], { content?: unknown }>["content"]
>[string]["schema"];

/** The body of every error the API answers (see errors.ts). */
export const ErrorModel = t.Object(
  {
    error: t.String({ description: "What went wrong, in words a person can act on" }),
    code: t.String({ description: "Stable machine-readable code" }),
    field: t.Optional(
      t.String({ description: "The offending input, e.g. `body.to`, on validation errors" }),
    ),
  },
  { description: "The service's error shape" },
);

/** One way a route can fail: its status, code, when it happens and a body it answers. */
export interface ErrorCase {
  status: number;
  /** What the client can tell from it; becomes the example's summary. */
  when: string;
  example: ErrorBody;
  /** Response headers that go with it, e.g. Retry-After. */
  headers?: Record<string, { description: string; schema: Schema }>;
}

const error = (status: number, when: string, example: ErrorBody, extra: Partial<ErrorCase> = {}) =>
  ({ status, when, example, ...extra }) satisfies ErrorCase;

/** A 400 naming `field`, with the message the service gives for it. */
export const invalid = (
  field: string,
  reason: string,
  when = "An input is invalid; `field` names it",
) =>
  error(400, when, {
    error: `${field}: ${reason}`,
    code: "VALIDATION",
    field,
  });

/** The errors shared by many routes, with the bodies the service really answers. */
export const Errors = {
  unauthorized: error(401, "Missing or wrong bearer secret (ENDPOINT_SECRET)", {
    error: "Missing Authorization: Bearer <ENDPOINT_SECRET>",
    code: "UNAUTHORIZED",
  }),
  throttled: error(
    429,
    "Too many wrong secrets from this address; wait Retry-After seconds",
    {
      error: "Too many failed attempts from this address; retry after 42 s",
      code: "TOO_MANY_FAILED_ATTEMPTS",
    },
    {
      headers: {
        "Retry-After": {
          description: "Seconds until this address may try again",
          schema: { type: "integer", minimum: 1 },
        },
      },
    },
  ),
  crossSite: error(403, "A cross-site browser request that would change something", {
    error: "Origin https://elsewhere.example may not change anything here",
    code: "CROSS_SITE_REQUEST",
  }),
  tooLarge: (limit: number) =>
    error(413, `The body is larger than ${limit} bytes`, {
      error: `The request body is larger than ${limit} bytes`,
      code: "PAYLOAD_TOO_LARGE",
    }),
  mediaType: (expected: string) =>
    error(415, `The body is not ${expected}`, {
      error: `content-type: expected ${expected}`,
      code: "UNSUPPORTED_MEDIA_TYPE",
    }),
  notJson: invalid("body", "not valid JSON", "The body is not JSON"),
  notFound: (what: string, message: string) =>
    error(404, `No such ${what}`, { error: message, code: "NOT_FOUND" }),
  twilioNotConfigured: error(503, "Twilio is not configured", {
    error:
      "Twilio is not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_PHONE_NUMBER, SERVER_EXTERNAL_URL",
    code: "INTEGRATION_NOT_CONFIGURED",
  }),
  internal: error(500, "An unexpected failure; it is logged, its details are not answered", {
    error: "Internal server error",
    code: "INTERNAL",
  }),
};

/** The errors of every route behind the endpoint secret; `changes` for the ones that change state. */
export const guardedErrors = (changes: boolean) => [
  Errors.unauthorized,
  Errors.throttled,
  ...(changes ? [Errors.crossSite] : []),
];

/** A successful answer: its description and, unless it has no body, its schema and media type. */
export interface Success {
  description: string;
  schema?: TSchema;
  mediaType?: string;
}

/**
 * The `responses` of an operation: the successes, then the errors grouped by status, each status
 * with the error shape and one named example per way of getting it.
 * @example responses({ 200: { description: "The lead", schema: LeadModel } }, Errors.unauthorized)
 */
export function responses(success: Record<number, Success>, ...errors: ErrorCase[]): Responses {
  const documented: Responses = {};
  for (const [status, { description, schema, mediaType = "application/json" }] of Object.entries(
    success,
  ))
    documented[status] = {
      description,
      ...(schema ? { content: { [mediaType]: { schema: schema as Schema } } } : {}),
    };
  const byStatus = new Map<number, ErrorCase[]>();
  for (const each of [...errors, Errors.internal])
    byStatus.set(each.status, [...(byStatus.get(each.status) ?? []), each]);
  for (const [status, cases] of [...byStatus].sort(([a], [b]) => a - b)) {
    const examples = Object.fromEntries(
      cases.map((each) => [exampleName(each.example), { summary: each.when, value: each.example }]),
    );
    const headers = Object.assign({}, ...cases.map((each) => each.headers ?? {}));
    documented[status] = {
      description: [...new Set(cases.map((each) => each.when))].join(". "),
      ...(Object.keys(headers).length ? { headers } : {}),
      content: { "application/json": { schema: ErrorModel as Schema, examples } },
    };
  }
  return documented;
}

/** `VALIDATION` for the first of its code, then `VALIDATION body.to` for the next field. */
function exampleName(example: ErrorBody): string {
  return example.field ? `${example.code} ${example.field}` : example.code;
}

/** The operation key docs.ts reads a request body's media type and examples from. */
export const REQUEST_BODY = "x-request-body";
/** The operation key that marks a route Twilio calls: docs.ts lists it under `webhooks`. */
export const WEBHOOK = "x-webhook";

export interface RequestBodyDoc {
  mediaType: string;
  /** What the document shows instead of the route's body schema (e.g. the fields checked after a signature). */
  schema?: TSchema;
  /** Named examples, reachable from the reference page's example picker. */
  examples?: Record<string, { summary: string; description?: string; value: unknown }>;
}

/** Detail for a route's request body: the one media type it accepts and its named examples. */
export const requestBody = (doc: RequestBodyDoc) => ({ [REQUEST_BODY]: doc });

/** Detail for a Twilio webhook: listed under the document's `webhooks`, with no "Test Request". */
export const twilioWebhook = { [WEBHOOK]: true, security: [{ twilioSignature: [] }] };

/** Added to each webhook's description: why the reference page cannot call it. */
export const WEBHOOK_NOTE =
  "Called by Twilio, form-encoded and signed with X-Twilio-Signature over SERVER_EXTERNAL_URL and the path; a request without Twilio's signature is refused (403).";
