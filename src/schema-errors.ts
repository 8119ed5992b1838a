/**
 * A validation failure in words a person, or the agent, can act on. TypeBox says "Expected string
 * to match '<pattern>'", which means nothing to a reader; the field's description says what it
 * accepts. Shared by the HTTP error handler and the tool-argument check.
 */

export interface SchemaError {
  message?: string;
  schema?: { description?: unknown };
}

/** @example reasonOf({ message: "Expected string to match '^…$'", schema: { description: "E.164" } }) // "expected E.164" */
export function reasonOf(error: SchemaError): string {
  const message = error.message || "is invalid";
  const description = error.schema?.description;
  if (!message.startsWith("Expected string to match") || typeof description !== "string")
    return message;
  return `expected ${description.charAt(0).toLowerCase()}${description.slice(1)}`;
}
