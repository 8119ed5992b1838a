/**
 * The agent's function calls in one call: runs each through its tool, answers with
 * `FunctionCallResponse`, and records it. The live agent may call a function before the caller's
 * turn is confirmed and withdraw it with `FunctionCallCancelled`: a cancelled call gets no answer,
 * and the effects a tool stages (ending or transferring the call) are dropped, or withdrawn when the cancel comes
 * after the answer; what a tool stored and said how to undo (`onWithdraw`) is undone. Effects that cannot be withdrawn belong to tools declared `deferUntilEndOfTurn`,
 * which the agent never calls speculatively. One call's functions run one at a time, in the order
 * they were asked for, also across requests: a tool's checks and its write (a booking limit, then
 * the booking) see no other function of the same call in between, now that the store is awaited.
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import { functionCallResponseMessage } from "../protocol/deepgram-agent.ts";
import type { Tool, ToolContext } from "../scenarios/types.ts";
import type { CallEventInput } from "../store/calls.ts";
import { runTool } from "./tools.ts";
import type { TransferRequest } from "./transfer.ts";

export interface FunctionCallRequestItem {
  id: string;
  name: string;
  arguments: string;
  client_side: boolean;
}

export interface FunctionCallsDeps {
  tools: ReadonlyMap<string, Tool>;
  /** The call as tools see it, without `endCall` and `transfer`, staged per function call. */
  context: Omit<ToolContext, "endCall" | "transfer" | "onWithdraw">;
  clock: Clock;
  timeoutMs: number;
  logger: Logger;
  /** Sends a text message to the agent (undefined once the agent is gone). */
  send(text: string): void;
  record(event: CallEventInput): void;
  /** Ends the call after the goodbye; `callId` names the function call that asked for it. */
  endCall(reason: string, callId: string): void;
  /** Takes back an end (or transfer) that function call `callId` asked for, if not done yet. */
  withdrawEnd(callId: string): void;
  /** Hands the caller to a person after the handoff line; `callId` names the function call. */
  transfer(request: TransferRequest, callId: string): void;
  /** True once the call has ended: nothing more is answered. */
  ended(): boolean;
}

type Progress = "running" | "cancelled" | "answered";

export class FunctionCalls {
  /** Calls of this conversation by id, until the session ends. */
  readonly #calls = new Map<
    string,
    {
      name: string;
      progress: Progress;
      /** What takes back the tool's stored effects, until it ran (`undone`). */
      undo: (() => unknown)[];
      undone: boolean;
    }
  >();
  /** The functions asked for so far, run in order: settles when the last of them has. */
  #queue: Promise<void> = Promise.resolve();

  constructor(private readonly deps: FunctionCallsDeps) {}

  /**
   * Runs the client-side functions of one request, one after another, after those of earlier
   * requests. Each is known (and can be cancelled) from the moment it is asked for.
   */
  run(functions: readonly FunctionCallRequestItem[]): Promise<void> {
    const ours = functions.filter((call) => call.client_side);
    for (const call of ours)
      this.#calls.set(call.id, { name: call.name, progress: "running", undo: [], undone: false });
    const turn = this.#queue.then(() => this.#runInOrder(ours));
    this.#queue = turn.catch(() => {});
    return turn;
  }

  async #runInOrder(functions: readonly FunctionCallRequestItem[]): Promise<void> {
    for (const call of functions) {
      // Withdrawn while it waited for its turn: never run.
      if (this.#calls.get(call.id)?.progress === "cancelled") continue;
      const staged: (() => void)[] = [];
      const context: ToolContext = {
        ...this.deps.context,
        endCall: (reason) => staged.push(() => this.deps.endCall(reason, call.id)),
        transfer: (request) => staged.push(() => this.deps.transfer(request, call.id)),
        onWithdraw: (undo) => {
          const entry = this.#calls.get(call.id);
          entry?.undo.push(undo);
          // Withdrawn and undone already (the tool went on past its time limit): now, too.
          if (entry?.undone) void this.#undo(call.id);
        },
      };
      const { clock, timeoutMs } = this.deps;
      const outcome = await runTool(
        this.deps.tools.get(call.name),
        call.name,
        call.arguments,
        context,
        clock,
        timeoutMs,
      );
      const entry = this.#calls.get(call.id);
      const cancelled = entry?.progress === "cancelled";
      if (this.deps.ended()) {
        if (cancelled) await this.#undo(call.id);
        return;
      }
      this.deps.record({
        kind: "function_call",
        data: {
          id: call.id,
          name: call.name,
          arguments: outcome.arguments,
          result: outcome.content,
          ok: outcome.ok,
          duration_ms: outcome.durationMs,
          ...(cancelled ? { cancelled: true } : {}),
        },
      });
      if (cancelled) {
        // Withdrawn while it ran: what it stored is taken back.
        await this.#undo(call.id);
        continue;
      }
      if (entry) entry.progress = "answered";
      this.deps.send(functionCallResponseMessage(call.id, call.name, outcome.content));
      for (const effect of staged) effect();
    }
  }

  /** The agent withdrew these calls: no answer for those still running, ends taken back. */
  cancel(functions: readonly { id: string; name?: string | undefined }[]): void {
    for (const { id, name } of functions) {
      const entry = this.#calls.get(id);
      const answered = entry?.progress === "answered";
      if (entry) entry.progress = "cancelled";
      this.deps.record({
        kind: "function_call_cancelled",
        data: { id, name: name ?? entry?.name ?? "unknown", answered },
      });
      if (!entry) {
        this.deps.logger.warn("agent cancelled a function call it never made", { id });
        continue;
      }
      if (answered) {
        this.deps.withdrawEnd(id);
        void this.#undo(id);
      }
    }
  }

  /** Runs what function call `id` said would undo it, once. */
  async #undo(id: string): Promise<void> {
    const entry = this.#calls.get(id);
    if (entry) entry.undone = true;
    for (const undo of entry?.undo.splice(0) ?? []) {
      try {
        await undo();
      } catch (error) {
        this.deps.logger.error("could not take back a withdrawn function call", { id, error });
      }
    }
  }
}
