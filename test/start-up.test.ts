/**
 * Starting a second service on a port one already listens on: refused with one line naming the
 * address and exit code 75, unless both set SERVER_REUSE_PORT=true and share it. Runs `src/main.ts`
 * as child processes, each with a database of its own.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listeningUrl } from "./helpers/listening.ts";

const MAIN = join(import.meta.dir, "../src/main.ts");
const EXIT_PORT_IN_USE = 75;

let dir: string;
let children: Bun.Subprocess<"ignore", "pipe", "pipe">[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "voice-agent-start-up-"));
  children = [];
});
afterEach(async () => {
  for (const child of children) child.kill("SIGKILL");
  await Promise.all(children.map((child) => child.exited));
  rmSync(dir, { recursive: true, force: true });
});

/** Starts `src/main.ts` with database `name` in the test's folder. */
function spawnService(name: string, env: Record<string, string>) {
  const child = Bun.spawn(["bun", "run", MAIN], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "",
      SERVER_HOST: "127.0.0.1",
      DATABASE_PATH: join(dir, `${name}.db`),
      ...env,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  children.push(child);
  return child;
}

/** The port of a child started on port 0, once it listens. */
async function listeningPort(child: ReturnType<typeof spawnService>): Promise<number> {
  const url = await listeningUrl(child.stdout, () => new Response(child.stderr).text());
  return Number(new URL(url).port);
}

describe("a second service on a port already taken", () => {
  test("exits 75 with one line naming the address, no stack trace", async () => {
    const port = await listeningPort(spawnService("first", { SERVER_PORT: "0" }));
    const second = spawnService("second", { SERVER_PORT: String(port) });
    expect(await second.exited).toBe(EXIT_PORT_IN_USE);
    expect((await new Response(second.stderr).text()).trim()).toBe(
      `port ${port} on 127.0.0.1 is already in use (another voice-agent?): stop it or set SERVER_PORT; SERVER_REUSE_PORT=true shares it deliberately`,
    );
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
  });

  test("with SERVER_REUSE_PORT=true both listen on it", async () => {
    const reuse = { SERVER_REUSE_PORT: "true" };
    const first = spawnService("first", { ...reuse, SERVER_PORT: "0" });
    const port = await listeningPort(first);
    const second = spawnService("second", { ...reuse, SERVER_PORT: String(port) });
    expect(await listeningPort(second)).toBe(port);
    expect(first.exitCode).toBeNull();
    expect(second.exitCode).toBeNull();
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
  });
});
