/** Console sign-ins on PostgreSQL: as the SQLite `SessionRepository` (`../sessions.ts`). */
import type { SQL } from "bun";
import type { SessionStore } from "../port.ts";

export class PostgresSessionStore implements SessionStore {
  constructor(private readonly sql: SQL) {}

  async create(hash: string, expiresAt: string, now: string): Promise<void> {
    await this.sql`DELETE FROM console_sessions WHERE expires_at <= ${now}`;
    await this
      .sql`INSERT INTO console_sessions (token_hash, expires_at) VALUES (${hash}, ${expiresAt})`;
  }

  async active(hash: string, now: string): Promise<boolean> {
    const rows = await this.sql`
      SELECT 1 FROM console_sessions WHERE token_hash = ${hash} AND expires_at > ${now}`;
    return rows.length > 0;
  }

  async end(hash: string): Promise<void> {
    await this.sql`DELETE FROM console_sessions WHERE token_hash = ${hash}`;
  }
}
