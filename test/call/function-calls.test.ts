/** A function call withdrawn after it ran takes back what its tool said how to undo (`onWithdraw`). */
import { expect, test } from "bun:test";
import { Type } from "@sinclair/typebox";
import { FunctionCalls } from "../../src/call/function-calls.ts";
import { createLogger } from "../../src/log.ts";
import { defineTool, type Tool } from "../../src/scenarios/types.ts";
import { ManualClock } from "../fakes/clock.ts";

/**
 * A tool that stores a value and says how to take it back; `gate` holds it mid-run (`late`: it
 * stores only once the gate opens, as a slow store would).
 */
function setup(gate?: Promise<void>, { late = false, ended = (): boolean => false } = {}) {
  const clock = new ManualClock();
  const stored = new Set<string>();
  const sent: string[] = [];
  const tool: Tool = defineTool({
    name: "remember",
    description: "stores a value",
    deferUntilEndOfTurn: true,
    parameters: Type.Object({ value: Type.String() }),
    run: async ({ value }, context) => {
      if (!late) stored.add(value);
      await gate;
      if (late) stored.add(value);
      context.onWithdraw(() => stored.delete(value));
      return "stored";
    },
  });
  const calls = new FunctionCalls({
    tools: new Map([[tool.name, tool]]),
    context: { callSid: "CA1", customerNumber: "+15550001111", now: new Date() },
    clock,
    timeoutMs: 5_000,
    logger: createLogger({ level: "error", write: () => {} }),
    send: (text) => sent.push(text),
    record: () => {},
    endCall: () => {},
    withdrawEnd: () => {},
    transfer: () => {},
    ended,
  });
  const ask = (id: string, value: string) =>
    calls.run([{ id, name: "remember", arguments: JSON.stringify({ value }), client_side: true }]);
  return { calls, stored, sent, ask, clock };
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

/** A gate the test opens. */
function gate() {
  let open = () => {};
  const closed = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { closed, open };
}

test("withdrawn and timed out, a tool that stores afterwards is taken back when it does", async () => {
  const { closed, open } = gate();
  const { calls, stored, sent, ask, clock } = setup(closed, { late: true });
  const running = ask("fc1", "late");
  await Bun.sleep(0);
  calls.cancel([{ id: "fc1" }]);
  clock.advance(5_000);
  await running;
  open();
  await Bun.sleep(0);
  await Bun.sleep(0);
  expect(sent).toEqual([]);
  expect([...stored]).toEqual([]);
});

test("withdrawn while it ran and the call ended meanwhile: still taken back", async () => {
  const { closed, open } = gate();
  let over = false;
  const { calls, stored, ask } = setup(closed, { ended: () => over });
  const running = ask("fc1", "value");
  await Bun.sleep(0);
  calls.cancel([{ id: "fc1" }]);
  over = true;
  open();
  await running;
  expect([...stored]).toEqual([]);
});
