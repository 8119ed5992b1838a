/** Leads on PostgreSQL: the same rows and answers as the SQLite `LeadRepository`. */
import type { SQL } from "bun";
import type { Clock } from "../../clock.ts";
import { type Lead, LeadInput } from "../leads.ts";
import type { LeadStore } from "../port.ts";

const columns = Object.keys(LeadInput.properties) as (keyof LeadInput)[];

export class PostgresLeadStore implements LeadStore {
  constructor(
    private readonly sql: SQL,
    private readonly clock: Clock,
  ) {}

  async create(input: LeadInput): Promise<Lead> {
    const [lead] = await this.sql<
      [Lead]
    >`INSERT INTO leads ${this.sql(this.#row(input))} RETURNING *`;
    return lead;
  }

  /** A new lead's row: a fresh id, created now. */
  #row(input: LeadInput): Record<string, string | number | null> {
    const now = this.clock.now().toISOString();
    const row: Record<string, string | number | null> = {
      id: `lead_${Bun.randomUUIDv7()}`,
      created_at: now,
      updated_at: now,
    };
    for (const column of columns) row[column] = input[column] ?? null;
    return row;
  }

  importMany(inputs: readonly LeadInput[]): Promise<{ stored: Lead[]; duplicates: number[] }> {
    return this.sql.begin(async (tx) => {
      // One import at a time: two batches naming one phone cannot both store it.
      await tx`SELECT pg_advisory_xact_lock(hashtext('leads-import'))`;
      const stored: Lead[] = [];
      const duplicates: number[] = [];
      for (const [index, input] of inputs.entries()) {
        const [existing] = input.phone
          ? await tx`SELECT id FROM leads WHERE phone = ${input.phone} LIMIT 1`
          : [];
        if (existing) {
          duplicates.push(index);
          continue;
        }
        const [lead] = await tx<[Lead]>`INSERT INTO leads ${tx(this.#row(input))} RETURNING *`;
        stored.push(lead);
      }
      return { stored, duplicates };
    });
  }

  async get(id: string): Promise<Lead | undefined> {
    const [lead] = await this.sql<Lead[]>`SELECT * FROM leads WHERE id = ${id}`;
    return lead;
  }

  async list(limit: number, offset = 0): Promise<Lead[]> {
    const leads = await this.sql<Lead[]>`
      SELECT * FROM leads ORDER BY created_at DESC, id DESC LIMIT ${limit} OFFSET ${offset}`;
    return [...leads];
  }
}
