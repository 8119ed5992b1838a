/** The call CLI against the running service (fake Twilio behind it). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runCallCommand } from "../../src/cli/call.ts";
import { type OutboundHarness, SECRET, startOutboundHarness } from "../helpers/outbound-harness.ts";

let harness: OutboundHarness;
let dir: string;
beforeAll(async () => {
  harness = await startOutboundHarness();
  dir = mkdtempSync(join(tmpdir(), "call-cli-"));
});
afterAll(async () => {
  await harness.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function run(argv: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCallCommand(argv, env, {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    readFile: (path) => Bun.file(path).text(),
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("call command", () => {
  test("places a call with the server and secret from the environment, printing the call SID and lead id", async () => {
    const { code, out } = await run(["--to", "+15557654321", "--lead-name", "John Smith"], {
      SERVER_EXTERNAL_URL: harness.service.url,
      ENDPOINT_SECRET: SECRET,
    });
    expect(code).toBe(0);
    const sid = /call placed: (CA[0-9a-f]+)/.exec(out)?.[1];
    const leadId = /lead: (\S+)/.exec(out)?.[1];
    expect(harness.twilio.calls.has(sid ?? "")).toBe(true);
    expect(harness.service.store.leads.get(leadId ?? "")).toMatchObject({
      first_name: "John",
      last_name: "Smith",
    });
  });

  test("reads a lead from a file", async () => {
    const file = join(dir, "lead.json");
    await Bun.write(
      file,
      JSON.stringify({ first_name: "Dana", last_name: "Reyes", property_address: "1 Elm St" }),
    );
    const { code, out } = await run([
      "--to",
      "+15557654321",
      "--lead-file",
      file,
      "--server",
      harness.service.url,
      "--secret",
      SECRET,
    ]);
    expect(code).toBe(0);
    const leadId = /lead: (\S+)/.exec(out)?.[1];
    expect(harness.service.store.leads.get(leadId ?? "")?.property_address).toBe("1 Elm St");
  });

  test("explains a wrong secret, a bad number, an unreachable server and a missing --to", async () => {
    const server = ["--server", harness.service.url];
    const wrong = await run(["--to", "+15557654321", ...server, "--secret", "wrong-secret-123"]);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain("401: Wrong endpoint secret");
    expect(wrong.err).toContain("check --secret or ENDPOINT_SECRET");
    const bad = await run(["--to", "555", ...server, "--secret", SECRET]);
    expect(bad.err).toContain("400: body.to:");
    const gone = await run([
      "--to",
      "+15557654321",
      "--server",
      "http://127.0.0.1:9",
      "--secret",
      SECRET,
    ]);
    expect(gone.code).toBe(69);
    expect(gone.err).toContain("could not reach http://127.0.0.1:9");
    const missing = await run([]);
    expect(missing.code).toBe(64);
    expect(missing.err).toContain("--to is required");
  });

  test("scripts/call.ts is the same command, run with bun", async () => {
    const child = Bun.spawn(
      [
        process.execPath,
        "run",
        "scripts/call.ts",
        "--to",
        "+15557654321",
        "--server",
        harness.service.url,
        "--secret",
        SECRET,
      ],
      {
        cwd: resolve(import.meta.dir, "../.."),
        env: { PATH: process.env.PATH ?? "" },
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const out = await new Response(child.stdout).text();
    expect(await child.exited).toBe(0);
    expect(out).toMatch(/call placed: CA[0-9a-f]{32}/);
  });
});

describe("call command, last (it locks this client out for a minute)", () => {
  test("explains being throttled after too many wrong secrets, not as the call limit", async () => {
    const server = ["--server", harness.service.url];
    let last = await run(["--to", "+15557654321", ...server, "--secret", "wrong-secret-123"]);
    for (let i = 0; i < 10; i++)
      last = await run(["--to", "+15557654321", ...server, "--secret", "wrong-secret-123"]);
    expect(last.err).toContain("429:");
    expect(last.err).toContain("too many wrong secrets came from this address");
    expect(last.err).not.toContain("concurrent-call limit");
  });
});
