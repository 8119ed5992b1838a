/** The serving process outlives errors no call contained: run in a child process, as it changes process-wide handlers. */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "guard-"));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test("an uncaught exception and an unhandled rejection are logged, and the process goes on", async () => {
  const script = join(dir, "child.ts");
  writeFileSync(
    script,
    `import { createLogger } from ${JSON.stringify(join(import.meta.dir, "../src/log.ts"))};
import { keepServingOnUncaughtErrors } from ${JSON.stringify(join(import.meta.dir, "../src/process-guard.ts"))};
keepServingOnUncaughtErrors(createLogger({ level: "info" }));
setTimeout(() => { throw new Error("bug in a timer"); }, 1);
Promise.reject(new Error("bug in a promise"));
setTimeout(() => console.log("still serving"), 30);
`,
  );
  const child = Bun.spawn([process.execPath, "run", script], { stdout: "pipe", stderr: "pipe" });
  const [out, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  expect(code).toBe(0);
  const lines = out.trim().split("\n");
  expect(lines.at(-1)).toBe("still serving");
  const logged = lines.slice(0, -1).map((line) => JSON.parse(line));
  expect(logged.map((line) => [line.level, line.msg, line.error.message]).sort()).toEqual([
    ["error", "uncaught exception; still serving", "bug in a timer"],
    ["error", "unhandled promise rejection; still serving", "bug in a promise"],
  ]);
  expect(logged[0].error.stack).toContain("child.ts");
});
