/** The do-not-call list on PostgreSQL: as the SQLite `DncRepository` (`../dnc.ts`). */
import type { SQL } from "bun";
import type { DncEntry, NewDncEntry } from "../dnc.ts";
import type { DncStore } from "../port.ts";

export class PostgresDncStore implements DncStore {
  constructor(private readonly sql: SQL) {}

  add(entries: readonly NewDncEntry[], at: string): Promise<string[]> {
    return this.sql.begin(async (tx) => {
      const added: string[] = [];
      for (const entry of entries) {
        const [row] = await tx<{ number: string }[]>`
          INSERT INTO dnc (number, reason, source, added_at)
          VALUES (${entry.number}, ${entry.reason}, ${entry.source}, ${at})
          ON CONFLICT (number) DO NOTHING RETURNING number`;
        if (row) added.push(row.number);
      }
      return added;
    });
  }

  async remove(number: string): Promise<boolean> {
    const rows = await this.sql`DELETE FROM dnc WHERE number = ${number} RETURNING number`;
    return rows.length > 0;
  }

  async get(number: string): Promise<DncEntry | undefined> {
    const [row] = await this.sql<DncEntry[]>`SELECT * FROM dnc WHERE number = ${number}`;
    return row;
  }

  list(limit: number, offset: number): Promise<DncEntry[]> {
    return this.sql<DncEntry[]>`
      SELECT * FROM dnc ORDER BY added_at DESC, number LIMIT ${limit} OFFSET ${offset}`;
  }
}
