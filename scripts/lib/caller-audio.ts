/**
 * The bridge benchmark's account of caller frames: what a bridge says became of them (the service's
 * `calls.caller_audio` column, summed over every call; the reference bridge's own counters), set
 * against what the fake phones sent and the fake agent received. Unintended loss = sent − received
 * by the agent − held back by design; it must be 0.
 */
import { Database } from "bun:sqlite";
import { SQL } from "bun";

/** A bridge's frame counts over a whole run. */
export interface BridgeCallerAudio {
  /** Calls the counts cover, of the calls in the run. */
  calls: number;
  received: number;
  forwarded: number;
  /** Frames not forwarded by design, by reason (none for the reference). */
  heldBack: Record<string, number>;
  /** Reference only: frames dropped because its agent socket was not open yet (not by design). */
  droppedBeforeAgentOpen?: number;
}

interface CallerAudioColumn {
  received: number;
  forwarded: number;
  held_back: Record<string, number>;
}

/**
 * Sums `caller_audio` over the service's `calls` table (open read-only, after the service exited);
 * undefined when this build has no such column.
 */
export function readServiceCallerAudio(databasePath: string): BridgeCallerAudio | undefined {
  const db = new Database(databasePath, { readonly: true });
  try {
    const columns = db.query<{ name: string }, []>("PRAGMA table_info(calls)").all();
    if (!columns.some(({ name }) => name === "caller_audio")) return undefined;
    return summed(
      db.query<{ caller_audio: string | null }, []>("SELECT caller_audio FROM calls").all(),
    );
  } finally {
    db.close();
  }
}

/** The same, from a fleet's PostgreSQL database (after its instances exited). */
export async function readPostgresCallerAudio(url: string): Promise<BridgeCallerAudio> {
  const sql = new SQL(url, { max: 1 });
  try {
    return summed(await sql<{ caller_audio: string | null }[]>`SELECT caller_audio FROM calls`);
  } finally {
    await sql.close();
  }
}

function summed(rows: { caller_audio: string | null }[]): BridgeCallerAudio {
  const total: BridgeCallerAudio = { calls: 0, received: 0, forwarded: 0, heldBack: {} };
  for (const { caller_audio } of rows) {
    if (!caller_audio) continue;
    const counts = JSON.parse(caller_audio) as CallerAudioColumn;
    total.calls += 1;
    total.received += counts.received;
    total.forwarded += counts.forwarded;
    for (const [reason, frames] of Object.entries(counts.held_back))
      total.heldBack[reason] = (total.heldBack[reason] ?? 0) + frames;
  }
  return total;
}

/** The reference bridge's counters, from its `GET /caller-audio`. */
export async function readReferenceCallerAudio(
  base: string,
  calls: number,
): Promise<BridgeCallerAudio> {
  const counts = (await (await fetch(`${base}/caller-audio`)).json()) as {
    received: number;
    forwarded: number;
    dropped_before_agent_open: number;
  };
  return {
    calls,
    received: counts.received,
    forwarded: counts.forwarded,
    heldBack: {},
    droppedBeforeAgentOpen: counts.dropped_before_agent_open,
  };
}

/** Frames held back by design, all reasons together. */
export function heldBackTotal(audio: BridgeCallerAudio): number {
  return Object.values(audio.heldBack).reduce((sum, frames) => sum + frames, 0);
}

/** The report's lines: sent, received by the agent, held back, unintended loss, cross-checks. */
export function describeCallerAudio(
  phonesSent: number,
  agentReceived: number,
  bridge: BridgeCallerAudio | undefined,
  totalCalls: number,
): string {
  const lines = [
    `  sent by phones           ${phonesSent}`,
    `  received by the agent    ${agentReceived}`,
  ];
  if (!bridge) {
    lines.push(
      "  caller_audio: not recorded by this build",
      `  sent − received          ${phonesSent - agentReceived} (not accounted for)`,
    );
    return lines.join("\n");
  }
  const heldBack = heldBackTotal(bridge);
  const reasons = Object.entries(bridge.heldBack)
    .map(([reason, frames]) => `${reason} ${frames}`)
    .join(", ");
  lines.push(
    `  held back by design      ${heldBack}${reasons ? ` (${reasons})` : " (none by construction)"}`,
    `  unintended loss          ${phonesSent - agentReceived - heldBack} (sent − received by the agent − held back; must be 0)`,
  );
  if (bridge.droppedBeforeAgentOpen !== undefined)
    lines.push(
      `    of which dropped before the agent socket opened: ${bridge.droppedBeforeAgentOpen}`,
    );
  const check = (what: string, bridgeSays: number, measured: number, by: string) =>
    `${what} ${bridgeSays} ${bridgeSays === measured ? "=" : "≠"} ${by} ${measured}`;
  lines.push(
    `  cross-check              ${check("bridge received", bridge.received, phonesSent, "phones sent")}; ${check("forwarded", bridge.forwarded, agentReceived, "agent received")}${bridge.calls === totalCalls ? "" : `; counts for ${bridge.calls} of ${totalCalls} calls`}`,
  );
  return lines.join("\n");
}
