/**
 * OpenAPI metadata the routes declare next to their handlers: every response a route can give (the
 * errors with example bodies of the one error shape), named request examples, and which routes are
 * Twilio's webhooks. `docs.ts` turns the request-body and webhook marks into the document.
 */
import { type DocumentDecoration, type TSchema, t } from "elysia";
import {
  type AppError,
  IntegrationNotConfiguredError,
  NotFoundError,
  ShuttingDownError,
} from "../errors.ts";
import { CrossSiteRequestError, UnauthorizedError } from "./auth.ts";
import { PayloadTooLargeError, UnsupportedMediaTypeError } from "./body.ts";
import { bodyOf, type ErrorBody } from "./errors.ts";
import { TooManyFailuresError } from "./throttle.ts";
import { BadRequestError } from "./validate.ts";

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

/**
 * A documented failure made from the error the route throws, so its status, code and body are the
 * ones the service answers (the error handler's `bodyOf`).
 */
export const fromError = (when: string, thrown: AppError, extra: Partial<ErrorCase> = {}) =>
  ({ status: thrown.status, when, example: bodyOf(thrown), ...extra }) satisfies ErrorCase;

/** A 400 naming `field`, with the message the service gives for it. */
export const invalid = (
  field: string,
  reason: string,
  when = "An input is invalid; `field` names it",
) => fromError(when, new BadRequestError(`${field}: ${reason}`));

/** The errors shared by many routes, with the bodies the service really answers. */
export const Errors = {
  unauthorized: fromError(
    "Missing or wrong bearer secret (ENDPOINT_SECRET)",
    new UnauthorizedError("Missing Authorization: Bearer <ENDPOINT_SECRET>"),
  ),
  throttled: fromError(
    "Too many wrong secrets from this address; wait Retry-After seconds",
    new TooManyFailuresError(42),
    {
      headers: {
        "Retry-After": {
          description: "Seconds until this address may try again",
          schema: { type: "integer", minimum: 1 },
        },
      },
    },
  ),
  crossSite: fromError(
    "A cross-site browser request that would change something",
    new CrossSiteRequestError("Origin https://elsewhere.example may not change anything here"),
  ),
  tooLarge: (limit: number) =>
    fromError(`The body is larger than ${limit} bytes`, new PayloadTooLargeError(limit)),
  mediaType: (expected: string) =>
    fromError(`The body is not ${expected}`, new UnsupportedMediaTypeError([expected])),
  notJson: invalid("body", "not valid JSON", "The body is not JSON"),
  notFound: (what: string, message: string) =>
    fromError(`No such ${what}`, new NotFoundError(message)),
  twilioNotConfigured: fromError(
    "Twilio is not configured",
    new IntegrationNotConfiguredError(
      "Twilio is not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_PHONE_NUMBER, SERVER_EXTERNAL_URL",
    ),
  ),
  deepgramNotConfigured: fromError(
    "Deepgram is not configured",
    new IntegrationNotConfiguredError("Deepgram is not configured: set DEEPGRAM_API_KEY"),
  ),
  shuttingDown: fromError("The service is shutting down", new ShuttingDownError()),
  internal: {
    status: 500,
    when: "An unexpected failure; it is logged, its details are not answered",
    example: { error: "Internal server error", code: "INTERNAL" },
  } satisfies ErrorCase,
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
