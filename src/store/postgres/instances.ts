/** Which instances are alive, on PostgreSQL: as the SQLite `InstanceRepository` (`../instances.ts`). */
import type { SQL } from "bun";
import type { Clock } from "../../clock.ts";
import type { InstanceStore } from "../port.ts";

export class PostgresInstanceStore implements InstanceStore {
  constructor(
    private readonly sql: SQL,
    private readonly clock: Clock,
    private readonly owner: string,
  ) {}

  async beat(): Promise<void> {
    const now = this.clock.now().toISOString();
    await this.sql`
      INSERT INTO instances (id, started_at, heartbeat_at) VALUES (${this.owner}, ${now}, ${now})
      ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`;
  }

  async leave(): Promise<void> {
    await this.sql`DELETE FROM instances WHERE id = ${this.owner}`;
  }
}
