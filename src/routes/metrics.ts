/**
 * `GET /metrics`: Prometheus text format, behind the same secret as `/calls` (Prometheus sends it
 * from its `authorization` settings). A worker of `--workers` answers for the whole machine: every
 * worker's series, each labelled `worker` (sum them in queries).
 */
import { Elysia, t } from "elysia";
import { METRICS_CONTENT_TYPE, type Metrics } from "../ops/metrics.ts";
import { BEARER_SECURITY, type EndpointGuard, endpointAuth } from "./auth.ts";
import { guardedErrors, responses } from "./openapi.ts";

export interface MetricsRouteDeps {
  metrics: Metrics;
  /** With --workers: every worker's snapshot, for one scrape of the machine. */
  machine?: () => Promise<unknown[]>;
  guard: EndpointGuard;
}

export function metricsRoutes({ metrics, machine, guard }: MetricsRouteDeps) {
  return new Elysia({ name: "metrics" }).use(endpointAuth(guard)).get(
    "/metrics",
    async () => {
      const text = machine
        ? await metrics.exposition((await machine()) as Awaited<ReturnType<Metrics["snapshot"]>>[])
        : await metrics.exposition();
      return new Response(text, { headers: { "content-type": METRICS_CONTENT_TYPE } });
    },
    {
      detail: {
        tags: ["Operations"],
        summary: "Prometheus metrics",
        description:
          "Calls (active, ended by end reason, outcomes), turn latency (measured and the agent's), barge-ins, function calls, agent connections and failures, Twilio webhooks, event-loop lag, and the process's CPU, memory and file descriptors. With --workers, the machine's workers added up. docs/OPERATIONS.md lists them.",
        security: BEARER_SECURITY,
        responses: responses(
          {
            200: {
              description: "Prometheus text exposition format 0.0.4",
              schema: t.String(),
              mediaType: "text/plain",
            },
          },
          ...guardedErrors(false),
        ),
      },
    },
  );
}
