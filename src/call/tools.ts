/**
 * Runs one agent function call: parse the JSON arguments, validate them against the tool's TypeBox
 * schema, run the handler with a time limit. Never throws: every failure becomes a sentence the
 * agent can act on.
 */
import { Value } from "@sinclair/typebox/value";
import type { Clock } from "../clock.ts";
import type { Tool, ToolContext } from "../scenarios/types.ts";
import { reasonOf } from "../schema-errors.ts";

export interface ToolOutcome {
  /** What goes back to the agent in FunctionCallResponse.content. */
  content: string;
  ok: boolean;
  /** Parsed arguments (or the raw string when they were not JSON), for the call timeline. */
  arguments: unknown;
  durationMs: number;
}

function argumentProblem(tool: Tool, args: unknown): string | undefined {
  const first = Value.Errors(tool.parameters, args).First();
  if (!first) return undefined;
  const field = first.path.replace(/^\//, "").replaceAll("/", ".") || "arguments";
  return `${field}: ${reasonOf(first)}`;
}

function timeout(clock: Clock, ms: number): { promise: Promise<never>; cancel(): void } {
  let cancel = () => {};
  const promise = new Promise<never>((_, reject) => {
    const timer = clock.setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    cancel = () => timer.cancel();
  });
  return { promise, cancel };
}

/**
 * @example await runTool(tools.get(name), '{"date":"2026-03-03"}', context, clock, 10_000)
 */
export async function runTool(
  tool: Tool | undefined,
  name: string,
  rawArguments: string,
  context: ToolContext,
  clock: Clock,
  timeoutMs: number,
): Promise<ToolOutcome> {
  const started = clock.now().getTime();
  const done = (ok: boolean, content: string, args: unknown): ToolOutcome => ({
    ok,
    content,
    arguments: args,
    durationMs: clock.now().getTime() - started,
  });
  if (!tool)
    return done(false, `There is no function called ${name}. Continue without it.`, rawArguments);
  let args: unknown;
  try {
    args = rawArguments.trim() === "" ? {} : JSON.parse(rawArguments);
  } catch {
    return done(
      false,
      `The arguments for ${name} were not valid JSON. Try the call again.`,
      rawArguments,
    );
  }
  const problem = argumentProblem(tool, args);
  if (problem) {
    return done(
      false,
      `The arguments for ${name} were invalid (${problem}). Ask the caller for that detail and try again.`,
      args,
    );
  }
  const limit = timeout(clock, timeoutMs);
  try {
    const result = await Promise.race([
      Promise.resolve().then(() => tool.run(args, context)),
      limit.promise,
    ]);
    return done(true, typeof result === "string" ? result : JSON.stringify(result ?? null), args);
  } catch (error) {
    const why = (error as Error).message?.startsWith("timed out") ? "took too long" : "failed";
    return done(
      false,
      `The ${name} system ${why}. Apologise, say it could not be done right now, and offer another way to help.`,
      args,
    );
  } finally {
    limit.cancel();
  }
}
