/**
 * The running service: opens the store, builds the app, listens, and shuts down in order — stop
 * taking calls, let live ones finish within the drain time, hang up the rest, close the database.
 */
import { deepgramAgentConnector } from "./adapters/deepgram-agent.ts";
import { logDeepgramKeyCheck } from "./adapters/deepgram-keys.ts";
import { logThinkModelCheck } from "./adapters/deepgram-models.ts";
import { deepgramTts } from "./adapters/deepgram-tts.ts";
import { TwilioRest } from "./adapters/twilio-rest.ts";
import { type App, createApp } from "./app.ts";
import { loadPrompts } from "./assets/prompts.ts";
import { CallBridge } from "./call/bridge.ts";
import { Recordings } from "./call/recording.ts";
import { CallRegistry } from "./call/registry.ts";
import { type AgentConnector, CallSession } from "./call/session.ts";
import { Dialer } from "./campaigns/dialer.ts";
import { type Clock, systemClock, type Timer } from "./clock.ts";
import { type Config, ConfigError, configWarnings, integrationStatus } from "./config.ts";
import type { Coordination } from "./fleet/coordination.ts";
import type { IpcCoordination } from "./fleet/ipc-coordination.ts";
import { Liveness } from "./fleet/liveness.ts";
import { LocalCoordination } from "./fleet/local-coordination.ts";
import { openRedisCoordination, RedisCoordination } from "./fleet/redis-coordination.ts";
import type { Logger } from "./log.ts";
import { CallEndings } from "./ops/call-endings.ts";
import { type CallLabels, Metrics } from "./ops/metrics.ts";
import { placeOutboundCall } from "./routes/make-call.ts";
import { builtInScenarios } from "./scenarios/index.ts";
import type { Scenario } from "./scenarios/types.ts";
import { openStore } from "./store/index.ts";
import { lockDatabase } from "./store/instance-lock.ts";
import type { Storage } from "./store/port.ts";
import { openPostgresStorage } from "./store/postgres/index.ts";
import { sqliteStorage } from "./store/sqlite-storage.ts";
import { VERSION } from "./version.ts";

export interface Service {
  readonly app: App;
  readonly store: Storage;
  readonly calls: CallRegistry;
  readonly bridge: CallBridge;
  readonly coordination: Coordination;
  /** The campaign dialer, running when Twilio and Deepgram are configured. */
  readonly dialer: Dialer | undefined;
  /** Base URL the server listens on, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  readonly port: number;
  /**
   * With RECORDING_RETENTION_DAYS: deletes the recordings past it now (also done hourly) and notes
   * it on their calls' records. @returns those calls
   */
  expireRecordings(): Promise<string[]>;
  /** Idempotent; resolves once the server and the database are closed. */
  shutdown(reason: string): Promise<void>;
}

/** Longest wait for Deepgram to start streaming synthesised speech. */
const TTS_TIMEOUT_MS = 15_000;
/** At shutdown, how long requests already being answered may take before their sockets close. */
const IN_FLIGHT_GRACE_MS = 1_000;
/** How often calls whose stream never came are looked for (their tokens live 30 s and more). */
const TOKEN_SWEEP_MS = 5_000;
/** How often recordings past RECORDING_RETENTION_DAYS are looked for. */
const RECORDING_SWEEP_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** How often the outbox of ended calls is looked at, and how long after a call's end at first. */
const ENDINGS_POLL_MS = 1_000;
const ENDINGS_SETTLE_MS = 1_000;
/** How often the campaign dialer looks for due attempts and ended calls. */
const DIALER_POLL_MS = 1_000;

/** Parts tests (and the demo) may swap; production uses the defaults. */
export interface ServiceOverrides {
  /** How often, and how soon after a call ended, ended calls are counted and delivered. */
  endings?: { pollMs?: number; settleMs?: number };
  /**
   * How often the campaign dialer runs a round (tests call `dialer.tick()` themselves), and how
   * long after its call ended an attempt is settled.
   */
  dialer?: { pollMs?: number; settleMs?: number };
  scenarios?: ReadonlyMap<string, Scenario>;
  clock?: Clock;
  connectAgent?: AgentConnector;
  /**
   * One of a supervisor's workers (`--workers`): this instance's id and its channel to the
   * supervisor, which coordinates the machine's workers unless REDIS_URL puts them in a fleet
   * the supervisor). The supervisor holds the SQLite lock and ended a previous life's calls.
   */
  worker?: { instance: string; supervisor: IpcCoordination };
}

/** @example const service = await startService(loadConfig(process.env), logger); await service.shutdown("SIGTERM"); */
export async function startService(
  config: Config,
  logger: Logger,
  overrides: ServiceOverrides = {},
): Promise<Service> {
  const clock = overrides.clock ?? systemClock;
  const scenarios = overrides.scenarios ?? builtInScenarios;
  checkServeConfig(config, scenarios);
  /** This process among the service's instances: the owner on the calls it holds. */
  const instance = overrides.worker?.instance ?? `instance_${Bun.randomUUIDv7()}`;
  const { store, unlockDatabase } = await openStorage(
    config,
    clock,
    logger,
    instance,
    overrides.worker !== undefined,
  );
  const calls = new CallRegistry();
  const metrics = new Metrics(() => liveCallLabels(calls));
  let coordination: Coordination;
  try {
    // With Redis, every instance (every worker too) coordinates through it, across machines.
    coordination = config.redis.url
      ? await openRedisCoordination(config.redis.url, instance, clock, {
          prefix: config.redis.keyPrefix,
          heartbeatMs: config.instances.heartbeatMs,
          aliveMs: config.instances.lostAfterMs,
          logger,
        })
      : (overrides.worker?.supervisor ?? new LocalCoordination(instance, clock));
  } catch (error) {
    await store.close();
    unlockDatabase();
    throw error;
  }
  if (config.databaseUrl && !config.redis.url) {
    logger.warn(
      "DATABASE_URL without REDIS_URL: run one instance, or set REDIS_URL so that instances share stream tokens and the call limit",
    );
  }
  const { accountSid, authToken } = config.twilio;
  const twilio =
    accountSid && authToken
      ? new TwilioRest({ accountSid, authToken, apiUrl: config.twilio.apiUrl })
      : undefined;
  for (const scenario of scenarios.values()) await scenario.seed?.({ store, clock, logger });
  const recordings =
    config.recording.mode === "local" ? new Recordings(config.recording.dir, logger) : undefined;
  /** Files a crash left growing get their real sizes, and their calls say they have one. */
  const repairRecordings = async () => {
    if (!recordings) return;
    for (const { callSid, info } of await recordings.repair(clock.now().getTime())) {
      await store.calls
        .update(callSid, { recording: info })
        .catch((error: unknown) =>
          logger.error("could not record a repaired recording", { error }),
        );
    }
  };
  if (recordings) {
    await recordings.prepare();
    await repairRecordings();
  }
  const bridge = new CallBridge({
    config,
    store,
    calls,
    coordination,
    scenarios,
    connectAgent:
      overrides.connectAgent ??
      deepgramAgentConnector({
        url: config.deepgram.agentUrl,
        apiKey: config.deepgram.apiKey ?? "",
        connectTimeoutMs: config.calls.agentConnectTimeoutMs,
        keepAliveMs: config.calls.agentKeepAliveMs,
        clock,
        logger,
      }),
    ...(twilio ? { telephony: twilio } : {}),
    tts: deepgramTts({
      apiUrl: config.deepgram.apiUrl,
      apiKey: config.deepgram.apiKey ?? "",
      model: config.agent.voiceModel,
      timeoutMs: TTS_TIMEOUT_MS,
      mipOptOut: config.deepgram.mipOptOut,
    }),
    apologyAudio: (await loadPrompts()).apology,
    ...(recordings ? { recordings } : {}),
    metrics,
    clock,
    logger,
  });
  for (const warning of configWarnings(config)) logger.warn(warning);
  const secretLength = config.server.endpointSecret?.length ?? 0;
  if (secretLength > 0 && secretLength < STRONG_SECRET_LENGTH) {
    logger.warn(
      `ENDPOINT_SECRET is shorter than ${STRONG_SECRET_LENGTH} characters; make a longer one with: openssl rand -hex 32`,
    );
  }
  if (!config.twilio.validateSignatures) {
    logger.warn(
      "TWILIO_VALIDATE_SIGNATURES is off: Twilio webhooks are accepted unsigned; never use this in production",
    );
  }
  if (config.calls.allowDevStreams) {
    logger.warn(
      "ALLOW_DEV_STREAMS is on: media streams are bridged without a token; never use this in production",
    );
  }
  const liveness = new Liveness(store, clock, logger, {
    ...config.instances,
    instanceLost: (lost) => coordination.releaseInstance(lost),
  });
  const supervisor = overrides.worker?.supervisor;
  const app = createApp({
    config,
    calls,
    bridge,
    store,
    coordination,
    twilio,
    clock,
    logger,
    version: VERSION,
    unreachable: () => [
      ...(liveness.reachable ? [] : ["database" as const]),
      ...(coordination instanceof RedisCoordination && !coordination.reachable
        ? ["redis" as const]
        : []),
    ],
    ...(overrides.worker ? { machine: machineOf(overrides.worker.supervisor, coordination) } : {}),
    metrics,
    ...(supervisor ? { machineMetrics: () => supervisor.machineSnapshots() } : {}),
  });
  supervisor?.onSnapshot(() => metrics.snapshot());
  try {
    app.listen({ hostname: config.server.host, port: config.server.port });
  } catch (error) {
    await coordination.close();
    await store.close();
    unlockDatabase();
    if ((error as { code?: unknown }).code === "EADDRINUSE")
      throw new PortInUseError(config.server.host, config.server.port);
    throw error;
  }
  const server = app.server;
  if (!server) throw new Error("server did not start");
  // Only once this process holds the database and the port: the calls a previous run left open.
  // On SQLite this is the only instance, so every open record is a previous life's; on a shared
  // database the others' calls are theirs, and a dead instance's are ended by liveness.
  if (store.engine === "sqlite" && !overrides.worker) {
    const interrupted = await store.calls.endOpen("interrupted", { mine: false });
    if (interrupted.length > 0) {
      logger.warn("ended calls a previous run left open", {
        count: interrupted.length,
        callSids: interrupted.map((call) => call.sid),
      });
    }
  }
  // A verdict or the end of a call this instance holds, from whichever instance Twilio's callback
  // reached.
  coordination.onMessage((message) => bridge.deliver(message));
  await liveness.start();
  const port = server.port ?? config.server.port;
  const url = `http://${server.hostname === "0.0.0.0" ? "127.0.0.1" : server.hostname}:${port}`;

  const integrations = integrationStatus(config);
  logger.info("listening", { url, host: config.server.host, port, version: VERSION, integrations });
  for (const [name, status] of Object.entries(integrations)) {
    if (!status.configured) logger.warn(`${name} not configured`, { missing: status.missing });
  }
  // After listening and in the background: a wrong Deepgram key is in the log before the first call.
  const keyCheck = new AbortController();
  const { apiKey, apiUrl } = config.deepgram;
  if (apiKey) {
    void logDeepgramKeyCheck({ apiUrl, apiKey, signal: keyCheck.signal }, logger);
    const { llmProvider: provider, llmModel: model } = config.agent;
    const { agentUrl } = config.deepgram;
    void logThinkModelCheck({ agentUrl, apiKey, provider, model, signal: keyCheck.signal }, logger);
  }

  const endings = new CallEndings({
    store,
    metrics,
    clock,
    logger,
    webhook: config.eventsWebhook,
    externalUrl: config.server.externalUrl,
    pollMs: overrides.endings?.pollMs ?? ENDINGS_POLL_MS,
    settleMs: overrides.endings?.settleMs ?? ENDINGS_SETTLE_MS,
  });
  endings.start();
  const canDial = twilio && integrations.twilio.configured && integrations.deepgram.configured;
  const dialer = canDial
    ? new Dialer({
        store,
        coordination,
        clock,
        logger,
        instance,
        maxConcurrent: config.calls.maxConcurrent,
        inboundHeadroom: config.calls.campaignInboundHeadroom,
        pollMs: overrides.dialer?.pollMs ?? DIALER_POLL_MS,
        ...(overrides.dialer?.settleMs === undefined
          ? {}
          : { settleMs: overrides.dialer.settleMs }),
        place: async (campaign, attempt, options) =>
          (
            await placeOutboundCall(
              { config, store, calls, coordination, twilio, logger },
              { to: attempt.phone, lead_id: attempt.lead_id },
              { from: campaign.from, ...options },
            )
          ).call_sid,
      })
    : undefined;
  dialer?.start();
  // prom-client takes ~100 ms to load: after listening, not before.
  void metrics
    .load()
    .catch((error: unknown) => logger.error("could not load the metrics", { error }));

  let sweep: Timer | undefined;
  const sweepStreamlessCalls = () => {
    sweep = clock.setTimeout(sweepStreamlessCalls, TOKEN_SWEEP_MS);
    // Sweeps may overlap on a slow store: each takes its own expired tokens, so none twice.
    void bridge.endStreamlessCalls();
  };
  sweepStreamlessCalls();

  const expireRecordings = async (): Promise<string[]> => {
    const days = config.recording.retentionDays;
    if (!days) return [];
    const expiry = new Recordings(config.recording.dir, logger);
    const deleted = await expiry.deleteOlderThan(clock.now().getTime() - days * DAY_MS);
    const at = clock.now().toISOString();
    for (const callSid of deleted) {
      const recording = (await store.calls.get(callSid))?.recording;
      if (recording)
        await store.calls.update(callSid, { recording: { ...recording, deleted_at: at } });
    }
    if (deleted.length > 0)
      logger.info("recordings past their retention deleted", { count: deleted.length });
    return deleted;
  };
  // Hourly: files left growing by a crash a moment before this start (too recent to tell from a
  // live one then), and recordings past their retention.
  let recordingSweep: Timer | undefined;
  const sweepRecordings = () => {
    recordingSweep = clock.setTimeout(() => {
      sweepRecordings();
      repairRecordings()
        .then(expireRecordings)
        .catch((error: unknown) => logger.error("could not look after the recordings", { error }));
    }, RECORDING_SWEEP_MS);
  };
  if (recordings || config.recording.retentionDays) sweepRecordings();
  if (config.recording.retentionDays)
    void expireRecordings().catch((error: unknown) =>
      logger.error("could not delete expired recordings", { error }),
    );

  let stopped: Promise<void> | undefined;
  const stop = async (reason: string) => {
    await dialer?.stop();
    sweep?.cancel();
    recordingSweep?.cancel();
    keyCheck.abort();
    const drainMs = config.server.shutdownDrainMs;
    calls.stopAccepting();
    logger.info("shutting down", { reason, activeCalls: calls.size, drainMs });
    if (!(await calls.waitUntilEmpty(drainMs))) {
      logger.warn("drain time over, hanging up live calls", { activeCalls: calls.size });
      await calls.hangUpAll("service shutting down", config.server.shutdownGoodbyeMs);
    }
    // No new connections; requests in flight get a moment to finish (a webhook cut off here would
    // be retried by the balancer on another instance and refused there as a duplicate). Then every
    // socket closes, also the idle and never-started ones a client would keep open.
    void server.stop(false);
    const graceEnds = performance.now() + IN_FLIGHT_GRACE_MS;
    while (server.pendingRequests > 0 && performance.now() < graceEnds) await Bun.sleep(10);
    await app.stop(true);
    await liveness
      .stop()
      .catch((error: unknown) => logger.error("could not leave the instances table", { error }));
    await coordination
      .close()
      .catch((error: unknown) => logger.error("could not leave the coordination", { error }));
    // The calls' recordings written out and their records told, before the store closes.
    await recordings?.settled();
    await endings.stop();
    await store.close();
    unlockDatabase();
    logger.info("stopped", { reason });
  };

  return {
    app,
    store,
    calls,
    bridge,
    coordination,
    dialer,
    url,
    port,
    expireRecordings,
    shutdown(reason) {
      stopped ??= stop(reason);
      return stopped;
    },
  };
}

/** What each live call is, for `voice_agent_calls_active`. */
function* liveCallLabels(calls: CallRegistry): Iterable<CallLabels> {
  for (const call of calls.values()) if (call instanceof CallSession) yield call.labels;
}

/**
 * What a worker's `/health` says about its machine: the supervisor's count of workers, and the
 * machine's live calls when the supervisor coordinates them (with Redis, only this worker's).
 */
function machineOf(supervisor: IpcCoordination, coordination: Coordination) {
  return async () => {
    const count = await supervisor.workers();
    return coordination === supervisor ? count : { ...count, activeCalls: undefined };
  };
}

/**
 * The configured storage: PostgreSQL when DATABASE_URL is set (shared, no lock: instances watch
 * each other through liveness), otherwise the SQLite file, locked to this process.
 */
async function openStorage(
  config: Config,
  clock: Clock,
  logger: Logger,
  owner: string,
  /** A worker of a supervisor, which holds the SQLite lock for all its workers. */
  worker: boolean,
): Promise<{ store: Storage; unlockDatabase: () => void }> {
  const onWriteFailure = (error: unknown, failed: number) =>
    logger.error("call events could not be written", { failed, error });
  const flushIntervalMs = config.callEventsFlushMs;
  if (config.databaseUrl) {
    const store = await openPostgresStorage(config.databaseUrl, clock, {
      owner,
      flushIntervalMs,
      onWriteFailure,
    });
    return { store, unlockDatabase: () => {} };
  }
  const unlockDatabase = worker ? () => {} : lockDatabase(config.databasePath);
  try {
    const sqlite = openStore(config.databasePath, clock, {
      owner,
      flushIntervalMs,
      onWriteFailure,
    });
    return { store: sqliteStorage(sqlite), unlockDatabase };
  } catch (error) {
    unlockDatabase();
    throw error;
  }
}

/** Another process listens on the port, and SERVER_REUSE_PORT does not ask to share it. */
export class PortInUseError extends Error {
  constructor(host: string, port: number) {
    super(
      `port ${port} on ${host} is already in use (another voice-agent?): stop it or set SERVER_PORT; SERVER_REUSE_PORT=true shares it deliberately`,
    );
    this.name = "PortInUseError";
  }
}

/** Below this length ENDPOINT_SECRET is accepted with a warning (below 16 it is refused). */
const STRONG_SECRET_LENGTH = 32;

/**
 * What serving needs beyond each variable being valid: scenario ids named in the configuration
 * exist in this build, and a service that can place calls has a secret guarding that.
 */
function checkServeConfig(config: Config, scenarios: ReadonlyMap<string, Scenario>): void {
  const known = [...scenarios.keys()].join(", ");
  const problems: string[] = [];
  if (integrationStatus(config).twilio.configured && !config.server.endpointSecret) {
    problems.push(
      "ENDPOINT_SECRET: required once Twilio is configured, or anyone who can reach the service could place calls; make one with: openssl rand -hex 32 (or run voice-agent setup)",
    );
  }
  if (!scenarios.has(config.calls.defaultScenario)) {
    problems.push(
      `DEFAULT_SCENARIO: unknown scenario ${config.calls.defaultScenario} (known: ${known})`,
    );
  }
  for (const [number, id] of config.calls.inboundScenarios) {
    if (!scenarios.has(id))
      problems.push(`INBOUND_SCENARIOS: ${number} names unknown scenario ${id} (known: ${known})`);
  }
  for (const [name, ids] of [
    ["TRANSFER_NUMBERS", config.transfer.numbers.keys()],
    ["TRANSFER_HOURS", config.transfer.hours.keys()],
  ] as const) {
    for (const id of ids)
      if (!scenarios.has(id)) problems.push(`${name}: unknown scenario ${id} (known: ${known})`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
}
