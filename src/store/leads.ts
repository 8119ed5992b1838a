/** Leads: the people outbound calls follow up on. One TypeBox model serves validation, types and the API. */
import type { Database, Statement } from "bun:sqlite";
import { FormatRegistry, type Static, Type } from "@sinclair/typebox";
import type { Clock } from "../clock.ts";
import { E164_PATTERN } from "../phone-number.ts";
import type { NamedParams } from "./sql.ts";

/**
 * Characters no lead field may hold, as the body of a regex class: C0 controls (NUL, TAB, LF, CR…),
 * DEL and C1 controls, and invisible Unicode format controls: the Arabic letter mark, zero-width
 * spaces and joiners, left-to-right/right-to-left marks, line and paragraph separators, bidi
 * embeddings, overrides and isolates, and the byte-order mark. Written as escapes so the pattern
 * (shown in the API docs and in 400 messages) is readable ASCII.
 */
const UNSAFE =
  "\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u2028-\\u202E\\u2060-\\u206F\\uFEFF";

/**
 * One line of plain text with at least one visible character: no control or invisible formatting
 * character anywhere (the look-ahead asks for a non-space; the pattern runs in linear time).
 */
export const PLAIN_TEXT = `^(?=[^${UNSAFE}]*[^\\s${UNSAFE}])[^${UNSAFE}]*$`;

const PLAIN_TEXT_RULE =
  "one line of plain text, not blank, without control characters (line breaks, tabs, NUL) or invisible formatting characters (zero-width or bidirectional controls)";

const Text = (maxLength: number) =>
  Type.String({
    minLength: 1,
    maxLength,
    pattern: PLAIN_TEXT,
    description: `Up to ${maxLength} characters: ${PLAIN_TEXT_RULE}.`,
  });

/** An IANA time zone this runtime knows (America/Chicago), for the lead's calling window. */
FormatRegistry.Set("iana-time-zone", (value) => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: value });
    return !/^[+-]|^\d/.test(value);
  } catch {
    return false;
  }
});

/** What a caller may say about a lead; everything but the name is optional. */
export const LeadInput = Type.Object(
  {
    first_name: Text(100),
    last_name: Text(100),
    phone: Type.Optional(Type.String({ pattern: E164_PATTERN, description: "E.164" })),
    email: Type.Optional(
      Type.String({
        // Dots split the domain, so the match is linear; no space, control or invisible character.
        pattern: `^[^@\\s${UNSAFE}]+@[^@.\\s${UNSAFE}]+(?:\\.[^@.\\s${UNSAFE}]+)+$`,
        maxLength: 254,
        description:
          "An email address, without spaces, control or invisible formatting characters.",
      }),
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
    timezone: Type.Optional(
      Type.String({
        maxLength: 64,
        format: "iana-time-zone",
        description:
          "The lead's IANA time zone, e.g. America/Chicago (campaigns call in its hours)",
      }),
    ),
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
  readonly #byPhone: Statement<{ id: string }, [string]>;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
  ) {
    this.#insert = db.prepare(
      `INSERT INTO leads (id, ${columns.join(", ")}, created_at, updated_at)
       VALUES ($id, ${columns.map((column) => `$${column}`).join(", ")}, $created_at, $updated_at)
       RETURNING *`,
    );
    this.#byId = db.prepare("SELECT * FROM leads WHERE id = ?");
    this.#byPhone = db.prepare("SELECT id FROM leads WHERE phone = ? LIMIT 1");
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

  /**
   * Stores many leads in one transaction; one whose phone is already a lead's (stored before, or
   * earlier in the same batch) is not stored again. @returns the stored, and the duplicates' indices
   */
  importMany(inputs: readonly LeadInput[]): { stored: Lead[]; duplicates: number[] } {
    return this.db
      .transaction(() => {
        const stored: Lead[] = [];
        const duplicates: number[] = [];
        inputs.forEach((input, index) => {
          if (input.phone && this.#byPhone.get(input.phone)) duplicates.push(index);
          else stored.push(this.create(input));
        });
        return { stored, duplicates };
      })
      .immediate();
  }

  get(id: string): Lead | undefined {
    return this.#byId.get(id) ?? undefined;
  }

  /** Newest first. */
  list(limit: number, offset = 0): Lead[] {
    return this.#page.all(limit, offset);
  }
}
