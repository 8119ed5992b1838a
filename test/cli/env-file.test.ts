import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readEnvFile, updateEnvFile } from "../../src/cli/env-file.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "env-file-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test("updates keys in place, appends new ones, keeps comments and unrelated lines, mode 0600", () => {
  const path = join(dir, ".env");
  writeFileSync(path, '# comment\nexport A=1\nB="two words"\n\nC=3\n', { mode: 0o644 });
  expect(updateEnvFile(path, { B: "changed", D: "needs quoting here" })).toBe(true);
  expect(readFileSync(path, "utf8")).toBe(
    '# comment\nexport A=1\nB=changed\n\nC=3\nD="needs quoting here"\n',
  );
  expect(statSync(path).mode & 0o777).toBe(0o600);
  expect(readEnvFile(path)).toEqual({ A: "1", B: "changed", C: "3", D: "needs quoting here" });
  expect(updateEnvFile(path, { B: "changed" })).toBe(false);
});

test("creates the file and its folder; a missing file reads as empty", () => {
  const path = join(dir, "etc", "voice-agent.env");
  expect(readEnvFile(path)).toEqual({});
  updateEnvFile(path, { SERVER_PORT: "8080" });
  expect(readFileSync(path, "utf8")).toBe("SERVER_PORT=8080\n");
});
