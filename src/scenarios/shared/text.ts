/**
 * Outside text (a lead's fields, typed into a web form; what a caller said, written down by the
 * agent as a tool argument) on its way in, into a prompt or into speech. On the way in it must be
 * one line of plain text (`plainText()`, the rule lead fields follow). In a prompt it is quoted
 * data, never prompt text: one JSON string, with line breaks, quotes and invisible characters
 * escaped. In speech it is plain words: controls and invisible characters go.
 */
import { type TString, Type } from "@sinclair/typebox";
import { PLAIN_TEXT } from "../../store/leads.ts";

/**
 * A free-text tool argument: one line of plain text with a visible character, no control or
 * invisible formatting character (line breaks, NUL, zero-width, bidi controls), within the length
 * limits. The session checks it before the handler runs and tells the agent which argument failed.
 * @example plainText(100, "The patient's full name", 2)
 */
export function plainText(maxLength: number, description: string, minLength = 1): TString {
  return Type.String({
    minLength,
    maxLength,
    pattern: PLAIN_TEXT,
    description: `${description} (one line of plain text, up to ${maxLength} characters)`,
  });
}

/**
 * The name of a fact in a tool argument's record (e.g. `verified_info`): a short label of letters,
 * digits, spaces and simple punctuation.
 */
export const FACT_NAME = "^[A-Za-z0-9][A-Za-z0-9 _.'()/-]{0,59}$";

/** Line breaks, control characters, invisible format and bidi controls, unassigned and private code points. */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/gu;
const CONTROL_OR_SEPARATOR = /[\p{Cc}\p{Zl}\p{Zp}]+/gu;

/**
 * A value as one JSON literal that cannot break out of its line or its quotes. Numbers stay numbers.
 * @example quoted("1 Elm St\n\nIMPORTANT") // one line, quotes included: "1 Elm St\n\nIMPORTANT" (each \n a backslash and an n)
 */
export function quoted(value: string | number): string {
  return JSON.stringify(value).replace(UNPRINTABLE, (char) =>
    // One \uXXXX per UTF-16 unit, so code points beyond the BMP stay valid JSON.
    char
      .split("")
      .map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`)
      .join(""),
  );
}

/**
 * Text to be spoken: line breaks and controls become spaces, invisible characters go, spaces are
 * collapsed, and it is cut at `maxLength` characters.
 * @example spoken("Jordan\r\n\u202ELee ") // "Jordan Lee"
 */
export function spoken(value: string | null | undefined, maxLength = 100): string {
  if (!value) return "";
  return [
    ...value
      .replace(CONTROL_OR_SEPARATOR, " ")
      .replace(UNPRINTABLE, "")
      .replace(/\s+/g, " ")
      .trim(),
  ]
    .slice(0, maxLength)
    .join("")
    .trim();
}
