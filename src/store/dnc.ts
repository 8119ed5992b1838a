/**
 * The do-not-call list: numbers (E.164) that no outbound call may ring, whoever places it (the API,
 * the console, a campaign). Added by an operator (`POST /dnc`) or by the agent when a lead asks
 * not to be called again; removed only by an operator.
 */
import type { Database, Statement } from "bun:sqlite";
import type { NamedParams } from "./sql.ts";

export interface DncEntry {
  number: string;
  reason: string | null;
  source: "api" | "agent";
  added_at: string;
}

export type NewDncEntry = Omit<DncEntry, "added_at">;

export class DncRepository {
  readonly #add: Statement<{ number: string }, [NamedParams]>;
  readonly #remove: Statement<{ number: string }, [string]>;
  readonly #get: Statement<DncEntry, [string]>;
  readonly #page: Statement<DncEntry, [NamedParams]>;

  constructor(private readonly db: Database) {
    this.#add = db.prepare(
      `INSERT INTO dnc (number, reason, source, added_at) VALUES ($number, $reason, $source, $at)
       ON CONFLICT (number) DO NOTHING RETURNING number`,
    );
    this.#remove = db.prepare("DELETE FROM dnc WHERE number = ? RETURNING number");
    this.#get = db.prepare("SELECT * FROM dnc WHERE number = ?");
    this.#page = db.prepare(
      "SELECT * FROM dnc ORDER BY added_at DESC, number LIMIT $limit OFFSET $offset",
    );
  }

  /** Adds the numbers not listed yet, in one transaction. @returns those added */
  add(entries: readonly NewDncEntry[], at: string): string[] {
    return this.db.transaction(() =>
      entries.flatMap((entry) => {
        const added = this.#add.get({ ...entry, at });
        return added ? [added.number] : [];
      }),
    )();
  }

  remove(number: string): boolean {
    return this.#remove.get(number) !== null;
  }

  get(number: string): DncEntry | undefined {
    return this.#get.get(number) ?? undefined;
  }

  list(limit: number, offset: number): DncEntry[] {
    return this.#page.all({ limit, offset });
  }
}
