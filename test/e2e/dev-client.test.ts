/** The dev client against a running server: real sockets, the fake agent behind the server. */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { mulawToWav, wavToMulaw } from "../../scripts/lib/wav.ts";
import { mulawTone } from "../fakes/mulaw.ts";
import { type BridgeHarness, startBridgeHarness } from "../helpers/bridge-harness.ts";

const repo = resolve(import.meta.dir, "../..");
let harness: BridgeHarness;
let dir: string;
afterEach(async () => {
  await harness.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function runClient(args: string[]) {
  const child = Bun.spawn(
    [process.execPath, "run", "scripts/dev-client.ts", "--server", harness.service.url, ...args],
    {
      cwd: repo,
      env: { PATH: process.env.PATH ?? "" },
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { stdout, stderr, code };
}

test("streams a WAV file, prints the transcript and saves the agent's audio", async () => {
  harness = await startBridgeHarness({ ALLOW_DEV_STREAMS: "true" });
  dir = mkdtempSync(join(tmpdir(), "dev-client-"));
  const input = join(dir, "hello.wav");
  const output = join(dir, "agent.wav");
  await Bun.write(input, mulawToWav(mulawTone(300)));
  const { stdout, code } = await runClient(["--audio", input, "--seconds", "1", "--save", output]);
  expect(code).toBe(0);
  expect(stdout).toContain("agent : Thanks for calling the test desk.");
  expect(stdout).toContain("hung up");
  const saved = wavToMulaw(await Bun.file(output).bytes());
  expect(saved?.length).toBe(400 * 8);
  expect(statSync(output).size).toBe(44 + 400 * 8);
  const agent = harness.agent.sessions[0];
  expect(agent?.audioBytes).toBeGreaterThanOrEqual(300 * 8);
}, 15_000);

test("explains a refused stream", async () => {
  harness = await startBridgeHarness();
  dir = mkdtempSync(join(tmpdir(), "dev-client-"));
  const { stderr, code } = await runClient(["--seconds", "1"]);
  expect(code).toBe(2);
  expect(stderr).toContain("stream refused: missing, used or wrong stream token");
  expect(stderr).toContain("ALLOW_DEV_STREAMS=true");
}, 15_000);
