/**
 * The single binary exactly as `bun run build` makes it: package.json's `build` script is read
 * and run with its own flags (only the output goes to a temporary folder), so a change of flags
 * there is what the binary tests test. Built once per `bun test` process, however many files ask.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dir, "../..");

/**
 * The argument vector of package.json's `build` script with its `--outfile` pointed at `outfile`.
 * Throws unless the script is one plain `bun build --compile … --outfile <file>` command.
 * @example buildCommand("bun build --compile a.ts --outfile x", "/t/x") // [execPath, "build", …, "/t/x"]
 */
export function buildCommand(script: string, outfile: string): string[] {
  const words = script.trim().split(/\s+/);
  const [bun, build, ...args] = words;
  const at = args.indexOf("--outfile");
  if (
    bun !== "bun" ||
    build !== "build" ||
    !args.includes("--compile") ||
    at < 0 ||
    at === args.length - 1 ||
    words.some((word) => /["'`$&|;<>()\\]/.test(word) || word.startsWith("--outfile="))
  ) {
    throw new Error(
      `package.json's build script is not one plain "bun build --compile … --outfile <file>": ${script}`,
    );
  }
  args[at + 1] = outfile;
  return [process.execPath, "build", ...args];
}

/** Build folders are named by the test process's id (`bun test` runs no exit handlers). */
const FOLDER_PREFIX = "voice-agent-binary-";

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes the build folders of test processes that have ended. */
function removeStaleFolders(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(FOLDER_PREFIX)) continue;
    const pid = Number(name.slice(FOLDER_PREFIX.length));
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isRunning(pid))
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

async function build(): Promise<string> {
  removeStaleFolders();
  const dir = join(tmpdir(), `${FOLDER_PREFIX}${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const binary = join(dir, "voice-agent");
  const script = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).scripts.build;
  const child = Bun.spawn(buildCommand(script, binary), {
    cwd: REPO,
    stdout: "ignore",
    stderr: "pipe",
  });
  const [exitCode, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()]);
  if (exitCode !== 0) throw new Error(`bun build failed (${exitCode}): ${stderr}`);
  return binary;
}

let built: Promise<string> | undefined;

/** The compiled binary's path; its folder is removed by the first test run after this one. */
export function compiledBinary(): Promise<string> {
  built ??= build();
  return built;
}
