/** The `end_call` tool every scenario offers: the call ends once the agent's goodbye has been heard. */
import { Type } from "@sinclair/typebox";
import { defineTool } from "../types.ts";
import { plainText } from "./text.ts";

export const endCallTool = defineTool({
  name: "end_call",
  deferUntilEndOfTurn: true,
  description: "End the call once the caller has nothing more. Say goodbye first.",
  parameters: Type.Object({ reason: plainText(300, "Why the call is ending") }),
  run: ({ reason }, context) => {
    context.endCall(reason);
    return "The call will end after your goodbye.";
  },
});
