/**
 * The `take_message` tool every scenario offers: when the caller wants a person (who is not there,
 * or not reachable now), the agent writes down who called, how to call them back and what about.
 * It goes on the call record (outcome `message_taken`) for the team to act on, never into the logs.
 */
import { Type } from "@sinclair/typebox";
import type { Clock } from "../../clock.ts";
import { E164_PATTERN } from "../../phone-number.ts";
import type { Storage } from "../../store/port.ts";
import { defineTool } from "../types.ts";
import { callerNumber } from "./caller.ts";
import { plainText } from "./text.ts";

export function takeMessageTool(store: Pick<Storage, "calls">, clock: Clock) {
  return defineTool({
    name: "take_message",
    deferUntilEndOfTurn: true,
    description:
      "Take a message for a person when the caller wants one: their name, a number to call back (unless it is the number they are calling from) and what it is about. Read the callback number back before calling this.",
    parameters: Type.Object({
      caller_name: plainText(100, "The caller's name, as they gave it", 2),
      callback_number: Type.Optional(
        Type.String({
          pattern: E164_PATTERN,
          description: "E.164; defaults to the number the caller is calling from",
        }),
      ),
      message: plainText(1000, "What the caller wants the person to know or do", 2),
    }),
    run: async ({ caller_name, callback_number, message }, context) => {
      const callback = callback_number ?? callerNumber(context.customerNumber);
      if (!callback) {
        // A withheld caller ID is no number to call back: the message would reach no one.
        return "Nothing was recorded: the caller's number is withheld. Ask for a number to call them back, then call take_message again with callback_number.";
      }
      await store.calls.update(context.callSid, {
        outcome: "message_taken",
        outcome_detail: "a message for a person",
        message: {
          caller_name,
          callback_number: callback,
          message,
          taken_at: clock.now().toISOString(),
        },
      });
      return "The message is recorded. Tell the caller someone will call them back, then ask if there is anything else.";
    },
  });
}
