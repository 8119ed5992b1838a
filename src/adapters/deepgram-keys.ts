/**
 * Checks a Deepgram API key the way Deepgram's REST API authenticates it: `GET /v1/projects` with
 * `Authorization: Token <key>`. Tells apart a valid key (200), a valid key without the scope to list
 * projects (403), a rejected key (401), another answer, and an API that could not be reached. Nothing
 * it returns or logs contains the key.
 */
import type { Logger } from "../log.ts";
import { describeNetworkError } from "../network-errors.ts";

export type DeepgramKeyCheck =
  /** 200: the key works; the names of the projects it can see. */
  | { verdict: "valid"; projects: string[] }
  /** 403: the key is genuine but may not list projects (a key with limited scopes). */
  | { verdict: "limited"; status: number; message: string }
  /** 401: Deepgram does not know this key. */
  | { verdict: "rejected"; status: number; message: string }
  /** Any other answer (5xx, 404 from a wrong DEEPGRAM_API_URL…): the key was not checked. */
  | { verdict: "unexpected"; status: number; message: string }
  /** No answer at all (DNS, refused connection, time-out): the key was not checked. */
  | { verdict: "unreachable"; message: string };

export interface DeepgramKeyCheckOptions {
  /** DEEPGRAM_API_URL, e.g. https://api.deepgram.com */
  apiUrl: string;
  apiKey: string;
  timeoutMs: number;
  /** Cancels the check (e.g. the service shutting down). */
  signal?: AbortSignal;
}

/** @example const check = await checkDeepgramKey({ apiUrl, apiKey, timeoutMs: 5_000 }); describeDeepgramKeyCheck(check); */
export async function checkDeepgramKey(
  options: DeepgramKeyCheckOptions,
): Promise<DeepgramKeyCheck> {
  const base = options.apiUrl.replace(/\/+$/, "");
  const hide = (text: string) =>
    options.apiKey ? text.replaceAll(options.apiKey, "[redacted]") : text;
  const timeout = AbortSignal.timeout(options.timeoutMs);
  let response: Response;
  try {
    response = await fetch(`${base}/v1/projects`, {
      headers: { Authorization: `Token ${options.apiKey}`, Accept: "application/json" },
      signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
    });
  } catch (error) {
    return {
      verdict: "unreachable",
      message: hide(describeNetworkError(error, base, options.timeoutMs)),
    };
  }
  const body = await response.text().catch(() => "");
  if (response.status === 200) {
    try {
      const projects = (JSON.parse(body) as { projects?: { name?: unknown }[] }).projects ?? [];
      return { verdict: "valid", projects: projects.map((project) => String(project.name ?? "")) };
    } catch {
      return { verdict: "valid", projects: [] };
    }
  }
  const message = hide(deepgramErrorMessage(body));
  if (response.status === 401) return { verdict: "rejected", status: 401, message };
  if (response.status === 403) return { verdict: "limited", status: 403, message };
  return { verdict: "unexpected", status: response.status, message };
}

/** Deepgram's error text from either of its error shapes ({err_code, err_msg} or {category, message}). */
function deepgramErrorMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    const text = parsed.err_msg ?? parsed.message ?? parsed.details ?? parsed.err_code;
    if (typeof text === "string") return text;
  } catch {}
  return body.slice(0, 200);
}

/** One sentence for a person: what the check found, without the key. */
export function describeDeepgramKeyCheck(check: DeepgramKeyCheck): string {
  const because = (message: string) => (message ? `: ${message}` : "");
  switch (check.verdict) {
    case "valid": {
      const { projects } = check;
      const named = projects.filter(Boolean);
      return `Deepgram accepted the API key (${projects.length} project${projects.length === 1 ? "" : "s"}${named.length > 0 ? `: ${named.join(", ")}` : ""})`;
    }
    case "limited":
      return `Deepgram accepted the API key, but it lacks the scope to list projects (HTTP 403${because(check.message)}); calls work if it may use the Voice Agent and text-to-speech`;
    case "rejected":
      return `Deepgram rejected the API key (HTTP ${check.status}${because(check.message)})`;
    case "unexpected":
      return `Deepgram answered HTTP ${check.status}${because(check.message)}; the API key could not be checked`;
    case "unreachable":
      return `could not reach Deepgram to check the API key (${check.message})`;
  }
}

/** Longest the service waits at start-up for Deepgram to answer the key check. */
export const STARTUP_KEY_CHECK_TIMEOUT_MS = 5_000;

/**
 * The service's start-up check, run in the background after listening: logs what Deepgram thinks
 * of the key (a warning when calls would fail or it could not be checked) and never throws.
 */
export async function logDeepgramKeyCheck(
  options: Omit<DeepgramKeyCheckOptions, "timeoutMs"> & { timeoutMs?: number },
  logger: Logger,
): Promise<void> {
  try {
    const check = await checkDeepgramKey({
      timeoutMs: STARTUP_KEY_CHECK_TIMEOUT_MS,
      ...options,
    });
    if (options.signal?.aborted) return;
    const text = describeDeepgramKeyCheck(check);
    const fields = { check: "GET /v1/projects", verdict: check.verdict };
    if (check.verdict === "valid" || check.verdict === "limited") logger.info(text, fields);
    else if (check.verdict === "rejected")
      logger.warn(`${text}: calls will fail until DEEPGRAM_API_KEY is corrected`, fields);
    else logger.warn(text, fields);
  } catch (error) {
    logger.warn("the Deepgram API key check failed", { error });
  }
}
