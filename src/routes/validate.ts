/**
 * Validation for inputs checked inside a handler (after a signature check): 400 naming the field.
 * Also keeps Elysia's own validation of coerced inputs working in the minified binary (below).
 */
import type { Static, TSchema } from "@sinclair/typebox";
import { type TypeCheck, TypeCompiler } from "@sinclair/typebox/compiler";
import { TransformDecodeError } from "@sinclair/typebox/value";
import { AppError } from "../errors.ts";

/*
 * Elysia's compiled handlers tell a failed decode of a coerced input (a query or params number out
 * of range, e.g. `?limit=0`) by `error.constructor.name === "TransformDecodeError"` and silently
 * drop any other error, running the handler on the undecoded strings. `bun build --minify` renames
 * the class (Bun's --keep-names does not keep class names), so its name is pinned here, once, for
 * every route; test/binary-parity.test.ts checks it.
 */
Object.defineProperty(TransformDecodeError, "name", { value: "TransformDecodeError" });

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
