/**
 * Security issue point 12: the database holds names, numbers and transcripts, so its folder is
 * created 0700 and its files (with the WAL companions) are 0600 whatever the umask.
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/store/index.ts";

let dir: string;
let umask: number;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "voice-agent-files-"));
  umask = process.umask(0o022);
});
afterEach(() => {
  process.umask(umask);
  rmSync(dir, { recursive: true, force: true });
});

const mode = (path: string) => statSync(path).mode & 0o777;

test("a new database: folder 0700, database, -wal and -shm 0600 under umask 022", () => {
  const path = join(dir, "data", "voice-agent.db");
  const store = openStore(path);
  store.leads.create({ first_name: "Private", last_name: "Person" });
  expect(mode(join(dir, "data"))).toBe(0o700);
  for (const file of [path, `${path}-wal`, `${path}-shm`]) expect(mode(file)).toBe(0o600);
  store.close();
});

test("an existing world-readable database and its WAL files are made private when opened", () => {
  const folder = join(dir, "existing");
  mkdirSync(folder);
  const path = join(folder, "voice-agent.db");
  const first = openStore(path);
  first.leads.create({ first_name: "Private", last_name: "Person" });
  const files = [path, `${path}-wal`, `${path}-shm`];
  for (const file of files) chmodSync(file, 0o644);
  const second = openStore(path);
  for (const file of files) expect(mode(file)).toBe(0o600);
  second.close();
  first.close();
});
