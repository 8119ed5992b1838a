/** Validation for inputs checked inside a handler (after a signature check): 400 naming the field. */
import type { Static, TSchema } from "@sinclair/typebox";
import { type TypeCheck, TypeCompiler } from "@sinclair/typebox/compiler";
import { AppError } from "../errors.ts";

/** A 400 whose message starts with the field it is about, e.g. "body.to: …"; `field` names it. */
export class BadRequestError extends AppError {
  readonly field: string | undefined;

  constructor(message: string) {
    super(400, "VALIDATION", message);
    this.field = /^((?:body|query|params|headers)(?:\.[\w-]+)*): /.exec(message)?.[1];
  }
}

/**
 * Compiles `schema` once, on first use (not at start-up); the returned function returns the value
 * typed, or throws a 400 whose message starts with the field, e.g. "body.CallSid: Expected string".
 */
export function validator<S extends TSchema>(schema: S, where: string) {
  let compiled: TypeCheck<S> | undefined;
  return (value: unknown): Static<S> => {
    compiled ??= TypeCompiler.Compile(schema);
    const first = compiled.Errors(value).First();
    if (!first) return value as Static<S>;
    throw new BadRequestError(`${where}${first.path.replaceAll("/", ".")}: ${first.message}`);
  };
}
