/**
 * One call as `GET /calls/{sid}` answers it, and as the events webhook sends it: the record, its
 * lead, its duration, the agent's latency summary, the timeline, where its recording is served and
 * how the events webhook's delivery of it went.
 */
import type { CallEnding } from "../store/endings.ts";
import type { Storage } from "../store/port.ts";

/** Turns and p50/p95 of the agent's reported total latency, or null when it reported none. */
function latencySummary(timeline: { kind: string; data: unknown }[]) {
  const totals = timeline
    .filter((event) => event.kind === "latency")
    .map((event) => (event.data as { total_ms?: number }).total_ms)
    .filter((ms): ms is number => typeof ms === "number")
    .sort((a, b) => a - b);
  if (totals.length === 0) return null;
  const at = (share: number) =>
    totals[Math.min(totals.length - 1, Math.ceil(share * totals.length) - 1)] as number;
  return { turns: totals.length, p50_ms: at(0.5), p95_ms: at(0.95) };
}

/** The events webhook's delivery of an ended call, as the record shows it. */
function deliveryOf(ending: CallEnding | undefined) {
  if (!ending) return null;
  const { state, attempts, last_status, last_error, delivered_at, next_attempt_at } = ending;
  return {
    state,
    attempts,
    last_status,
    last_error,
    delivered_at,
    next_attempt_at: state === "pending" ? next_attempt_at : null,
  };
}

/**
 * @param externalUrl SERVER_EXTERNAL_URL, for the recording's link (a path without it)
 * @returns undefined when there is no such call
 */
export async function callDetail(
  { calls, leads, endings }: Pick<Storage, "calls" | "leads" | "endings">,
  sid: string,
  externalUrl: string | undefined,
) {
  const call = await calls.get(sid);
  if (!call) return undefined;
  const timeline = (await calls.events(sid)).map(({ id, at, kind, data }) => ({
    id,
    at,
    kind,
    data,
  }));
  const duration_ms = call.ended_at
    ? Date.parse(call.ended_at) - Date.parse(call.answered_at ?? call.created_at)
    : null;
  const lead = call.lead_id ? ((await leads.get(call.lead_id)) ?? null) : null;
  const recording_url =
    call.recording && !call.recording.deleted_at
      ? `${externalUrl ?? ""}/calls/${encodeURIComponent(sid)}/recording`
      : null;
  return {
    call,
    lead,
    duration_ms,
    latency: latencySummary(timeline),
    recording_url,
    delivery: deliveryOf(await endings.get(sid)),
    timeline,
  };
}
