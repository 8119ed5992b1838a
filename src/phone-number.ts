/** Phone numbers as Twilio writes them: E.164, a plus and up to fifteen digits. */

/** The E.164 form as a JSON-schema `pattern`. */
export const E164_PATTERN = "^\\+[1-9][0-9]{1,14}$";

/** @example E164.test("+15551234567") // true */
export const E164 = new RegExp(E164_PATTERN);
