/** The setup wizard driven by flags against the fake Twilio and Deepgram REST servers, with temporary files and roots. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readEnvFile } from "../../src/cli/env-file.ts";
import { mask, runSetup } from "../../src/cli/setup.ts";
import { FakeTtsServer } from "../fakes/tts-server.ts";
import { FakeTwilioRest } from "../fakes/twilio-rest-server.ts";
import { freePort } from "../fakes/twilio-webhooks.ts";

const SID = `AC${"5".repeat(32)}`;
const TOKEN = "setup-auth-token";
const URL_ = "https://voice.example.com";
const DEEPGRAM_KEY = "dg-secret-key-123";
let twilio: FakeTwilioRest;
let deepgram: FakeTtsServer;
let dir: string;
let envFile: string;

beforeEach(() => {
  twilio = FakeTwilioRest.start(SID, TOKEN);
  deepgram = FakeTtsServer.start(DEEPGRAM_KEY);
  dir = mkdtempSync(join(tmpdir(), "setup-"));
  envFile = join(dir, ".env");
});
afterEach(() => {
  twilio.stop();
  deepgram.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function setup(argv: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runSetup(
    ["--env-file", envFile, ...argv],
    { TWILIO_API_URL: twilio.url, DEEPGRAM_API_URL: deepgram.url, ...env },
    {
      out: (line) => out.push(line),
      err: (line) => err.push(line),
      interactive: false,
    },
  );
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const full = [
  "--yes",
  "--deepgram-key",
  DEEPGRAM_KEY,
  "--account-sid",
  SID,
  "--auth-token",
  TOKEN,
  "--url",
  URL_,
];

describe("configuring", () => {
  test("wrong Twilio credentials are reported clearly and nothing is written", async () => {
    const { code, err } = await setup([
      ...full.slice(0, 5),
      "--auth-token",
      "wrong",
      "--url",
      URL_,
      "--number",
      "+15550000001",
    ]);
    expect(code).toBe(1);
    expect(err).toContain("Twilio did not accept these credentials");
    expect(err).toContain("Authenticate");
    expect(existsSync(envFile)).toBe(false);
  });

  test("an existing number gets its webhooks; .env is written 0600 keeping unrelated lines", async () => {
    const number = twilio.addNumber("+15550000001", "https://old.example.com/voice");
    writeFileSync(envFile, "# my settings\nLOG_LEVEL=debug\nSERVER_PORT=9000\n");
    const { code, out } = await setup([...full, "--number", "+15550000001"]);
    expect(code).toBe(0);
    expect(out).toContain(
      "Calls to +15550000001 now reach https://voice.example.com/incoming-call",
    );
    expect(twilio.numbers.get(number.sid)).toMatchObject({
      voice_url: `${URL_}/incoming-call`,
      voice_method: "POST",
      status_callback: `${URL_}/call-status`,
    });
    const text = readFileSync(envFile, "utf8");
    expect(text).toStartWith("# my settings\nLOG_LEVEL=debug\nSERVER_PORT=9000\n");
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    const values = readEnvFile(envFile);
    expect(values).toMatchObject({
      DEEPGRAM_API_KEY: DEEPGRAM_KEY,
      TWILIO_ACCOUNT_SID: SID,
      TWILIO_AUTH_TOKEN: TOKEN,
      TWILIO_PHONE_NUMBER: "+15550000001",
      SERVER_EXTERNAL_URL: URL_,
      LLM_MODEL: "gpt-4o-mini",
      VOICE_MODEL: "aura-2-thalia-en",
    });
    expect(values.ENDPOINT_SECRET).toMatch(/^[0-9a-f]{64}$/);

    const again = await setup(["--yes", "--env-file", envFile]);
    expect(again.code).toBe(0);
    expect(again.out).toContain("Unchanged:");
    expect(readEnvFile(envFile).ENDPOINT_SECRET).toBe(values.ENDPOINT_SECRET);
  });

  test("--teardown restores the previous webhook, even after setup ran twice", async () => {
    const number = twilio.addNumber("+15550000001", "https://old.example.com/voice");
    await setup([...full, "--number", "+15550000001"]);
    await setup([...full, "--number", "+15550000001", "--url", "https://other.example.com"]);
    const { code } = await setup(["--teardown", "--yes"]);
    expect(code).toBe(0);
    expect(twilio.numbers.get(number.sid)?.voice_url).toBe("https://old.example.com/voice");
    expect((await setup(["--teardown", "--yes"])).out).toContain("Nothing to restore");
  });

  test("--buy searches by area code and buys with --yes; Twilio's own error text comes through", async () => {
    twilio.failNextPurchase = {
      status: 400,
      code: 21631,
      message: "Phone Number Requires an Address but the 'AddressSid' parameter was empty.",
    };
    const refused = await setup([...full, "--buy", "--area-code", "415"]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("Requires an Address");
    const bought = await setup([...full, "--buy", "--area-code", "415"]);
    expect(bought.code).toBe(0);
    expect(readEnvFile(envFile).TWILIO_PHONE_NUMBER).toBe("+14155550101");
    expect([...twilio.numbers.values()].map((n) => n.voice_url)).toEqual([`${URL_}/incoming-call`]);
  });

  test("buying needs a confirmation", async () => {
    const { code, err } = await setup([...full.filter((flag) => flag !== "--yes"), "--buy"]);
    expect(code).toBe(1);
    expect(err).toContain("without confirmation (add --yes)");
  });

  test("a missing answer names its flag; --twilio-only skips Deepgram and the models", async () => {
    twilio.addNumber("+15550000001");
    const missing = await setup(["--yes", "--account-sid", SID, "--auth-token", TOKEN]);
    expect(missing.err).toContain("missing --deepgram-key");
    const { code } = await setup([
      "--yes",
      "--twilio-only",
      "--account-sid",
      SID,
      "--auth-token",
      TOKEN,
      "--url",
      URL_,
    ]);
    expect(code).toBe(0);
    const values = readEnvFile(envFile);
    expect(values.DEEPGRAM_API_KEY).toBeUndefined();
    expect(values.LLM_MODEL).toBeUndefined();
    expect(values.TWILIO_PHONE_NUMBER).toBe("+15550000001");
  });
});

describe("--status", () => {
  test("masks secrets and checks credentials, the webhook and /health live", async () => {
    twilio.addNumber("+15550000001");
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => Response.json({ status: "ok" }),
    });
    try {
      await setup([
        ...full,
        "--number",
        "+15550000001",
        "--url",
        `http://127.0.0.1:${server.port}`,
      ]);
      const { code, out } = await setup(["--status"]);
      expect(code).toBe(0);
      expect(out).not.toContain(TOKEN);
      expect(out).not.toContain(DEEPGRAM_KEY);
      expect(out).toContain(`TWILIO_AUTH_TOKEN=${mask(TOKEN)}`);
      expect(out).toContain("✓ Twilio credentials: Fake account");
      expect(out).toContain("✓ Number webhook: +15550000001 → http://127.0.0.1");
      expect(out).toContain("✓ Service /health");
    } finally {
      server.stop(true);
    }
    const down = await setup(["--status"]);
    expect(down.code).toBe(1);
    expect(down.out).toContain("✗ Service /health");
  });
});

describe("the Deepgram key (GET /v1/projects)", () => {
  const keyFlagged = (key: string) => {
    const flags = [...full];
    flags[flags.indexOf("--deepgram-key") + 1] = key;
    return [...flags, "--number", "+15550000001"];
  };

  test("a valid key is checked with its token and said to be accepted", async () => {
    twilio.addNumber("+15550000001");
    const { code, out } = await setup(keyFlagged(DEEPGRAM_KEY));
    expect(code).toBe(0);
    expect(out).toContain("✓ Checking the Deepgram API key");
    expect(out).toContain("Deepgram accepted the API key (1 project: Fake project)");
    expect(deepgram.projectRequests).toEqual([{ authorization: `Token ${DEEPGRAM_KEY}` }]);
  });

  test("a rejected key stops setup before Twilio is asked; nothing is written", async () => {
    twilio.addNumber("+15550000001");
    const { code, out, err } = await setup(keyFlagged("dg-wrong-key-456"));
    expect(code).toBe(1);
    expect(err).toStartWith("Deepgram rejected the API key (HTTP 401: Invalid credentials.)");
    expect(out).not.toContain("✓ Checking the Deepgram API key");
    expect(`${out}${err}`).not.toContain("dg-wrong-key-456");
    expect(twilio.requests).toHaveLength(0);
    expect(existsSync(envFile)).toBe(false);
  });

  test("a key with limited scopes (403) is kept, and said to be limited", async () => {
    twilio.addNumber("+15550000001");
    deepgram.scopedKeys.add("dg-scoped-key-789");
    const { code, out } = await setup(keyFlagged("dg-scoped-key-789"));
    expect(code).toBe(0);
    expect(out).toContain("Deepgram accepted the API key, but it lacks the scope to list projects");
    expect(readEnvFile(envFile).DEEPGRAM_API_KEY).toBe("dg-scoped-key-789");
  });

  test("an unreachable Deepgram is not a rejected key: the key is kept with a warning", async () => {
    twilio.addNumber("+15550000001");
    const { code, out, err } = await setup(keyFlagged(DEEPGRAM_KEY), {
      DEEPGRAM_API_URL: `http://127.0.0.1:${freePort()}`,
    });
    expect(code).toBe(0);
    expect(out).toContain("Warning: could not reach Deepgram to check the API key");
    expect(out).toContain("check it later with: voice-agent setup --status");
    expect(`${out}${err}`).not.toContain("rejected");
    expect(readEnvFile(envFile).DEEPGRAM_API_KEY).toBe(DEEPGRAM_KEY);
  });

  test("--status tells a valid, a limited, a rejected and an unchecked key apart", async () => {
    const status = async (key: string, env: Record<string, string> = {}) => {
      writeFileSync(envFile, `DEEPGRAM_API_KEY=${key}\n`);
      return setup(["--status"], env);
    };
    const valid = await status(DEEPGRAM_KEY);
    expect(valid.code).toBe(0);
    expect(valid.out).toContain(
      "✓ Deepgram API key: Deepgram accepted the API key (1 project: Fake project)",
    );
    deepgram.scopedKeys.add("dg-scoped-key-789");
    const limited = await status("dg-scoped-key-789");
    expect(limited.code).toBe(0);
    expect(limited.out).toContain(
      "✓ Deepgram API key: Deepgram accepted the API key, but it lacks the scope",
    );
    const rejected = await status("dg-wrong-key-456");
    expect(rejected.code).toBe(1);
    expect(rejected.out).toContain(
      "✗ Deepgram API key: Deepgram rejected the API key (HTTP 401: Invalid credentials.)",
    );
    expect(rejected.out).not.toContain("dg-wrong-key-456");
    const unreachable = await status(DEEPGRAM_KEY, {
      DEEPGRAM_API_URL: `http://127.0.0.1:${freePort()}`,
    });
    expect(unreachable.code).toBe(1);
    expect(unreachable.out).toContain(
      "✗ Deepgram API key: not checked: could not reach Deepgram to check the API key",
    );
    expect(unreachable.out).not.toContain("rejected");
  });
});

describe("--install-service", () => {
  test("installs binary, env (0600) and unit under a root, prints the systemctl commands; twice changes nothing", async () => {
    const root = join(dir, "root");
    const binary = join(dir, "voice-agent-binary");
    writeFileSync(binary, "#!/bin/sh\necho fake binary\n");
    writeFileSync(envFile, "SERVER_PORT=8080\nENDPOINT_SECRET=abcdefghijklmnopqrstuvwxyz\n");
    const first = await setup(["--install-service", "--root", root, "--binary", binary]);
    expect(first.code).toBe(0);
    expect(first.out).toContain(`installed ${root}/usr/local/bin/voice-agent`);
    expect(first.out).toContain("systemctl daemon-reload");
    expect(first.out).toContain("systemctl enable --now voice-agent");
    expect(first.out).toContain("journalctl -u voice-agent -f");
    expect(statSync(join(root, "etc/voice-agent/voice-agent.env")).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, "usr/local/bin/voice-agent")).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(root, "etc/systemd/system/voice-agent.service"), "utf8")).toContain(
      "StateDirectory=voice-agent",
    );

    const second = await setup(["--install-service", "--root", root, "--binary", binary]);
    expect(second.out).not.toContain("installed ");
    expect(second.out.match(/unchanged /g)).toHaveLength(3);
    expect(second.out).not.toContain("daemon-reload");

    const removed = await setup(["--uninstall-service", "--root", root]);
    expect(removed.out).toContain(`removed ${root}/etc/systemd/system/voice-agent.service`);
    expect(existsSync(join(root, "usr/local/bin/voice-agent"))).toBe(false);
    expect((await setup(["--uninstall-service", "--root", root])).out).toContain("absent");
  });

  test("needs the binary and an env file", async () => {
    const root = join(dir, "root");
    expect((await setup(["--install-service", "--root", root])).code).toBe(64);
    expect(
      (await setup(["--install-service", "--root", root, "--binary", "/bin/true"])).err,
    ).toContain("run setup first");
  });
});
