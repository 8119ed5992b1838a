/**
 * Coordination between the workers of one machine (`--workers`), without Redis: the supervisor
 * holds the `CoordinationState` and answers each worker's calls over the IPC channel Bun opens
 * between them (JSON messages); a worker's `IpcCoordination` forwards every call and waits for the
 * answer. A message for a call held by another worker goes through the supervisor to it.
 */
import type { Subprocess } from "bun";
import type { Clock } from "../clock.ts";
import type { CallMessage, Coordination, StreamGrant, TokenOptions } from "./coordination.ts";
import { type CoordinationState, LocalCoordination } from "./local-coordination.ts";

/** The coordination methods a worker may call. */
const METHODS = [
  "issueToken",
  "rekeyToken",
  "tokenAnswered",
  "revokeToken",
  "tokenPending",
  "redeemToken",
  "takeExpiredTokens",
  "holdCall",
  "releaseCall",
  "holder",
  "load",
  "releaseInstance",
  "send",
] as const;
type Method = (typeof METHODS)[number];

/** Worker → supervisor. */
export type WorkerRequest =
  | { type: "call"; id: number; method: Method; args: unknown[] }
  | { type: "workers"; id: number }
  /** The metrics of every worker of the machine, for one scrape. */
  | { type: "metrics"; id: number }
  /** This worker's metrics, asked for by the supervisor's gather `gather`. */
  | { type: "snapshot"; gather: number; value: unknown };
/** Supervisor → worker. */
export type SupervisorReply =
  | { type: "result"; id: number; value?: unknown }
  | { type: "error"; id: number; message: string }
  | { type: "message"; message: CallMessage }
  /** The supervisor got `signal`: drain (the first time) or exit now (the second). */
  | { type: "stop"; signal: NodeJS.Signals }
  /** The supervisor gathers every worker's metrics: this worker's, please. */
  | { type: "snapshot"; gather: number };

/** How many workers the supervisor runs, how many are up, and the calls live on all of them. */
export interface WorkerCount {
  total: number;
  alive: number;
  activeCalls: number;
}

/** A supervisor that has not answered by then is taken for gone: the call fails instead of hanging. */
export const SUPERVISOR_ANSWER_MS = 5_000;

/** JSON has no Infinity: "no limit" crosses as null. */
const encodeLimit = (limit: number) => (Number.isFinite(limit) ? limit : null);

/** A worker's side: each call goes to the supervisor. */
export class IpcCoordination implements Coordination {
  /** The machine's workers drain together: like one process, a draining worker takes no new call. */
  readonly kind = "local";
  #nextId = 0;
  readonly #pending = new Map<number, PromiseWithResolvers<unknown>>();
  #handler: ((message: CallMessage) => void) | undefined;
  #snapshot: (() => Promise<unknown>) | undefined;

  /**
   * @param send `process.send` of the worker
   * @example const coordination = new IpcCoordination(id, (m) => process.send?.(m)); process.on("message", (m) => coordination.receive(m));
   */
  constructor(
    readonly instance: string,
    /** `process.send`: false (or undefined) when the channel to the supervisor is closed. */
    private readonly sendToSupervisor: (request: WorkerRequest) => boolean | undefined,
    private readonly answerMs = SUPERVISOR_ANSWER_MS,
  ) {}

  /** A reply or a message from the supervisor (stop requests are the worker's, not this port's). */
  receive(reply: SupervisorReply): void {
    if (reply.type === "stop") return;
    if (reply.type === "snapshot") {
      const { gather } = reply;
      void (this.#snapshot?.() ?? Promise.resolve(undefined)).then(
        (value) => this.sendToSupervisor({ type: "snapshot", gather, value }),
        () => this.sendToSupervisor({ type: "snapshot", gather, value: undefined }),
      );
      return;
    }
    if (reply.type === "message") {
      this.#handler?.(reply.message);
      return;
    }
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    if (reply.type === "error") pending.reject(new Error(reply.message));
    else pending.resolve(reply.value);
  }

  #call<T>(method: Method, ...args: unknown[]): Promise<T> {
    return this.#ask<T>((id) => ({ type: "call", id, method, args }));
  }

  /** Every worker's metrics snapshot (those that answered in time), for one scrape. */
  machineSnapshots(): Promise<unknown[]> {
    return this.#ask<unknown[]>((id) => ({ type: "metrics", id }));
  }

  /** What this worker answers when the supervisor gathers metrics. */
  onSnapshot(snapshot: () => Promise<unknown>): void {
    this.#snapshot = snapshot;
  }

  /** How many workers the supervisor runs and how many are up (for `/health`). */
  workers(): Promise<WorkerCount> {
    return this.#ask<WorkerCount>((id) => ({ type: "workers", id }));
  }

  /** Sends a request and waits for its answer, at most SUPERVISOR_ANSWER_MS. */
  #ask<T>(request: (id: number) => WorkerRequest): Promise<T> {
    const id = this.#nextId++;
    const pending = Promise.withResolvers<unknown>();
    const timer = setTimeout(() => {
      this.#pending.delete(id);
      pending.reject(new Error("the supervisor did not answer"));
    }, this.answerMs);
    this.#pending.set(id, {
      ...pending,
      resolve: (value) => {
        clearTimeout(timer);
        pending.resolve(value);
      },
      reject: (error) => {
        clearTimeout(timer);
        pending.reject(error);
      },
    });
    if (!this.sendToSupervisor(request(id))) {
      this.#pending.get(id)?.reject(new Error("the supervisor is gone"));
      this.#pending.delete(id);
    }
    return pending.promise as Promise<T>;
  }

  issueToken(key: string, grant: StreamGrant, options: TokenOptions, limit: number) {
    return this.#call<string | undefined>("issueToken", key, grant, options, encodeLimit(limit));
  }
  rekeyToken(from: string, to: string) {
    return this.#call<void>("rekeyToken", from, to);
  }
  tokenAnswered(callSid: string) {
    return this.#call<void>("tokenAnswered", callSid);
  }
  revokeToken(key: string) {
    return this.#call<void>("revokeToken", key);
  }
  tokenPending(callSid: string) {
    return this.#call<boolean>("tokenPending", callSid);
  }
  redeemToken(callSid: string, presented: string | undefined) {
    return this.#call<{ grant: StreamGrant; held: boolean } | undefined>(
      "redeemToken",
      callSid,
      presented,
    );
  }
  takeExpiredTokens() {
    return this.#call<string[]>("takeExpiredTokens");
  }
  holdCall(callSid: string) {
    return this.#call<boolean>("holdCall", callSid);
  }
  releaseCall(callSid: string) {
    return this.#call<void>("releaseCall", callSid);
  }
  holder(callSid: string) {
    return this.#call<string | undefined>("holder", callSid);
  }
  load() {
    return this.#call<number>("load");
  }
  releaseInstance(instance: string) {
    return this.#call<void>("releaseInstance", instance);
  }
  send(instance: string, message: CallMessage) {
    if (instance === this.instance) {
      this.#handler?.(message);
      return Promise.resolve();
    }
    return this.#call<void>("send", instance, message);
  }
  onMessage(handler: (message: CallMessage) => void) {
    this.#handler = handler;
  }
  async close() {
    for (const pending of this.#pending.values()) pending.reject(new Error("worker stopping"));
    this.#pending.clear();
  }
}

/**
 * The supervisor's side for one worker: its calls run on its own view of the shared state, and
 * messages for it are sent down its channel. Call `forget` when the worker is gone.
 */
export function serveWorker(
  worker: { instance: string; process: Pick<Subprocess, "send"> },
  state: CoordinationState,
  clock: Clock,
  count: () => WorkerCount,
) {
  const view = new LocalCoordination(worker.instance, clock, state);
  view.onMessage((message) => worker.process.send({ type: "message", message }));
  return {
    /** One request from the worker; the answer goes back down its channel. */
    async handle(request: Extract<WorkerRequest, { type: "call" | "workers" }>): Promise<void> {
      if (request.type === "workers") {
        worker.process.send({ type: "result", id: request.id, value: count() });
        return;
      }
      try {
        if (!METHODS.includes(request.method)) throw new Error(`no method ${request.method}`);
        // JSON carries undefined in a list as null, and no Infinity: both come back here.
        const args = request.args.map((arg) => arg ?? undefined);
        if (request.method === "issueToken") args[3] = args[3] ?? Number.POSITIVE_INFINITY;
        const value = await (view[request.method] as (...a: unknown[]) => Promise<unknown>)(
          ...args,
        );
        worker.process.send({ type: "result", id: request.id, value });
      } catch (error) {
        worker.process.send({ type: "error", id: request.id, message: (error as Error).message });
      }
    },
    /** The worker is gone: its calls no longer count, messages for it are dropped. */
    async forget(): Promise<void> {
      await view.releaseInstance(worker.instance);
      await view.close();
    },
  };
}
