/** A function call withdrawn after it ran takes back what its tool said how to undo (`onWithdraw`). */
import { expect, test } from "bun:test";
import { Type } from "@sinclair/typebox";
import { FunctionCalls } from "../../src/call/function-calls.ts";
import { createLogger } from "../../src/log.ts";
import { defineTool, type Tool } from "../../src/scenarios/types.ts";
import { ManualClock } from "../fakes/clock.ts";

/** A tool that stores a value at once and says how to take it back; `gate` holds it mid-run. */
function setup(gate?: Promise<void>) {
  const stored = new Set<string>();
  const sent: string[] = [];
  const tool: Tool = defineTool({
    name: "remember",
    description: "stores a value",
    deferUntilEndOfTurn: true,
    parameters: Type.Object({ value: Type.String() }),
    run: async ({ value }, context) => {
      stored.add(value);
      context.onWithdraw(() => stored.delete(value));
      await gate;
      return "stored";
    },
  });
  const calls = new FunctionCalls({
    tools: new Map([[tool.name, tool]]),
    context: { callSid: "CA1", customerNumber: "+15550001111", now: new Date() },
    clock: new ManualClock(),
    timeoutMs: 5_000,
    logger: createLogger({ level: "error", write: () => {} }),
    send: (text) => sent.push(text),
    record: () => {},
    endCall: () => {},
    withdrawEnd: () => {},
    transfer: () => {},
    ended: () => false,
  });
  const ask = (id: string, value: string) =>
    calls.run([{ id, name: "remember", arguments: JSON.stringify({ value }), client_side: true }]);
  return { calls, stored, sent, ask };
}

test("withdrawn after its answer: what it stored is taken back; others stay", async () => {
  const { calls, stored, sent, ask } = setup();
  await ask("fc1", "first");
  await ask("fc2", "second");
  expect(sent).toHaveLength(2);
  calls.cancel([{ id: "fc1" }]);
  await Bun.sleep(0);
  expect([...stored]).toEqual(["second"]);
  // A second cancel of the same call undoes nothing more.
  calls.cancel([{ id: "fc1" }]);
  expect([...stored]).toEqual(["second"]);
});

test("withdrawn while it ran: no answer, and what it stored is taken back", async () => {
  let open = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const { calls, stored, sent, ask } = setup(gate);
  const running = ask("fc1", "value");
  await Bun.sleep(0);
  expect([...stored]).toEqual(["value"]);
  calls.cancel([{ id: "fc1" }]);
  open();
  await running;
  expect(sent).toEqual([]);
  expect([...stored]).toEqual([]);
});
