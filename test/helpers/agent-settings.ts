/** A complete, minimal `AgentSettings` for codec tests, with the few fields a test cares about overridden. */
import { Type } from "@sinclair/typebox";
import type { AgentFunction, AgentSettings } from "../../src/protocol/deepgram-agent.ts";

/** A look-up (speculative calls allowed) and an irreversible `end_call` (defer_until_eot). */
export const LOOK_UP_AND_END_CALL: AgentFunction[] = [
  { name: "look_up", description: "d", parameters: Type.Object({}) },
  { name: "end_call", description: "d", parameters: Type.Object({}), deferUntilEndOfTurn: true },
];

export function agentSettings(overrides: Partial<AgentSettings> = {}): AgentSettings {
  return {
    mipOptOut: true,
    listenModel: "flux-general-en",
    thinkProvider: "open_ai",
    thinkModel: "gpt-4o-mini",
    prompt: "p",
    functions: [],
    speakProvider: "deepgram",
    voice: "aura-2-thalia-en",
    ...overrides,
  };
}
