/** Leads: the people outbound calls follow up on. One TypeBox model serves validation, types and the API. */
import type { Database, Statement } from "bun:sqlite";
import { type Static, Type } from "@sinclair/typebox";
import type { Clock } from "../clock.ts";
import type { NamedParams } from "./sql.ts";

const Text = (maxLength: number) => Type.String({ minLength: 1, maxLength });

/** What a caller may say about a lead; everything but the name is optional. */
export const LeadInput = Type.Object(
  {
    first_name: Text(100),
    last_name: Text(100),
    phone: Type.Optional(Type.String({ pattern: "^\\+[1-9][0-9]{1,14}$", description: "E.164" })),
    email: Type.Optional(
      Type.String({ pattern: "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", maxLength: 254 }),
    ),
    property_address: Type.Optional(Text(300)),
    property_type: Type.Optional(Text(100)),
    year_built: Type.Optional(Type.Integer({ minimum: 1600, maximum: 2100 })),
    square_footage: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    insurance_status: Type.Optional(Text(100)),
    coverage_start: Type.Optional(
      Type.String({ pattern: "^\\d{4}-\\d{2}-\\d{2}$", description: "YYYY-MM-DD" }),
    ),
    quote_submitted_at: Type.Optional(Text(40)),
    source: Type.Optional(Text(100)),
  },
  { additionalProperties: false },
);
export type LeadInput = Static<typeof LeadInput>;

/** Optional input fields come back from the database as null. */
type Stored<T> = {
  [K in keyof T]-?: undefined extends T[K] ? Exclude<T[K], undefined> | null : T[K];
};

export type Lead = Stored<LeadInput> & { id: string; created_at: string; updated_at: string };

const columns = Object.keys(LeadInput.properties) as (keyof LeadInput)[];

export class LeadRepository {
  readonly #insert: Statement<Lead, [NamedParams]>;
  readonly #byId: Statement<Lead, [string]>;
  readonly #page: Statement<Lead, [number, number]>;

  constructor(
    db: Database,
    private readonly clock: Clock,
  ) {
    this.#insert = db.prepare(
      `INSERT INTO leads (id, ${columns.join(", ")}, created_at, updated_at)
       VALUES ($id, ${columns.map((column) => `$${column}`).join(", ")}, $created_at, $updated_at)
       RETURNING *`,
    );
    this.#byId = db.prepare("SELECT * FROM leads WHERE id = ?");
    this.#page = db.prepare(
      "SELECT * FROM leads ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
    );
  }

  /** Stores a new lead and returns it with its generated id. */
  create(input: LeadInput): Lead {
    const now = this.clock.now().toISOString();
    const row: NamedParams = { id: `lead_${Bun.randomUUIDv7()}`, created_at: now, updated_at: now };
    for (const column of columns) row[column] = input[column] ?? null;
    return this.#insert.get(row) as Lead;
  }

  get(id: string): Lead | undefined {
    return this.#byId.get(id) ?? undefined;
  }

  /** Newest first. */
  list(limit: number, offset = 0): Lead[] {
    return this.#page.all(limit, offset);
  }
}
