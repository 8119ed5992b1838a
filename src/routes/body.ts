/**
 * Request bodies read within a limit, before anything else looks at them. A declared length over the
 * limit is refused (413) without reading a byte; a chunked body stops being read at the limit. JSON
 * is checked for nesting depth before it is parsed, so no input can exhaust the stack.
 */
import { Elysia } from "elysia";
import { AppError } from "../errors.ts";
import { BadRequestError } from "./validate.ts";

/** Deepest JSON nesting any route accepts (the deepest model is three levels). */
export const MAX_JSON_DEPTH = 32;

/** Largest body Bun reads for any request, before routing: the largest route limit. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Twilio's voice webhooks are form posts of a few dozen short fields (~2 KB). */
export const WEBHOOK_BODY_BYTES = 16 * 1024;

export class PayloadTooLargeError extends AppError {
  constructor(limit: number) {
    super(413, "PAYLOAD_TOO_LARGE", `The request body is larger than ${limit} bytes`);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(expected: readonly string[]) {
    super(415, "UNSUPPORTED_MEDIA_TYPE", `content-type: expected ${expected.join(" or ")}`);
  }
}

/**
 * The body as text, or a 413 once it passes `limit` bytes (by its declared length, or while reading).
 * @example const text = await readLimited(request, 16 * 1024);
 */
export async function readLimited(request: Request, limit: number): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > limit) throw new PayloadTooLargeError(limit);
  if (!request.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new PayloadTooLargeError(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size).toString("utf8");
}

/** Throws a 400 when `text`'s arrays and objects nest deeper than `maxDepth` (strings are skipped). */
export function checkJsonDepth(text: string, maxDepth = MAX_JSON_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c)
        i++; // backslash: skip the escaped character
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) inString = true;
    else if (char === 0x7b || char === 0x5b) {
      if (++depth > maxDepth)
        throw new BadRequestError(`body: nested deeper than ${maxDepth} levels`);
    } else if (char === 0x7d || char === 0x5d) depth--;
  }
}

/** Parses a JSON body of at most `limit` bytes; 400 when it is not JSON, 415 for other media types. */
export async function readJson(request: Request, limit: number): Promise<unknown> {
  const type = mediaType(request);
  if (type !== "application/json") throw new UnsupportedMediaTypeError(["application/json"]);
  const text = await readLimited(request, limit);
  checkJsonDepth(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BadRequestError("body: not valid JSON");
  }
  const shadowing = shadowedConversion(parsed, "body");
  if (shadowing)
    throw new BadRequestError(`${shadowing}: a key named toString or valueOf is not accepted`);
  return parsed;
}

/**
 * The path of the first object in `value` with its own `toString` or `valueOf`: such an object has
 * no string form, and turning it into one (as validation messages do) throws. No field is named so.
 */
function shadowedConversion(value: unknown, path: string): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    if (key === "toString" || key === "valueOf") return path;
    const found = shadowedConversion(inner, `${path}.${key}`);
    if (found) return found;
  }
  return undefined;
}

/**
 * A POST's body as JSON, or, sent as `text/csv`, as `{ csv: <text> }` (imports); other methods
 * carry none here.
 */
export async function readJsonOrCsv(request: Request, limit: number): Promise<unknown> {
  if (request.method !== "POST") return undefined;
  if (mediaType(request) === "text/csv") return { csv: await readLimited(request, limit) };
  return readJson(request, limit);
}

/** The rows of a CSV with a header row, keyed by its column names (trimmed, lower case). */
export async function csvRows(
  csv: string,
  maxRows: number,
): Promise<{ fields: string[]; rows: Record<string, string>[] }> {
  const { default: Papa } = await import("papaparse");
  const parsed = Papa.parse<Record<string, string>>(csv, {
    header: true,
    skipEmptyLines: true,
    transformHeader: (header) => header.trim().toLowerCase(),
  });
  if (parsed.data.length > maxRows) throw new BadRequestError(`body: at most ${maxRows} rows`);
  return { fields: parsed.meta.fields ?? [], rows: parsed.data };
}

/** Parses a form post (Twilio's webhooks) of at most `limit` bytes into its fields (last value wins). */
export async function readForm(request: Request, limit: number): Promise<Record<string, string>> {
  if (mediaType(request) !== "application/x-www-form-urlencoded")
    throw new UnsupportedMediaTypeError(["application/x-www-form-urlencoded"]);
  // fromEntries defines own properties: a field named __proto__ is only a field.
  return Object.fromEntries(new URLSearchParams(await readLimited(request, limit)));
}

function mediaType(request: Request): string {
  return (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

/**
 * The body parser for a group of routes: `guard` runs first (e.g. the endpoint secret), so nothing
 * is read for a request that will be refused anyway.
 */
export function limitedBody(
  read: (request: Request) => Promise<unknown>,
  guard?: (context: { request: Request; server: Bun.Server<unknown> | null }) => void,
) {
  // No plugin name on purpose: each route group needs its own copy.
  return new Elysia().onParse({ as: "scoped" }, (context) => {
    guard?.(context);
    return read(context.request);
  });
}
