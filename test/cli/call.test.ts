/** The call CLI against the running service (fake Twilio behind it). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../fakes/twilio-webhooks.ts";
import { runCall, spawnCallScript } from "../helpers/call-command.ts";
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

describe("call command", () => {
  test("places a call with the server and secret from the environment, printing the call SID and lead id", async () => {
    const { code, out } = await runCall(["--to", "+15557654321", "--lead-name", "John Smith"], {
      SERVER_PORT: String(harness.service.port),
      ENDPOINT_SECRET: SECRET,
    });
    expect(out).toContain(`via http://127.0.0.1:${harness.service.port} (the local service)`);
    expect(code).toBe(0);
    const sid = /call placed: (CA[0-9a-f]+)/.exec(out)?.[1];
    const leadId = /lead: (\S+)/.exec(out)?.[1];
    expect(harness.twilio.calls.has(sid ?? "")).toBe(true);
    expect(await harness.service.store.leads.get(leadId ?? "")).toMatchObject({
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
    const { code, out } = await runCall([
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
    expect((await harness.service.store.leads.get(leadId ?? ""))?.property_address).toBe(
      "1 Elm St",
    );
  });

  test("explains a wrong secret, a bad number, an unreachable server and a missing --to", async () => {
    const server = ["--server", harness.service.url];
    const wrong = await runCall([
      "--to",
      "+15557654321",
      ...server,
      "--secret",
      "wrong-secret-123",
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain("401: Wrong endpoint secret");
    expect(wrong.err).toContain("check --secret against the server's ENDPOINT_SECRET");
    const bad = await runCall(["--to", "555", ...server, "--secret", SECRET]);
    expect(bad.code).toBe(64);
    expect(bad.err).toContain("phone numbers are written in E.164, e.g. +15551234567");
    expect(bad.err).not.toContain("body.to");
    const gone = await runCall([
      "--to",
      "+15557654321",
      "--server",
      "http://127.0.0.1:9",
      "--secret",
      SECRET,
    ]);
    expect(gone.code).toBe(69);
    expect(gone.err).toBe(
      "no voice-agent answered: http://127.0.0.1:9 refused the connection (ECONNREFUSED) — is it running there, and is --server right?",
    );
    const missing = await runCall([]);
    expect(missing.code).toBe(64);
    expect(missing.err).toContain("--to is required");
  });
});

describe("call command: which server", () => {
  test("without --server prefers the local service over SERVER_EXTERNAL_URL, and says so", async () => {
    const { code, out } = await runCall(["--to", "+15557654321"], {
      SERVER_HOST: "0.0.0.0",
      SERVER_PORT: String(harness.service.port),
      SERVER_EXTERNAL_URL: `http://127.0.0.1:${freePort()}`,
      ENDPOINT_SECRET: SECRET,
    });
    expect(code).toBe(0);
    expect(out.split("\n")[0]).toBe(
      `via http://127.0.0.1:${harness.service.port} (the local service)`,
    );
    expect(out).toMatch(/call placed: CA[0-9a-f]{32}/);
  });

  test("uses SERVER_HOST when it is not a wildcard address", async () => {
    const { code, out } = await runCall(["--to", "+15557654321"], {
      SERVER_HOST: "localhost",
      SERVER_PORT: String(harness.service.port),
      ENDPOINT_SECRET: SECRET,
    });
    expect(code).toBe(0);
    expect(out).toContain(`via http://localhost:${harness.service.port} (the local service)`);
  });

  test("falls back to SERVER_EXTERNAL_URL when nothing answers locally, and says so", async () => {
    const closed = freePort();
    const { code, out } = await runCall(["--to", "+15557654321"], {
      SERVER_PORT: String(closed),
      SERVER_EXTERNAL_URL: harness.service.url,
      ENDPOINT_SECRET: SECRET,
    });
    expect(code).toBe(0);
    expect(out).toContain(
      `no voice-agent answered: http://127.0.0.1:${closed} refused the connection (ECONNREFUSED); trying SERVER_EXTERNAL_URL`,
    );
    expect(out).toContain(`via ${harness.service.url} (SERVER_EXTERNAL_URL)`);
    expect(out).toMatch(/call placed: CA[0-9a-f]{32}/);
  });

  test("when nothing answers, names the local URL and how to check the service", async () => {
    const closed = freePort();
    const alone = await runCall(["--to", "+15557654321"], { SERVER_PORT: String(closed) });
    expect(alone.code).toBe(69);
    expect(alone.err).toBe(
      `no voice-agent answered: http://127.0.0.1:${closed} refused the connection (ECONNREFUSED) — is it running? (systemctl status voice-agent)`,
    );
    expect(alone.err).not.toContain("access the url");
    const external = freePort();
    const both = await runCall(["--to", "+15557654321"], {
      SERVER_PORT: String(closed),
      SERVER_EXTERNAL_URL: `http://127.0.0.1:${external}`,
    });
    expect(both.code).toBe(69);
    expect(both.err).toBe(
      [
        `no voice-agent answered: http://127.0.0.1:${closed} refused the connection (ECONNREFUSED) — is it running? (systemctl status voice-agent)`,
        `nor through SERVER_EXTERNAL_URL: http://127.0.0.1:${external} refused the connection (ECONNREFUSED)`,
      ].join("\n"),
    );
  });

  test("an IPv6 --server that does not answer is named as given", async () => {
    const { code, err } = await runCall(["--to", "+15557654321", "--server", "http://[::1]:9"]);
    expect(code).toBe(69);
    expect(err).toContain(
      "no voice-agent answered: http://[::1]:9 refused the connection (ECONNREFUSED)",
    );
  });

  test("a --server URL with /docs (copied from the browser) uses the base URL and says so", async () => {
    const { code, out, err } = await runCall([
      "--to",
      "+15557654321",
      "--server",
      `${harness.service.url}/docs`,
      "--secret",
      SECRET,
    ]);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toContain(
      `--server: using ${harness.service.url} (left out /docs: the command needs the service's base URL, not one of its pages)`,
    );
    expect(out).toContain(`via ${harness.service.url} (--server)`);
  });

  test("a 404 gets the lead hint only when the lead lookup gave it", async () => {
    const lead = await runCall([
      "--to",
      "+15557654321",
      "--lead-id",
      "lead_nope",
      "--server",
      harness.service.url,
      "--secret",
      SECRET,
    ]);
    expect(lead.code).toBe(1);
    expect(lead.err).toContain("404: No lead lead_nope");
    expect(lead.err).toContain("no such lead: check --lead-id");
    // A path the service does not know is kept (it may be a proxy's prefix); its 404 is no lead's.
    const prefixed = await runCall([
      "--to",
      "+15557654321",
      "--lead-id",
      "lead_nope",
      "--server",
      `${harness.service.url}/voice`,
      "--secret",
      SECRET,
    ]);
    expect(prefixed.code).toBe(1);
    expect(prefixed.err).not.toContain("no such lead");
    expect(prefixed.err).toContain(
      `${harness.service.url}/voice/make-call was not found (404: No route for POST /voice/make-call): --server should be the service's base URL, e.g. http://127.0.0.1:8080`,
    );
  });
});

describe("call command: --env-file", () => {
  test("reads the secret, host and port from the file, over the environment and ./.env", async () => {
    const file = join(dir, "voice-agent.env");
    await Bun.write(
      file,
      [
        "# written by setup",
        `ENDPOINT_SECRET=${SECRET}`,
        "SERVER_HOST=0.0.0.0",
        `SERVER_PORT=${harness.service.port}`,
        `SERVER_EXTERNAL_URL=http://127.0.0.1:${freePort()}`,
        "",
      ].join("\n"),
    );
    const { code, out, err } = await runCall(["--to", "+15557654321", "--env-file", file], {
      SERVER_PORT: String(freePort()),
    });
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toContain(`via http://127.0.0.1:${harness.service.port} (the local service)`);
    expect(out).toMatch(/call placed: CA[0-9a-f]{32}/);
  });

  test("a file without the secret: the 401 says to pass --secret", async () => {
    const file = join(dir, "no-secret.env");
    await Bun.write(file, `SERVER_PORT=${harness.service.port}\n`);
    const { code, err } = await runCall(["--to", "+15557654321", "--env-file", file]);
    expect(code).toBe(1);
    expect(err).toContain(`the server wants a secret and ${file} sets no ENDPOINT_SECRET`);
  });

  test("a missing file is named", async () => {
    const { code, err } = await runCall([
      "--to",
      "+15557654321",
      "--env-file",
      join(dir, "nope.env"),
    ]);
    expect(code).toBe(66);
    expect(err).toBe(`--env-file ${join(dir, "nope.env")}: no such file`);
  });

  test("an unreadable file says to use sudo", async () => {
    const file = join(dir, "root-only.env");
    await Bun.write(file, "ENDPOINT_SECRET=x\n");
    chmodSync(file, 0o000);
    if (process.getuid?.() !== 0) {
      const { code, err } = await runCall(["--to", "+15557654321", "--env-file", file]);
      expect(code).toBe(66);
      expect(err).toContain("permission denied");
      expect(err).toContain("run the command with sudo");
      return;
    }
    // Root reads anything: the command runs as nobody, as an operator without sudo would.
    chmodSync(dir, 0o755);
    const child = await spawnCallScript(
      ["--to", "+15557654321", "--env-file", file],
      ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
    );
    expect(child.exitCode).toBe(66);
    expect(child.stderr).toContain("permission denied");
    expect(child.stderr).toContain("run the command with sudo");
  });

  test("scripts/call.ts is the same command, run with bun (--env-file included)", async () => {
    const file = join(dir, "script.env");
    await Bun.write(file, `ENDPOINT_SECRET=${SECRET}\nSERVER_PORT=${harness.service.port}\n`);
    const child = await spawnCallScript(["--to", "+15557654321", "--env-file", file]);
    expect(child.exitCode).toBe(0);
    expect(child.stdout).toContain(
      `via http://127.0.0.1:${harness.service.port} (the local service)`,
    );
    expect(child.stdout).toMatch(/call placed: CA[0-9a-f]{32}/);
  });
});

describe("call command, last (it locks this client out for a minute)", () => {
  test("explains being throttled after too many wrong secrets, not as the call limit", async () => {
    const server = ["--server", harness.service.url];
    let last = await runCall(["--to", "+15557654321", ...server, "--secret", "wrong-secret-123"]);
    for (let i = 0; i < 10; i++)
      last = await runCall(["--to", "+15557654321", ...server, "--secret", "wrong-secret-123"]);
    expect(last.err).toContain("429:");
    expect(last.err).toContain("too many wrong secrets came from this address");
    expect(last.err).not.toContain("concurrent-call limit");
  });
});
