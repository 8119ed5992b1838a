/**
 * Which instances of the service are alive, in the database they share: one row per running
 * process, its heartbeat refreshed while it runs and removed when it stops, so the others can tell
 * when one died holding calls (`CallRepository.endLost`).
 */
import type { Database, Statement } from "bun:sqlite";
import type { Clock } from "../clock.ts";
import type { NamedParams } from "./sql.ts";

export class InstanceRepository {
  readonly #beat: Statement<unknown, [NamedParams]>;
  readonly #leave: Statement<unknown, [string]>;

  constructor(
    db: Database,
    private readonly clock: Clock,
    private readonly owner: string,
  ) {
    this.#beat = db.prepare(
      `INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($id, $now, $now)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
    );
    this.#leave = db.prepare("DELETE FROM instances WHERE id = ?");
  }

  /** This instance is alive now. */
  beat(): void {
    this.#beat.run({ id: this.owner, now: this.clock.now().toISOString() });
  }

  /** This instance stops. */
  leave(): void {
    this.#leave.run(this.owner);
  }
}
