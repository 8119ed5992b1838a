/**
 * The one error handler: every error becomes JSON `{error, code}` with the right status. Validation
 * errors answer 400 and name the field; unexpected errors answer 500 and are logged, never leaked.
 */
import { Elysia, ValidationError } from "elysia";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { requestUrl } from "../request-url.ts";
import { reasonOf, type SchemaError } from "../schema-errors.ts";
import { BadRequestError } from "./validate.ts";

export interface ErrorBody {
  error: string;
  code: string;
  /** The offending input, e.g. "body.to", on validation errors. */
  field?: string;
}

/**
 * Names the first invalid field of a validation error, e.g. `body.to`. Elysia loses the name of a
 * coerced query/param number that is out of range; such schemas carry `error: "<field>: <why>"`.
 */
function describeValidation(error: ValidationError): ErrorBody {
  if (typeof error.customError === "string" && error.customError.includes(": ")) {
    return {
      error: error.customError,
      code: "VALIDATION",
      field: error.customError.split(": ")[0],
    };
  }
  const first = error.all[0];
  if (!first) return { error: `Invalid ${error.type}`, code: "VALIDATION" };
  const path = "path" in first ? first.path : "";
  const field = `${error.type}${path.replaceAll("/", ".")}`;
  const reason = reasonOf(first as SchemaError);
  return { error: `${field}: ${reason}`, code: "VALIDATION", field };
}

/** What the service answers for a thrown AppError (its status goes with it). */
export function bodyOf(error: AppError): ErrorBody {
  const body: ErrorBody = { error: error.message, code: error.code };
  if (error instanceof BadRequestError && error.field) body.field = error.field;
  return body;
}

export function errorHandler(logger: Logger) {
  return new Elysia({ name: "error-handler" }).onError(
    { as: "global" },
    ({ code, error, set, request }) => {
      let status: number;
      let body: ErrorBody;
      // A guard or limit thrown while the body was being read arrives wrapped in Elysia's ParseError.
      const cause = code === "PARSE" && error instanceof Error ? error.cause : undefined;
      const appError = error instanceof AppError ? error : cause instanceof AppError ? cause : null;
      if (appError) {
        status = appError.status;
        body = bodyOf(appError);
        Object.assign(set.headers, appError.headers);
      } else if (error instanceof ValidationError) {
        status = 400;
        body = describeValidation(error);
      } else if (code === "NOT_FOUND") {
        status = 404;
        body = {
          error: `No route for ${request.method} ${requestUrl(request).pathname}`,
          code: "NOT_FOUND",
        };
      } else if (code === "PARSE") {
        status = 400;
        body = { error: "The request body could not be parsed", code: "PARSE" };
      } else {
        status = 500;
        body = { error: "Internal server error", code: "INTERNAL" };
        logger.error("unhandled error", {
          code,
          error,
          method: request.method,
          path: requestUrl(request).pathname,
        });
      }
      set.status = status;
      return body;
    },
  );
}
