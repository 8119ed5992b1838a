/**
 * Console sign-ins: the SHA-256 of each `va_session` cookie and when it expires, in the database
 * every instance shares, so a cookie works on any of them and signing out ends it on all.
 */
import type { Database, Statement } from "bun:sqlite";
import type { NamedParams } from "./sql.ts";

export class SessionRepository {
  readonly #create: Statement<unknown, [NamedParams]>;
  readonly #purge: Statement<unknown, [string]>;
  readonly #active: Statement<{ found: number }, [NamedParams]>;
  readonly #end: Statement<unknown, [string]>;

  constructor(db: Database) {
    this.#create = db.prepare(
      "INSERT INTO console_sessions (token_hash, expires_at) VALUES ($hash, $expires_at)",
    );
    this.#purge = db.prepare("DELETE FROM console_sessions WHERE expires_at <= ?");
    this.#active = db.prepare(
      "SELECT 1 AS found FROM console_sessions WHERE token_hash = $hash AND expires_at > $now",
    );
    this.#end = db.prepare("DELETE FROM console_sessions WHERE token_hash = ?");
  }

  /** A new session; expired ones are cleared on the way. */
  create(hash: string, expiresAt: string, now: string): void {
    this.#purge.run(now);
    this.#create.run({ hash, expires_at: expiresAt });
  }

  active(hash: string, now: string): boolean {
    return this.#active.get({ hash, now }) !== null;
  }

  end(hash: string): void {
    this.#end.run(hash);
  }
}
