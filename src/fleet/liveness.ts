/**
 * Instances that share a database watch over each other: each beats (records that it is alive)
 * every `heartbeatMs`, and on each beat ends, as `instance_lost`, the live calls of any instance
 * silent for `lostAfterMs`: it died holding them (`kill -9`, a lost VM), so no one else would. With
 * the defaults a dead instance's calls are ended and their slots freed within 25 s of its last beat.
 */
import type { Clock, Timer } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Storage } from "../store/port.ts";

export const HEARTBEAT_MS = 5_000;
/** Four missed beats: long enough for a busy event loop or a slow database, short enough for callers. */
export const LOST_AFTER_MS = 20_000;

export interface LivenessOptions {
  heartbeatMs?: number;
  lostAfterMs?: number;
  /** An instance was found dead holding calls (their records are ended): free what else it held. */
  instanceLost?(instance: string): Promise<void>;
}

export class Liveness {
  readonly #heartbeatMs: number;
  readonly #lostAfterMs: number;
  readonly #instanceLost: (instance: string) => Promise<void>;
  #timer: Timer | undefined;
  #stopped = false;
  /** The database answered the last beat (false while it is unreachable). */
  reachable = true;

  constructor(
    private readonly store: Pick<Storage, "calls" | "instances">,
    private readonly clock: Clock,
    private readonly logger: Logger,
    {
      heartbeatMs = HEARTBEAT_MS,
      lostAfterMs = LOST_AFTER_MS,
      instanceLost = async () => {},
    }: LivenessOptions = {},
  ) {
    this.#heartbeatMs = heartbeatMs;
    this.#lostAfterMs = lostAfterMs;
    this.#instanceLost = instanceLost;
  }

  /** The first beat (awaited: this instance is known alive before it takes calls), then one a period. */
  async start(): Promise<void> {
    await this.store.instances.beat();
    this.#schedule();
  }

  /** One beat and one look for lost instances; failures are logged, never thrown. */
  async beat(): Promise<void> {
    try {
      await this.store.instances.beat();
      this.reachable = true;
      const silentSince = new Date(this.clock.now().getTime() - this.#lostAfterMs).toISOString();
      const lost = await this.store.calls.endLost(silentSince);
      if (lost.length === 0) return;
      const instances = [...new Set(lost.map((call) => call.owner ?? ""))];
      this.logger.warn("ended the calls of an instance that stopped answering", {
        count: lost.length,
        callSids: lost.map((call) => call.sid),
        instances,
      });
      for (const instance of instances) await this.#instanceLost(instance);
    } catch (error) {
      this.reachable = false;
      this.logger.error("instance heartbeat failed", { error });
    }
  }

  /** No more beats; this instance leaves (its calls have ended). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    await this.store.instances.leave();
  }

  #schedule(): void {
    this.#timer = this.clock.setTimeout(() => {
      void this.beat().finally(() => {
        if (!this.#stopped) this.#schedule();
      });
    }, this.#heartbeatMs);
  }
}
