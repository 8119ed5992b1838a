import { Database } from "bun:sqlite";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/store/index.ts";
import { MigrationError, migrate, migrations } from "../../src/store/migrations.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "voice-agent-store-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const versions = (db: Database) =>
  db.query<{ version: number }, []>("SELECT version FROM schema_migrations ORDER BY version").all();

describe("migrations", () => {
  test("a new database gets every migration, once", () => {
    const db = new Database(":memory:");
    expect(migrate(db)).toEqual(migrations.map((migration) => migration.version));
    expect(migrate(db)).toEqual([]);
    expect(versions(db)).toEqual(migrations.map(({ version }) => ({ version })));
  });

  test("only pending migrations run on an older database", () => {
    const db = new Database(":memory:");
    const first = migrations.slice(0, 1);
    migrate(db, first);
    const extra = [
      ...first,
      { version: 2, name: "extra", sql: "CREATE TABLE extra (id INTEGER PRIMARY KEY)" },
    ];
    expect(migrate(db, extra)).toEqual([2]);
    expect(versions(db)).toEqual([{ version: 1 }, { version: 2 }]);
  });

  test("a failing migration leaves nothing half-applied", () => {
    const db = new Database(":memory:");
    const broken = [
      ...migrations,
      {
        version: migrations.length + 1,
        name: "broken",
        sql: "CREATE TABLE half (id INTEGER); SELECT nonsense FROM nowhere;",
      },
    ];
    expect(() => migrate(db, broken)).toThrow();
    expect(db.query("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeNull();
    expect(versions(db)).toHaveLength(migrations.length);
  });

  test("a database from a newer binary is refused with a clear message", () => {
    const db = new Database(":memory:");
    migrate(db);
    db.run("INSERT INTO schema_migrations VALUES (99, 'future', '2030-01-01')");
    expect(() => migrate(db)).toThrow(MigrationError);
    expect(() => migrate(db)).toThrow(/newer than this binary/);
  });

  test("versions out of order are refused", () => {
    const db = new Database(":memory:");
    expect(() => migrate(db, [{ version: 2, name: "skipped one", sql: "" }])).toThrow(
      MigrationError,
    );
  });
});

describe("openStore on a file", () => {
  test("creates the folder, uses WAL and foreign keys, and keeps data across re-opens", () => {
    const path = join(dir, "nested", "voice-agent.db");
    const first = openStore(path);
    expect(
      first.db.query<{ journal_mode: string }, []>("PRAGMA journal_mode").get()?.journal_mode,
    ).toBe("wal");
    expect(
      first.db.query<{ foreign_keys: number }, []>("PRAGMA foreign_keys").get()?.foreign_keys,
    ).toBe(1);
    expect(first.db.query<{ timeout: number }, []>("PRAGMA busy_timeout").get()?.timeout).toBe(
      5000,
    );
    const lead = first.leads.create({ first_name: "Alex", last_name: "Mitchell" });
    first.close();

    const second = openStore(path);
    expect(second.leads.get(lead.id)).toEqual(lead);
    expect(versions(second.db)).toHaveLength(migrations.length);
    second.close();
  });

  test("two processes' worth of connections can open the same file at once", () => {
    const path = join(dir, "shared.db");
    const a = openStore(path);
    const b = openStore(path);
    const lead = a.leads.create({ first_name: "Jo", last_name: "Lee" });
    expect(b.leads.get(lead.id)?.first_name).toBe("Jo");
    a.close();
    b.close();
  });
});
