/**
 * What a scenario is: per call, a prompt, a greeting and tools (TypeBox parameters + handler). A new
 * use case is a new folder under src/scenarios/ exporting a `Scenario`, listed in scenarios/index.ts.
 */
import type { Static, TSchema } from "@sinclair/typebox";
import type { TransferRequest } from "../call/transfer.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { CallDirection } from "../store/calls.ts";
import type { Storage } from "../store/port.ts";

/** What a tool handler may know and do about the call it runs in. */
export interface ToolContext {
  callSid: string;
  /** The caller's number for inbound calls, the called number for outbound ones. */
  customerNumber: string;
  now: Date;
  /** Ends the call once the agent's last words have been heard. */
  endCall(reason: string): void;
  /** Hands the caller to a person once the handoff line has been heard (`transfer_call`). */
  transfer(request: TransferRequest): void;
  /**
   * Takes back what this function call did if the agent withdraws it (`FunctionCallCancelled`)
   * once it has run: for an effect stored at once that is easily undone (a callback time).
   */
  onWithdraw(undo: () => unknown): void;
}

export interface Tool<Parameters extends TSchema = TSchema> {
  name: string;
  /** Tells the LLM when to call it. */
  description: string;
  parameters: Parameters;
  /**
   * Its effect cannot be undone (ending the call, a booking, a cancellation, a lead update): the
   * agent is told to call it only once the caller's turn is confirmed (`defer_until_eot`), never
   * speculatively.
   */
  deferUntilEndOfTurn?: boolean;
  /**
   * Runs with validated arguments. Returns what the agent is told: a string, or an object sent as
   * JSON, or a promise of one (the session awaits it). Throwing or rejecting is allowed: the session
   * turns it into a sentence the agent can say.
   */
  run(args: Static<Parameters>, context: ToolContext): unknown;
}

/** Keeps the handler's argument type tied to its schema. */
export function defineTool<Parameters extends TSchema>(tool: Tool<Parameters>): Tool {
  return tool as unknown as Tool;
}

/** The call a scenario is prepared for. */
export interface ScenarioCall {
  callSid: string;
  direction: CallDirection;
  from: string;
  to: string;
  startedAt: Date;
  /**
   * The call is recorded (RECORDING=local): an outbound greeting must say so (inbound callers hear
   * INBOUND_DISCLOSURE before the agent answers).
   */
  recorded: boolean;
  /** The lead an outbound call follows up on, as the service issued it (never from the stream). */
  leadId?: string;
}

export interface ScenarioDeps {
  store: Storage;
  clock: Clock;
  logger: Logger;
}

/** What the agent needs for one call. */
export interface PreparedScenario {
  prompt: string;
  greeting: string;
  tools: Tool[];
  /** What to say to an answering machine (outbound scenarios). */
  voicemail?: string;
  /** The keypad key that asks for a person; set only when the caller can be transferred. */
  transferKey?: string;
  /**
   * Words the listen model should be primed to recognise (Flux `keyterms`): names of the business,
   * its people, its products. Few and specific; none is sent when empty.
   */
  keyterms?: string[];
}

export interface Scenario {
  id: string;
  description: string;
  /** Where the scenario's business is: its hours (TRANSFER_HOURS) are local time there. */
  timeZone: string;
  /** The keypad key that asks for a person (default "0"). */
  transferKey?: string;
  prepare(call: ScenarioCall, deps: ScenarioDeps): Promise<PreparedScenario>;
  /** Puts the data the scenario needs into the store at start-up (idempotent), e.g. bookable slots. */
  seed?(deps: ScenarioDeps): Promise<void>;
}
