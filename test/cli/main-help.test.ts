/** `voice-agent --help`: every variable listed, its description in one column, never run together. */
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { describeEnvironment } from "../../src/config.ts";

function help(): string {
  const result = Bun.spawnSync([process.execPath, "src/main.ts", "--help"], {
    cwd: resolve(import.meta.dir, "../.."),
    env: { PATH: process.env.PATH ?? "" },
  });
  expect(result.exitCode).toBe(0);
  return result.stdout.toString();
}

describe("voice-agent --help", () => {
  const text = help();
  const lines = text.split("\n");
  const variables = lines.slice(lines.findIndex((line) => line.startsWith("Configuration")) + 1);

  test("no line is wider than 100 columns", () => {
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(100);
  });

  test("each variable's name stands apart from its description, which starts in one column", () => {
    const starts = new Set<number>();
    for (const { name, description } of describeEnvironment()) {
      const at = variables.findIndex(
        (line) => line.startsWith(`  ${name} `) || line === `  ${name}`,
      );
      expect(at).toBeGreaterThanOrEqual(0);
      const line = variables[at] ?? "";
      // Either "  NAME<at least two spaces>Description…" or "  NAME" alone, the description below.
      const shared = new RegExp(`^ {2}${name} {2,}(\\S.*)$`).exec(line);
      const first = shared ? line : (variables[at + 1] ?? "");
      const column = shared ? line.length - (shared[1] ?? "").length : first.search(/\S/);
      starts.add(column);
      expect(first.slice(column)).toStartWith(description.split(/\s+/).slice(0, 3).join(" "));
    }
    expect(starts.size).toBe(1);
    // Continuation lines of the descriptions start in that column too.
    const [column = 0] = [...starts];
    for (const line of variables.filter((line) => line.startsWith("   ")))
      expect(line.search(/\S/)).toBe(column);
  });

  test("the names that once ran into their descriptions are apart now", () => {
    expect(text).not.toMatch(/TWILIO_VALIDATE_SIGNATURES\S/);
    expect(text).toMatch(/MACHINE_DETECTION_SPEECH_END_THRESHOLD_MS(\n| {2})/);
  });
});
