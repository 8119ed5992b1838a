/** Builds the HTTP/WebSocket application from its dependencies: routes, docs and the one error handler. */
import { join } from "node:path";
import { Elysia } from "elysia";
import type { CallBridge } from "./call/bridge.ts";
import type { CallRegistry } from "./call/registry.ts";
import type { Clock } from "./clock.ts";
import { type Config, integrationStatus } from "./config.ts";
import type { Coordination } from "./fleet/coordination.ts";
import type { Logger } from "./log.ts";
import { ConsoleFeed } from "./ops/console-feed.ts";
import { ConsoleSessions } from "./ops/console-sessions.ts";
import type { Metrics } from "./ops/metrics.ts";
import { accessLog } from "./routes/access-log.ts";
import { EndpointGuard } from "./routes/auth.ts";
import { MAX_BODY_BYTES } from "./routes/body.ts";
import { callRoutes } from "./routes/calls.ts";
import { campaignRoutes } from "./routes/campaigns.ts";
import { ClientAddresses } from "./routes/client-address.ts";
import { consoleRoutes } from "./routes/console.ts";
import { dncRoutes } from "./routes/dnc.ts";
import { docsRoutes } from "./routes/docs.ts";
import { errorHandler } from "./routes/errors.ts";
import { healthRoutes } from "./routes/health.ts";
import { leadImportRoutes, leadRoutes } from "./routes/leads.ts";
import { type CallPlacer, makeCallRoutes } from "./routes/make-call.ts";
import { mediaStreamRoutes } from "./routes/media-stream.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { recordingRoutes } from "./routes/recordings.ts";
import { FailureThrottle } from "./routes/throttle.ts";
import { transferRoutes } from "./routes/transfer.ts";
import { twilioWebhookRoutes } from "./routes/twilio-webhooks.ts";
import type { Storage } from "./store/port.ts";

/** Largest WebSocket message accepted; Twilio's are under 1 KB, bigger ones close the socket (1009). */
export const MAX_WS_MESSAGE_BYTES = 64 * 1024;

export interface AppDeps {
  config: Config;
  calls: CallRegistry;
  bridge: CallBridge;
  store: Storage;
  /** Tokens, capacity and who holds each live call, shared by the instances of the service. */
  coordination: Coordination;
  /** Twilio REST, when its credentials are configured. */
  twilio: CallPlacer | undefined;
  clock: Clock;
  logger: Logger;
  version: string;
  /** The shared services this instance cannot reach now (the database, Redis). */
  unreachable?(): ("database" | "redis")[];
  /** With --workers: the machine's workers, and its live calls when the supervisor counts them. */
  machine?(): Promise<{ total: number; alive: number; activeCalls: number | undefined }>;
  metrics: Metrics;
  /** With --workers: every worker's metrics snapshot, so that one scrape covers the machine. */
  machineMetrics?(): Promise<unknown[]>;
}

/** Twilio's webhooks, counted by route and status in the metrics. */
const WEBHOOK_PATHS = new Set([
  "/incoming-call",
  "/amd-result",
  "/call-status",
  "/stream-status",
  "/transfer-result",
  "/transfer-whisper",
]);

/**
 * @example const app = createApp(deps); const res = await app.handle(new Request("http://localhost/health"));
 */
export function createApp(deps: AppDeps) {
  const clients = new ClientAddresses(deps.config.server.trustedProxies, deps.logger);
  const guard = new EndpointGuard({
    secret: deps.config.server.endpointSecret,
    externalUrl: deps.config.server.externalUrl,
    clients,
    throttle: new FailureThrottle(deps.clock),
  });
  const sessions = new ConsoleSessions(
    deps.store.sessions,
    deps.clock,
    deps.config.server.externalUrl?.startsWith("https:") ?? false,
  );
  return new Elysia({
    websocket: { maxPayloadLength: MAX_WS_MESSAGE_BYTES },
    // Bun refuses bigger bodies before routing; each route group reads within its own, smaller limit.
    // Without SERVER_REUSE_PORT a second instance on the same port fails to start, not split the calls.
    serve: { maxRequestBodySize: MAX_BODY_BYTES, reusePort: deps.config.server.reusePort },
  })
    .use(
      accessLog(deps.logger, (path, status) => {
        if (WEBHOOK_PATHS.has(path)) deps.metrics.webhook(path, status);
      }),
    )
    .use(errorHandler(deps.logger))
    .use(docsRoutes({ version: deps.version, externalUrl: deps.config.server.externalUrl }))
    .use(
      healthRoutes({
        version: deps.version,
        secret: deps.config.server.endpointSecret,
        integrations: integrationStatus(deps.config),
        activeCalls: () => deps.calls.size,
        draining: () => deps.calls.draining,
        ...(deps.machine ? { machine: deps.machine } : {}),
        ...(deps.unreachable ? { unreachable: deps.unreachable } : {}),
      }),
    )
    .use(mediaStreamRoutes({ ...deps, clients }))
    .use(twilioWebhookRoutes(deps))
    .use(transferRoutes(deps))
    .use(callRoutes(deps.store, guard, deps.config.server.externalUrl))
    .use(
      metricsRoutes({
        metrics: deps.metrics,
        guard,
        ...(deps.machineMetrics ? { machine: deps.machineMetrics } : {}),
      }),
    )
    .use(
      recordingRoutes({
        calls: deps.store.calls,
        pathOf: (file) => join(deps.config.recording.dir, file),
        guard,
        sessions,
      }),
    )
    .use(
      consoleRoutes({
        ...deps,
        guard,
        sessions,
        feed: new ConsoleFeed(deps.store, deps.clock, deps.logger),
      }),
    )
    .use(leadRoutes(deps.store.leads, guard))
    .use(leadImportRoutes(deps.store.leads, guard))
    .use(dncRoutes({ dnc: deps.store.dnc, guard, clock: deps.clock }))
    .use(
      campaignRoutes({
        campaigns: deps.store.campaigns,
        leads: deps.store.leads,
        guard,
        clock: deps.clock,
        config: deps.config,
      }),
    )
    .use(makeCallRoutes({ ...deps, guard }));
}

export type App = ReturnType<typeof createApp>;
