/**
 * The PostgreSQL schema and its migration runner, against a real server (a fresh database per test;
 * skipped with one line where none runs): every migration applied once, also by two processes
 * starting together; a newer database refused; the same list as SQLite's; and the constraints the
 * repositories rely on, checked at the SQL level.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { MigrationError, migrations } from "../../src/store/migrations.ts";
import {
  assertMirrorsSqlite,
  migratePostgres,
  postgresMigrations,
} from "../../src/store/postgres/migrations.ts";
import { freshDatabase, postgresReady, type TestDatabase } from "../helpers/postgres.ts";

const ALL_VERSIONS = postgresMigrations.map((migration) => migration.version);

test("the PostgreSQL list mirrors SQLite's: same versions, same names", () => {
  expect(() => assertMirrorsSqlite()).not.toThrow();
  expect(postgresMigrations.map(({ version, name }) => ({ version, name }))).toEqual(
    migrations.map(({ version, name }) => ({ version, name })),
  );
  const renamed = postgresMigrations.map((migration) =>
    migration.version === 3 ? { ...migration, name: "something else" } : migration,
  );
  expect(() => assertMirrorsSqlite(renamed)).toThrow(MigrationError);
  expect(() => assertMirrorsSqlite(postgresMigrations.slice(0, 3))).toThrow(/#4/);
});

describe.skipIf(!postgresReady)("PostgreSQL migrations", () => {
  let database: TestDatabase;
  const clients: SQL[] = [];
  /** A pool on this test's database, closed after the test. */
  const connect = () => {
    const sql = new SQL(database.url, { max: 1 });
    clients.push(sql);
    return sql;
  };
  const recorded = async (sql: SQL) =>
    sql<{ version: number; name: string }[]>`
      SELECT version, name FROM schema_migrations ORDER BY version`;

  beforeEach(async () => {
    database = await freshDatabase();
  });
  afterEach(async () => {
    for (const sql of clients.splice(0)) await sql.close();
    await database.drop();
  });

  test("a fresh database migrates to the last version with every table", async () => {
    const sql = connect();
    expect(ALL_VERSIONS).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(await migratePostgres(sql)).toEqual(ALL_VERSIONS);
    expect([...(await recorded(sql))]).toEqual(
      postgresMigrations.map(({ version, name }) => ({ version, name })),
    );
    const tables = await sql<{ name: string }[]>`
      SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = 'public' ORDER BY table_name`;
    expect(tables.map((table) => table.name)).toEqual([
      "bookings",
      "call_endings",
      "call_events",
      "calls",
      "campaign_attempts",
      "campaign_leads",
      "campaigns",
      "console_sessions",
      "dnc",
      "instances",
      "leads",
      "schema_migrations",
      "slots",
    ]);
    const callColumns = await sql<{ name: string }[]>`
      SELECT column_name AS name FROM information_schema.columns
      WHERE table_name = 'calls' ORDER BY ordinal_position`;
    expect(callColumns.map((column) => column.name).slice(-6)).toEqual([
      "owner",
      "agent_request_id",
      "caller_audio",
      "message",
      "transfer",
      "recording",
    ]);
  });

  test("a second run applies nothing", async () => {
    const sql = connect();
    await migratePostgres(sql);
    expect(await migratePostgres(sql)).toEqual([]);
    expect(await recorded(sql)).toHaveLength(ALL_VERSIONS.length);
  });

  test("only pending migrations run on an older database", async () => {
    const sql = connect();
    expect(await migratePostgres(sql, postgresMigrations.slice(0, 2))).toEqual([1, 2]);
    expect(await migratePostgres(sql)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  });

  test("two processes migrating one fresh database at once both succeed, each version once", async () => {
    const [first, second] = [connect(), connect()];
    // Both connections open first, so that the two runs really start together.
    await Promise.all([first`SELECT 1`, second`SELECT 1`]);
    const [appliedByFirst, appliedBySecond] = await Promise.all([
      migratePostgres(first),
      migratePostgres(second),
    ]);
    expect([...appliedByFirst, ...appliedBySecond].sort((a, b) => a - b)).toEqual(ALL_VERSIONS);
    expect((await recorded(first)).map((row) => row.version)).toEqual(ALL_VERSIONS);
  });

  test("a failing migration leaves nothing half-applied", async () => {
    const sql = connect();
    const broken = [
      ...postgresMigrations,
      {
        version: postgresMigrations.length + 1,
        name: "broken",
        sql: "CREATE TABLE half (id integer); SELECT nonsense FROM nowhere;",
      },
    ];
    await expect(migratePostgres(sql, broken)).rejects.toThrow(/nowhere/);
    const [half] = await sql`SELECT to_regclass('half') AS name`;
    expect(half?.name).toBeNull();
    expect(await recorded(sql)).toHaveLength(postgresMigrations.length);
  });

  test("a database from a newer binary is refused with a clear message", async () => {
    const sql = connect();
    await migratePostgres(sql);
    await sql`INSERT INTO schema_migrations VALUES (99, 'future', '2030-01-01T00:00:00.000Z')`;
    await expect(migratePostgres(sql)).rejects.toThrow(MigrationError);
    await expect(migratePostgres(sql)).rejects.toThrow(/newer than this binary/);
  });

  test("versions out of order are refused", async () => {
    await expect(
      migratePostgres(connect(), [{ version: 2, name: "skipped one", sql: "" }]),
    ).rejects.toThrow(MigrationError);
  });

  test("a slot holds one live booking, refused by the partial unique index; cancelling frees it", async () => {
    const sql = connect();
    await migratePostgres(sql);
    const [slot] = await sql<{ id: number }[]>`
      INSERT INTO slots (calendar, provider, starts_at, ends_at)
      VALUES ('dental', 'Dr. Patel', '2026-03-03T09:00:00.000Z', '2026-03-03T09:30:00.000Z')
      RETURNING id`;
    expect(typeof slot?.id).toBe("number");
    const book = (id: string) => sql`
      INSERT INTO bookings (id, slot_id, name, created_at)
      VALUES (${id}, ${slot?.id}, 'Caller', '2026-03-02T15:00:00.000Z')`;
    await book("AAAAAA");
    const refused = await book("BBBBBB").catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SQL.PostgresError);
    expect(refused).toMatchObject({ errno: "23505", constraint: "bookings_one_live_per_slot" });
    await sql`UPDATE bookings SET status = 'cancelled' WHERE id = 'AAAAAA'`;
    await book("BBBBBB");
    const live = await sql`SELECT id FROM bookings WHERE status = 'booked'`;
    expect(live.map((row: { id: string }) => row.id)).toEqual(["BBBBBB"]);
  });

  test("call_events is append-only and holds JSON", async () => {
    const sql = connect();
    await migratePostgres(sql);
    await sql`
      INSERT INTO calls (sid, direction, from_number, to_number, scenario, status, created_at)
      VALUES ('CA1', 'inbound', '+15550001111', '+15551234567', 'dental', 'ringing', '2026-03-02T15:00:00.000Z')`;
    await sql`
      INSERT INTO call_events (call_sid, at, kind, data)
      VALUES ('CA1', '2026-03-02T15:00:00.000Z', 'status', '{"status":"ringing"}')`;
    await expect(sql`UPDATE call_events SET kind = 'edited'`).rejects.toThrow(
      "call_events is append-only",
    );
    await expect(sql`DELETE FROM call_events`).rejects.toThrow("call_events is append-only");
    await expect(sql`
      INSERT INTO call_events (call_sid, at, kind, data)
      VALUES ('CA1', '2026-03-02T15:00:01.000Z', 'status', 'not json')`).rejects.toThrow(/json/);
    const [events] =
      await sql`SELECT count(*)::integer AS count, min(kind) AS kind FROM call_events`;
    expect(events).toEqual({ count: 1, kind: "status" });
  });
});
