/** Runs the `call` command in-process and collects what it printed, or as `bun run scripts/call.ts`. */
import { resolve } from "node:path";
import { runCallCommand } from "../../src/cli/call.ts";

export async function runCall(argv: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCallCommand(argv, env, {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    readFile: (path) => Bun.file(path).text(),
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/**
 * `bun run scripts/call.ts …args` from the repository, optionally under `wrapper` (e.g. setpriv);
 * asynchronous, so a service in this process can answer it.
 */
export async function spawnCallScript(args: string[], wrapper: string[] = []) {
  const child = Bun.spawn([...wrapper, process.execPath, "run", "scripts/call.ts", ...args], {
    cwd: resolve(import.meta.dir, "../.."),
    env: { PATH: process.env.PATH ?? "", HOME: "/tmp" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { exitCode, stdout, stderr };
}
