/**
 * A small scenario for bridge tests: its tools read and write the real appointment store (through
 * the storage port), so a function call's effect can be checked in SQLite.
 */
import { Type } from "@sinclair/typebox";
import { defineTool, type Scenario } from "../../src/scenarios/types.ts";

export const TEST_CALENDAR = "test-desk";

export const testScenario: Scenario = {
  id: "test-desk",
  description: "Test front desk",
  timeZone: "UTC",
  async prepare(call, { store }) {
    return {
      prompt: `You are a test receptionist. The caller's number is ${call.from}.`,
      greeting: "Thanks for calling the test desk.",
      tools: [
        defineTool({
          name: "check_slots",
          description: "List open slots",
          parameters: Type.Object({ from: Type.String(), to: Type.String() }),
          run: async ({ from, to }) => {
            const slots = await store.appointments.openSlots({
              calendar: TEST_CALENDAR,
              from,
              to,
              limit: 5,
            });
            return slots.map((slot) => ({ slot_id: slot.id, starts_at: slot.starts_at }));
          },
        }),
        defineTool({
          name: "book",
          deferUntilEndOfTurn: true,
          description: "Book a slot",
          parameters: Type.Object({ slot_id: Type.Integer(), name: Type.String({ minLength: 1 }) }),
          run: async ({ slot_id, name }, context) => {
            const result = await store.appointments.book({
              slot_id,
              name,
              phone: context.customerNumber,
              call_sid: context.callSid,
            });
            return result.ok
              ? { booked: true, confirmation: result.booking.id }
              : { booked: false, reason: result.reason };
          },
        }),
        defineTool({
          name: "end_call",
          deferUntilEndOfTurn: true,
          description: "End the call after saying goodbye",
          parameters: Type.Object({ reason: Type.String() }),
          run: ({ reason }, context) => {
            context.endCall(reason);
            return "The call will end after your goodbye.";
          },
        }),
      ],
    };
  },
};
