/** Runs the `call` command in-process and collects what it printed. */
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
