/**
 * Checks `LLM_MODEL` against the think models Deepgram offers now: `GET /v1/agent/settings/think/models`
 * on the agent host (`@deepgram/sdk`'s `AgentThinkModelsV1Response`). Model lists drift faster than
 * any list compiled into the binary (models are added and retired), so the live list is the one to
 * believe; a model it does not offer would make every call end in the apology. Never throws.
 */
import type { AgentThinkModelsV1Response } from "@deepgram/sdk";
import type { Logger } from "../log.ts";
import { STARTUP_KEY_CHECK_TIMEOUT_MS } from "./deepgram-keys.ts";

export interface ThinkModelCheckOptions {
  /** DEEPGRAM_AGENT_URL; its host serves the agent's REST API over https (http for ws). */
  agentUrl: string;
  apiKey: string;
  provider: string;
  model: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

export type ThinkModelCheck =
  | { verdict: "offered" }
  | { verdict: "not_offered"; offered: string[] }
  | { verdict: "unchecked"; reason: string };

/** The agent host's REST base: wss://agent.deepgram.com/v1/agent/converse → https://agent.deepgram.com */
export function agentRestBase(agentUrl: string): string {
  const url = new URL(agentUrl);
  return `${url.protocol === "ws:" ? "http:" : "https:"}//${url.host}`;
}

export async function checkThinkModel(options: ThinkModelCheckOptions): Promise<ThinkModelCheck> {
  const signals = [
    AbortSignal.timeout(options.timeoutMs),
    ...(options.signal ? [options.signal] : []),
  ];
  try {
    const response = await fetch(
      `${agentRestBase(options.agentUrl)}/v1/agent/settings/think/models`,
      { headers: { Authorization: `Token ${options.apiKey}` }, signal: AbortSignal.any(signals) },
    );
    if (!response.ok) return { verdict: "unchecked", reason: `HTTP ${response.status}` };
    const body = (await response.json()) as Partial<AgentThinkModelsV1Response>;
    if (!Array.isArray(body.models)) return { verdict: "unchecked", reason: "no model list" };
    const offered = body.models
      .filter((item) => item.provider === options.provider)
      .map((item) => item.id);
    return offered.includes(options.model)
      ? { verdict: "offered" }
      : { verdict: "not_offered", offered };
  } catch (error) {
    return { verdict: "unchecked", reason: (error as Error).message };
  }
}

/** The start-up check: a warning when Deepgram does not offer the model (or could not say). */
export async function logThinkModelCheck(
  options: Omit<ThinkModelCheckOptions, "timeoutMs">,
  logger: Logger,
): Promise<void> {
  const check = await checkThinkModel({ ...options, timeoutMs: STARTUP_KEY_CHECK_TIMEOUT_MS });
  if (options.signal?.aborted) return;
  const { provider, model } = options;
  if (check.verdict === "offered") logger.info("Deepgram offers LLM_MODEL", { provider, model });
  else if (check.verdict === "not_offered")
    logger.warn(
      `Deepgram does not offer LLM_MODEL=${model} for ${provider} now; calls would end in the apology. Offered: ${check.offered.join(", ") || "none"}`,
    );
  else
    logger.warn("could not check LLM_MODEL against Deepgram's model list", {
      reason: check.reason,
    });
}
