/**
 * Deepgram's LatencyReport as the call's timeline keeps it: each figure in whole milliseconds under
 * its own name, figures the report leaves out left out.
 */
import type { AgentMessage } from "../protocol/deepgram-agent.ts";
import type { LatencyFigures } from "../store/calls.ts";

/** A LatencyReport's figures in milliseconds, as the timeline keeps every duration. */
export function latencyMs(report: AgentMessage<"LatencyReport">): LatencyFigures {
  const ms = (seconds: number | undefined) =>
    seconds === undefined ? undefined : Math.round(seconds * 1000);
  const figures: LatencyFigures = {};
  for (const [key, field] of LATENCY_FIELDS) {
    const value = ms(report[field]);
    if (value !== undefined) figures[key] = value;
  }
  return figures;
}

const LATENCY_FIELDS = [
  ["total_ms", "total_latency"],
  ["tts_ms", "tts_latency"],
  ["stt_ms", "stt_latency"],
  ["ttt_token_ms", "ttt_token_latency"],
  ["ttt_text_ms", "ttt_text_latency"],
  ["ttt_tool_ms", "ttt_tool_latency"],
  ["ttt_thinking_ms", "ttt_thinking_latency"],
] as const satisfies readonly (readonly [
  keyof LatencyFigures,
  keyof AgentMessage<"LatencyReport">,
])[];
