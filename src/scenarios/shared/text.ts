/**
 * Outside text (a lead's fields, typed into a web form) on its way into a prompt or into speech.
 * In a prompt it is quoted data, never prompt text: one JSON string, with line breaks, quotes and
 * invisible characters escaped. In speech it is plain words: controls and invisible characters go.
 */

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
