/**
 * `voice-agent --workers N`: every core of one machine, nothing to install. This process listens on
 * nothing; it prepares the database once (the SQLite lock for all its workers, migrations, the calls
 * a previous life left open), then runs N copies of itself as workers sharing the port
 * (SO_REUSEPORT: the kernel spreads connections over them) and holds what they must agree on (stream
 * tokens, the call limit, who holds each call, verdicts), served over IPC. A worker that crashes is
 * started again (its calls no longer count; its records are ended by the others' liveness); SIGTERM
 * or SIGINT goes to every worker, each drains its calls, and the supervisor exits when all have.
 */
import type { Subprocess } from "bun";
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { openStore } from "../store/index.ts";
import { lockDatabase } from "../store/instance-lock.ts";
import { migratePostgres } from "../store/postgres/migrations.ts";
import { serveWorker, type WorkerRequest } from "./ipc-coordination.ts";
import { CoordinationState } from "./local-coordination.ts";

/** Set in a worker's environment: its instance id, and its number (on its log lines). */
export const WORKER_ENV = "VOICE_AGENT_WORKER_ID";
export const WORKER_INDEX_ENV = "VOICE_AGENT_WORKER";
/** A worker that exits with these during start-up cannot succeed by being restarted. */
const EXIT_PORT_IN_USE = 75;
const EXIT_CONFIG = 78;
/** Restarts back off from one second to half a minute. */
const FIRST_RESTART_MS = 1_000;
const LAST_RESTART_MS = 30_000;
/** A worker up this long has started well: its next crash restarts it after the first delay again. */
const STARTED_WELL_MS = 60_000;
/** A scrape waits this long for the workers' metrics; one that does not answer is left out. */
const GATHER_MS = 2_000;

export interface SupervisorOptions {
  config: Config;
  logger: Logger;
  clock: Clock;
  workers: number;
  /** How to run this program again (the binary, or bun with the entry file). */
  command: string[];
  /** The environment each worker starts from. */
  env: Record<string, string | undefined>;
}

interface Worker {
  index: number;
  instance: string;
  process: Subprocess<"ignore", "inherit", "inherit">;
  startedAt: number;
}

/** @returns the exit code for this process */
export async function runSupervisor(options: SupervisorOptions): Promise<number> {
  const { config, logger, clock, workers: total } = options;
  const unlockDatabase = await prepareDatabase(config, logger, clock);
  const state = new CoordinationState(clock);
  const live = new Map<number, Worker>();
  const served = new Map<number, ReturnType<typeof serveWorker>>();
  let stopping = false;
  let fatal: number | undefined;
  const finished = Promise.withResolvers<void>();
  const count = () => ({ total, alive: live.size, activeCalls: state.held.size });
  const gathers = new MetricsGathers((index) => live.get(index)?.process);

  const start = (index: number, delayMs: number) => {
    const instance = `instance_${Bun.randomUUIDv7()}`;
    const child = Bun.spawn(options.command, {
      env: {
        ...options.env,
        [WORKER_ENV]: instance,
        [WORKER_INDEX_ENV]: String(index),
        SERVER_REUSE_PORT: "true",
        WORKERS: "1",
      },
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      serialization: "json",
      ipc: (request: WorkerRequest) => {
        if (request.type === "metrics") gathers.start(index, request.id, [...live.keys()]);
        else if (request.type === "snapshot")
          gathers.answer(request.gather, labelled(request.value, index));
        else void served.get(index)?.handle(request);
      },
    });
    const worker: Worker = { index, instance, process: child, startedAt: clock.now().getTime() };
    live.set(index, worker);
    served.set(index, serveWorker({ instance, process: child }, state, clock, count));
    logger.info("worker started", { worker: index, pid: child.pid });
    void child.exited.then(async (code) => {
      live.delete(index);
      await served.get(index)?.forget();
      served.delete(index);
      const upMs = clock.now().getTime() - worker.startedAt;
      if (stopping) {
        logger.info("worker stopped", { worker: index, code });
      } else if ((code === EXIT_PORT_IN_USE || code === EXIT_CONFIG) && upMs < STARTED_WELL_MS) {
        // Restarting would fail the same way: stop the others and exit with its code.
        logger.error("worker could not start", { worker: index, code });
        fatal ??= code;
        stop("SIGTERM");
      } else {
        const next =
          upMs >= STARTED_WELL_MS ? FIRST_RESTART_MS : Math.min(delayMs * 2, LAST_RESTART_MS);
        logger.error("worker exited; starting it again", { worker: index, code, inMs: next });
        clock.setTimeout(() => {
          if (!stopping) start(index, next);
        }, next);
      }
      if (stopping && live.size === 0) finished.resolve();
    });
  };

  /** Relays a signal to every worker, once (they ignore signals from anyone else). */
  const relay = (signal: NodeJS.Signals) => {
    for (const worker of live.values()) worker.process.send({ type: "stop", signal });
  };
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal: the workers exit at once, as a single service does.
      relay(signal);
      return;
    }
    stopping = true;
    logger.info("stopping workers", { signal, workers: live.size });
    relay(signal);
    if (live.size === 0) finished.resolve();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);

  for (let index = 0; index < total; index++) start(index, FIRST_RESTART_MS / 2);
  logger.info("supervising workers", { workers: total, port: config.server.port });
  await finished.promise;
  unlockDatabase();
  logger.info("stopped", { workers: total });
  return fatal ?? 0;
}

/**
 * A worker's metrics snapshot (prom-client's JSON) with a `worker` label on every series: each
 * worker's counters stay their own series, so a worker that restarts (from zero) or misses a
 * scrape is a reset or a gap of its own series, never a drop in a machine-wide sum.
 */
function labelled(snapshot: unknown, index: number): unknown {
  if (!Array.isArray(snapshot)) return undefined;
  for (const metric of snapshot as { values?: { labels?: Record<string, unknown> }[] }[])
    for (const value of metric.values ?? [])
      value.labels = { ...value.labels, worker: String(index) };
  return snapshot;
}

/**
 * One scrape of `/metrics` on a worker covers the machine: the supervisor asks every worker for its
 * metrics, labels each with its worker, and hands the answers (those in within GATHER_MS) to the
 * worker that asked, which writes them out together.
 */
class MetricsGathers {
  #next = 0;
  readonly #open = new Map<
    number,
    { values: unknown[]; waiting: number; done(): void; timer: ReturnType<typeof setTimeout> }
  >();

  constructor(private readonly worker: (index: number) => Pick<Subprocess, "send"> | undefined) {}

  start(requester: number, id: number, workers: number[]): void {
    const gather = this.#next++;
    const values: unknown[] = [];
    const done = () => {
      clearTimeout(entry.timer);
      this.#open.delete(gather);
      this.worker(requester)?.send({ type: "result", id, value: values });
    };
    const entry = { values, waiting: workers.length, done, timer: setTimeout(done, GATHER_MS) };
    this.#open.set(gather, entry);
    for (const index of workers) this.worker(index)?.send({ type: "snapshot", gather });
  }

  answer(gather: number, value: unknown): void {
    const entry = this.#open.get(gather);
    if (!entry) return;
    if (value !== undefined) entry.values.push(value);
    entry.waiting -= 1;
    if (entry.waiting === 0) entry.done();
  }
}

/**
 * The database, once for all workers: SQLite is locked to this supervisor (its workers share the
 * file) and a previous life's open calls are ended; both engines are migrated before any worker
 * starts, so workers never race to migrate.
 * @returns what releases the lock
 */
async function prepareDatabase(config: Config, logger: Logger, clock: Clock): Promise<() => void> {
  if (config.databaseUrl) {
    const { SQL } = await import("bun");
    const sql = new SQL(config.databaseUrl, { max: 1 });
    try {
      await migratePostgres(sql);
    } finally {
      await sql.close();
    }
    return () => {};
  }
  const unlock = lockDatabase(config.databasePath);
  try {
    const store = openStore(config.databasePath, clock, { owner: "supervisor" });
    const interrupted = store.calls.endOpen("interrupted", { mine: false });
    if (interrupted.length > 0) {
      logger.warn("ended calls a previous run left open", {
        count: interrupted.length,
        callSids: interrupted.map((call) => call.sid),
      });
    }
    store.close();
    return unlock;
  } catch (error) {
    unlock();
    throw error;
  }
}
