/**
 * `voice-agent migrate` and `voice-agent db copy --to postgres://…`: the database commands.
 * `migrate` brings the configured database (DATABASE_URL, else the SQLite file at DATABASE_PATH) to
 * this binary's schema, as start-up does, and says what it applied. `db copy` moves an SQLite
 * database, every row with its ids and times, into an empty PostgreSQL database in one transaction:
 * the upgrade path from one instance to a fleet. It refuses a target that already holds data.
 */
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { SQL } from "bun";
import type { Config } from "../config.ts";
import { migrate, migrations } from "../store/migrations.ts";
import { migratePostgres } from "../store/postgres/migrations.ts";

export interface DbCommandIo {
  out(line: string): void;
  err(line: string): void;
}

const EXIT_USAGE = 64;

/** Tables in the order their foreign keys allow, with the rows' own order. */
const COPIED_TABLES = [
  { table: "leads", order: "created_at, id" },
  { table: "calls", order: "created_at, sid" },
  { table: "call_events", order: "id" },
  { table: "slots", order: "id" },
  { table: "bookings", order: "created_at, id" },
] as const;
/** Identity columns whose sequences must continue after the copied ids. */
const IDENTITY_COLUMNS = [
  { table: "call_events", column: "id" },
  { table: "slots", column: "id" },
] as const;
/** Rows per INSERT: well under PostgreSQL's 65,535 parameters for the widest table. */
const BATCH_ROWS = 500;

const MIGRATE_HELP = `Usage: voice-agent migrate

Brings the configured database to this binary's schema (what start-up also does), then exits:
PostgreSQL at DATABASE_URL when it is set, otherwise the SQLite file at DATABASE_PATH.`;

const COPY_HELP = `Usage: voice-agent db copy --to postgres://user:password@host:5432/database

Copies the SQLite database at DATABASE_PATH (leads, calls and their timelines, slots, bookings)
into an empty PostgreSQL database, migrating it first, in one transaction. Stop the service first:
a call recorded during the copy would not be in it. Then set DATABASE_URL and start the service.`;

/** @returns the process exit code */
export async function runMigrate(args: string[], config: Config, io: DbCommandIo) {
  if (args.includes("--help") || args.includes("-h")) {
    io.out(MIGRATE_HELP);
    return 0;
  }
  if (args.length > 0) {
    io.err(`migrate takes no arguments\n\n${MIGRATE_HELP}`);
    return EXIT_USAGE;
  }
  if (config.databaseUrl) {
    const sql = new SQL(config.databaseUrl, { max: 1 });
    try {
      const applied = await migratePostgres(sql);
      io.out(describeMigration("PostgreSQL", applied));
    } finally {
      await sql.close();
    }
    return 0;
  }
  const db = new Database(config.databasePath, { create: true, strict: true });
  try {
    io.out(describeMigration(`SQLite ${config.databasePath}`, migrate(db)));
  } finally {
    db.close();
  }
  return 0;
}

function describeMigration(where: string, applied: number[]): string {
  const latest = migrations.length;
  return applied.length === 0
    ? `${where}: already at schema version ${latest}; nothing to apply`
    : `${where}: applied ${applied.map((version) => `#${version}`).join(", ")}; now at schema version ${latest}`;
}

/** @returns the process exit code */
export async function runDbCommand(args: string[], config: Config, io: DbCommandIo) {
  const [subcommand, ...rest] = args;
  if (subcommand !== "copy") {
    io.err(
      `${subcommand ? `unknown db command: ${subcommand}` : "db needs a command"}\n\n${COPY_HELP}`,
    );
    return EXIT_USAGE;
  }
  const { values } = parseArgs({
    args: rest,
    options: { to: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    io.out(COPY_HELP);
    return 0;
  }
  if (!values.to || !/^postgres(ql)?:\/\//.test(values.to)) {
    io.err(`--to: expected a postgres:// URL\n\n${COPY_HELP}`);
    return EXIT_USAGE;
  }
  if (config.databasePath === ":memory:" || !existsSync(config.databasePath)) {
    io.err(`no SQLite database at DATABASE_PATH (${config.databasePath}) to copy`);
    return 1;
  }
  try {
    const copied = await copyToPostgres(config.databasePath, values.to);
    const counts = copied.map(({ table, rows }) => `${table} ${rows}`).join(", ");
    io.out(`copied ${config.databasePath} into PostgreSQL: ${counts}`);
    io.out("Next: set DATABASE_URL to that database and start the service.");
    return 0;
  } catch (error) {
    io.err(`copy failed, nothing was written: ${(error as Error).message}`);
    return 1;
  }
}

/**
 * Copies every row of the SQLite database at `path` into the PostgreSQL database at `url`, which is
 * migrated first and must hold no data. One transaction: all of it or none.
 * @returns the rows copied, per table
 */
export async function copyToPostgres(
  path: string,
  url: string,
): Promise<{ table: string; rows: number }[]> {
  const source = new Database(path, { readonly: true, strict: true });
  const target = new SQL(url, { max: 1 });
  try {
    const version =
      source
        .query<{ version: number | null }, []>(
          "SELECT max(version) AS version FROM schema_migrations",
        )
        .get()?.version ?? 0;
    if (version !== migrations.length) {
      throw new Error(
        `the SQLite database is at schema version ${version}, this binary at ${migrations.length}: run \`voice-agent migrate\` on it first`,
      );
    }
    // Checked before anything is written: a target that holds data is left exactly as it was.
    for (const { table } of COPIED_TABLES) {
      const [present] = await target`SELECT to_regclass(${table}) IS NOT NULL AS present`;
      if (!present?.present) continue;
      const [row] = await target`SELECT EXISTS (SELECT 1 FROM ${target(table)}) AS taken`;
      if (row?.taken)
        throw new Error(`the target already holds ${table}: copy into an empty database`);
    }
    await migratePostgres(target);
    return await target.begin(async (tx) => {
      const copied: { table: string; rows: number }[] = [];
      for (const { table, order } of COPIED_TABLES) {
        const rows = source.query<Record<string, unknown>, []>(
          `SELECT * FROM ${table} ORDER BY ${order}`,
        );
        let count = 0;
        let batch: Record<string, unknown>[] = [];
        for (const row of rows.iterate()) {
          batch.push(row);
          if (batch.length === BATCH_ROWS) {
            await tx`INSERT INTO ${tx(table)} ${tx(batch)}`;
            count += batch.length;
            batch = [];
          }
        }
        if (batch.length > 0) await tx`INSERT INTO ${tx(table)} ${tx(batch)}`;
        copied.push({ table, rows: count + batch.length });
      }
      for (const { table, column } of IDENTITY_COLUMNS) {
        await tx`SELECT setval(pg_get_serial_sequence(${table}, ${column}),
                               coalesce((SELECT max(${tx(column)}) FROM ${tx(table)}), 0) + 1, false)`;
      }
      return copied;
    });
  } finally {
    source.close();
    await target.close();
  }
}
