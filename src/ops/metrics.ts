/**
 * The service's Prometheus metrics (`GET /metrics`), kept with prom-client. Its module takes about
 * 100 ms to load, which start-up cannot afford, so it is loaded just after the service listens;
 * what happens before that (nothing usually: the first call comes later) is kept in order and
 * replayed. Counting is never per audio frame: calls, turns, barge-ins, function calls, agent
 * connections and webhooks only. Live calls are read from the registry at each scrape.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import type * as Prom from "prom-client";
import type { CallRecorder } from "../call/session.ts";
import type { CallDirection } from "../store/calls.ts";

/** What a live call is, for `voice_agent_calls_active`. */
export interface CallLabels {
  direction: CallDirection;
  scenario: string;
}

/** Seconds buckets for a turn's latency (caller's end of turn → first agent audio). */
const TURN_BUCKETS = [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8];
const TOOL_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const CONNECT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5];
/** Events kept before prom-client has loaded; beyond this the oldest are dropped. */
const MAX_PENDING = 10_000;

/** prom-client and the service's metrics in their own registry. */
function build(prom: typeof Prom, liveCalls: () => Iterable<CallLabels>) {
  const registry = new prom.Registry();
  const registers = [registry];
  prom.collectDefaultMetrics({ register: registry });
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  new prom.Gauge({
    name: "voice_agent_calls_active",
    help: "Calls live on this process, by direction and scenario",
    labelNames: ["direction", "scenario"],
    registers,
    collect() {
      this.reset();
      for (const { direction, scenario } of liveCalls()) this.inc({ direction, scenario });
    },
  });
  new prom.Gauge({
    name: "voice_agent_event_loop_lag_seconds",
    help: "Longest event-loop delay since the previous scrape",
    registers,
    collect() {
      this.set(lag.max / 1e9);
      lag.reset();
    },
  });
  return {
    registry,
    callsTotal: new prom.Counter({
      name: "voice_agent_calls_total",
      help: "Ended calls, by direction, scenario and end reason",
      labelNames: ["direction", "scenario", "end_reason"],
      registers,
    }),
    outcomesTotal: new prom.Counter({
      name: "voice_agent_call_outcomes_total",
      help: "Ended calls by scenario and outcome",
      labelNames: ["scenario", "outcome"],
      registers,
    }),
    turnLatency: new prom.Histogram({
      name: "voice_agent_turn_latency_seconds",
      help: "Caller's end of turn to the agent's first audio: measured (sent to the phone) or as the agent reports it",
      labelNames: ["source"],
      buckets: TURN_BUCKETS,
      registers,
    }),
    bargeIns: new prom.Counter({
      name: "voice_agent_barge_ins_total",
      help: "Agent audio cut off by the caller speaking",
      registers,
    }),
    functionCalls: new prom.Counter({
      name: "voice_agent_function_calls_total",
      help: "The agent's function calls, by name and whether they succeeded",
      labelNames: ["name", "ok"],
      registers,
    }),
    functionDuration: new prom.Histogram({
      name: "voice_agent_function_call_duration_seconds",
      help: "How long function calls took",
      labelNames: ["name"],
      buckets: TOOL_BUCKETS,
      registers,
    }),
    agentConnect: new prom.Histogram({
      name: "voice_agent_agent_connect_seconds",
      help: "Opening the agent socket until its settings were applied",
      buckets: CONNECT_BUCKETS,
      registers,
    }),
    agentFailures: new prom.Counter({
      name: "voice_agent_agent_failures_total",
      help: "Agent failures: agent_error, agent_unavailable, or a dropped socket that was resumed",
      labelNames: ["reason"],
      registers,
    }),
    webhooks: new prom.Counter({
      name: "voice_agent_webhooks_total",
      help: "Twilio's webhooks, by route and the status answered",
      labelNames: ["route", "status"],
      registers,
    }),
  };
}

type Built = ReturnType<typeof build>;

export class Metrics {
  #built: Built | undefined;
  #pending: ((built: Built) => void)[] = [];
  #loading: Promise<void> | undefined;

  constructor(private readonly liveCalls: () => Iterable<CallLabels>) {}

  /** Loads prom-client (once) and applies what was counted before. */
  load(): Promise<void> {
    this.#loading ??= import("prom-client").then((prom) => {
      const built = build(prom, this.liveCalls);
      for (const apply of this.#pending) apply(built);
      this.#pending = [];
      this.#built = built;
    });
    return this.#loading;
  }

  #apply(work: (built: Built) => void): void {
    if (this.#built) work(this.#built);
    else {
      if (this.#pending.length >= MAX_PENDING) this.#pending.shift();
      this.#pending.push(work);
    }
  }

  callEnded(call: CallLabels, endReason: string, outcome: string | null): void {
    this.#apply((m) => {
      m.callsTotal.inc({ ...call, end_reason: endReason });
      if (outcome) m.outcomesTotal.inc({ scenario: call.scenario, outcome });
    });
  }

  turnLatency(source: "measured" | "agent", seconds: number): void {
    this.#apply((m) => m.turnLatency.observe({ source }, seconds));
  }

  bargeIn(): void {
    this.#apply((m) => m.bargeIns.inc());
  }

  functionCall(name: string, ok: boolean, seconds: number): void {
    this.#apply((m) => {
      m.functionCalls.inc({ name, ok: String(ok) });
      m.functionDuration.observe({ name }, seconds);
    });
  }

  agentConnected(seconds: number): void {
    this.#apply((m) => m.agentConnect.observe(seconds));
  }

  agentFailed(reason: string): void {
    this.#apply((m) => m.agentFailures.inc({ reason }));
  }

  webhook(route: string, status: number): void {
    this.#apply((m) => m.webhooks.inc({ route, status: String(status) }));
  }

  /** This process's metrics as prom-client's JSON, for a supervisor to add up. */
  async snapshot(): Promise<Prom.MetricObjectWithValues<Prom.MetricValue<string>>[]> {
    await this.load();
    return (this.#built as Built).registry.getMetricsAsJSON();
  }

  /** The Prometheus text exposition of this process, or of several snapshots added up. */
  async exposition(
    snapshots?: Prom.MetricObjectWithValues<Prom.MetricValue<string>>[][],
  ): Promise<string> {
    await this.load();
    if (!snapshots) return (this.#built as Built).registry.metrics();
    const prom = await import("prom-client");
    return prom.AggregatorRegistry.aggregate(snapshots).metrics();
  }
}

/** The content type of the exposition (Prometheus text format 0.0.4). */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * A call's recorder that also counts, for the metrics, what the call records: barge-ins, function
 * calls, turn latencies (measured and the agent's own), agent connections and failures.
 */
export function meteredRecorder(
  recorder: CallRecorder,
  metrics: Metrics,
  /** The call's tools: any other name the agent asks for is counted as `unknown`. */
  tools: ReadonlySet<string>,
): CallRecorder {
  return {
    event(event) {
      recorder.event(event);
      switch (event.kind) {
        case "barge_in":
          metrics.bargeIn();
          return;
        case "function_call":
          if (!event.data.cancelled) {
            const name = tools.has(event.data.name) ? event.data.name : "unknown";
            metrics.functionCall(name, event.data.ok, event.data.duration_ms / 1000);
          }
          return;
        case "turn":
          metrics.turnLatency("measured", event.data.latency_ms / 1000);
          return;
        case "latency":
          if (event.data.total_ms !== undefined)
            metrics.turnLatency("agent", event.data.total_ms / 1000);
          return;
        case "agent_connected":
          if (event.data.connect_ms !== undefined)
            metrics.agentConnected(event.data.connect_ms / 1000);
          return;
        case "agent_reconnected":
          metrics.agentFailed("dropped_resumed");
          return;
        default:
          return;
      }
    },
    outcome: (outcome, detail) => recorder.outcome(outcome, detail),
    ended(reason, detail, callerAudio) {
      recorder.ended(reason, detail, callerAudio);
      if (reason === "agent_error" || reason === "agent_unavailable") metrics.agentFailed(reason);
    },
  };
}
