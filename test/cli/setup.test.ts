/** The setup wizard driven by flags against the fake Twilio and Deepgram REST servers, with temporary files and roots. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readEnvFile } from "../../src/cli/env-file.ts";
import { serviceEnv } from "../../src/cli/service-install.ts";
import {
  accountSidProblem,
  deepgramKeyProblem,
  mask,
  normaliseUrl,
  publicUrlProblem,
  runSetup,
} from "../../src/cli/setup.ts";
import { describeNetworkError } from "../../src/network-errors.ts";
import { serveHealth } from "../fakes/health-server.ts";
import { FakeTtsServer } from "../fakes/tts-server.ts";
import { FakeTwilioRest } from "../fakes/twilio-rest-server.ts";
import { freePort } from "../fakes/twilio-webhooks.ts";

const SID = `AC${"5".repeat(32)}`;
const TOKEN = "0123456789abcdef".repeat(2);
const URL_ = "https://voice.example.com";
const DEEPGRAM_KEY = "a1b2".repeat(10);
const WRONG_KEY = "0f".repeat(20);
const SCOPED_KEY = "5c".repeat(20);
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
  test("wrong Twilio credentials are reported as such; only the checked Deepgram key is kept", async () => {
    const { code, err } = await setup([
      ...full.slice(0, 5),
      "--auth-token",
      "f".repeat(32),
      "--url",
      URL_,
      "--number",
      "+15550000001",
    ]);
    expect(code).toBe(1);
    expect(err).toContain("Twilio did not accept these credentials (HTTP 401: Authenticate)");
    expect(err).not.toContain("could not reach");
    expect(err).not.toContain("f".repeat(32));
    expect(err).toContain(`Kept the answers given so far in ${envFile} (DEEPGRAM_API_KEY)`);
    expect(readEnvFile(envFile)).toEqual({ DEEPGRAM_API_KEY: DEEPGRAM_KEY });
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
  });

  test("an existing number gets its webhooks; .env is written 0600 keeping unrelated lines", async () => {
    const number = twilio.addNumber("+15550000001", "https://old.example.com/voice");
    writeFileSync(envFile, "# my settings\nLOG_LEVEL=debug\nSERVER_PORT=9000\n");
    const { code, out } = await setup([...full, "--number", "+15550000001"]);
    expect(code).toBe(0);
    expect(out).toContain(
      "Calls to +15550000001 now reach https://voice.example.com/incoming-call",
    );
    expect(out).toContain("ENDPOINT_SECRET: generated now (64 characters)");
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
    expect(again.out).toContain("ENDPOINT_SECRET: set (64 characters)");
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

/** `full` with `flag` set to `value` (replaced, or added). */
function withFlag(flag: string, value: string): string[] {
  const flags = [...full];
  const at = flags.indexOf(flag);
  if (at >= 0) flags[at + 1] = value;
  else flags.push(flag, value);
  return flags;
}

describe("each answer is checked before it is used", () => {
  test.each([
    ["--account-sid", "hello", "an Account SID is AC followed by 32 hexadecimal characters"],
    ["--account-sid", `SK${"1".repeat(32)}`, "that is a SK… SID, not the Account SID"],
    ["--auth-token", "short", "an Auth Token is 32 hexadecimal characters (this has 5 characters)"],
    [
      "--deepgram-key",
      "dg-secret",
      "a Deepgram API key is a long run of letters and digits, 40 today (this has 9",
    ],
    [
      "--url",
      "http://voice.example.com",
      "Twilio reaches webhooks and media streams over https/wss only",
    ],
    [
      "--url",
      "https://voice.example.com/docs",
      "give the bare address without a path, e.g. https://voice.example.com",
    ],
    ["--number", "555-123-4567", "phone numbers are written in E.164"],
    ["--area-code", "4l5", "give the three digits of the area code"],
  ])("%s %s is refused (64) before Deepgram or Twilio is asked", async (flag, value, message) => {
    const { code, err } = await setup(withFlag(flag, value));
    expect(code).toBe(64);
    expect(err).toContain(`${flag}: ${message}`);
    if (flag === "--auth-token" || flag === "--deepgram-key") expect(err).not.toContain(value);
    expect(twilio.requests).toHaveLength(0);
    expect(deepgram.projectRequests).toHaveLength(0);
    expect(existsSync(envFile)).toBe(false);
  });

  test("a wrong value in the env file names the file (no terminal to ask again)", async () => {
    writeFileSync(envFile, "TWILIO_ACCOUNT_SID=hello\n");
    const { code, err } = await setup(["--yes", "--deepgram-key", DEEPGRAM_KEY]);
    expect(code).toBe(1);
    expect(err).toContain(`TWILIO_ACCOUNT_SID in ${envFile}: an Account SID is AC followed by 32`);
  });

  test("the shape checks", () => {
    expect(accountSidProblem(SID)).toBeUndefined();
    expect(deepgramKeyProblem(DEEPGRAM_KEY)).toBeUndefined();
    // Another length is left to Deepgram's answer: a new key format is not locked out.
    expect(deepgramKeyProblem(`${DEEPGRAM_KEY}abcdef`)).toBeUndefined();
    expect(deepgramKeyProblem("short")).toContain("long run of letters and digits");
    expect(deepgramKeyProblem("3f1c2a9e-5b7d-4e2a-9c1f-0a1b2c3d4e5f")).toContain("the key's ID");
    expect(deepgramKeyProblem(`Token ${DEEPGRAM_KEY}`)).toContain('without "Token "');
    expect(normaliseUrl(" voice.example.com/ ")).toBe("https://voice.example.com");
    expect(publicUrlProblem("https://voice.example.com")).toBeUndefined();
    expect(publicUrlProblem("http://127.0.0.1:8080")).toBeUndefined();
    expect(publicUrlProblem("https://")).toContain("give the public address");
    expect(publicUrlProblem("ftp://voice.example.com")).toContain("use https://");
  });
});

describe("no network is not bad credentials", () => {
  test("an unreachable Twilio says so, and keeps the answers for the next run", async () => {
    const down = `http://127.0.0.1:${freePort()}`;
    const failed = await setup([...full, "--number", "+15550000001"], { TWILIO_API_URL: down });
    expect(failed.code).toBe(1);
    expect(failed.err).toContain(
      `Could not reach Twilio to check the credentials: ${down} refused the connection (ECONNREFUSED). This is a network problem, not a verdict on the credentials`,
    );
    expect(failed.err).not.toContain("did not accept");
    expect(failed.err).not.toContain(TOKEN);
    expect(readEnvFile(envFile)).toEqual({
      DEEPGRAM_API_KEY: DEEPGRAM_KEY,
      TWILIO_ACCOUNT_SID: SID,
      TWILIO_AUTH_TOKEN: TOKEN,
    });

    // Twilio is back: the kept answers are used without being given again.
    twilio.addNumber("+15550000001");
    const again = await setup(["--yes", "--url", URL_, "--number", "+15550000001"]);
    expect(again.code).toBe(0);
    expect(readEnvFile(envFile)).toMatchObject({
      TWILIO_AUTH_TOKEN: TOKEN,
      SERVER_EXTERNAL_URL: URL_,
    });
  });

  test("network failures are named: DNS, refused, time-out, TLS", () => {
    const target = "https://api.twilio.com/2010-04-01/Accounts/AC1.json";
    const error = (code: string) => Object.assign(new Error("x"), { code });
    expect(describeNetworkError(error("ENOTFOUND"), target, 10_000)).toBe(
      "the name api.twilio.com could not be resolved (DNS: ENOTFOUND)",
    );
    expect(describeNetworkError(error("ECONNREFUSED"), target, 10_000)).toBe(
      "https://api.twilio.com refused the connection (ECONNREFUSED)",
    );
    expect(
      describeNetworkError(new DOMException("timed out", "TimeoutError"), target, 10_000),
    ).toBe("no answer from https://api.twilio.com within 10 s (time-out)");
    expect(describeNetworkError(error("CERT_HAS_EXPIRED"), target, 10_000)).toBe(
      "the TLS certificate of api.twilio.com was not accepted (CERT_HAS_EXPIRED)",
    );
  });
});

describe("the summary at the end", () => {
  test("says what was done, where the secret is (never the secret), the /docs URL and a test call", async () => {
    twilio.addNumber("+15550000001");
    const { code, out } = await setup([...full, "--number", "+15550000001"]);
    expect(code).toBe(0);
    const secret = readEnvFile(envFile).ENDPOINT_SECRET ?? "";
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    expect(out).not.toContain(secret);
    expect(out).not.toContain(TOKEN);
    expect(out).toContain("Summary:");
    expect(out).toContain(
      `ENDPOINT_SECRET: generated now (64 characters) in ${envFile}; show it with: grep ENDPOINT_SECRET ${envFile}`,
    );
    expect(out).toContain(
      "Phone number:    +15550000001 → https://voice.example.com/incoming-call",
    );
    expect(out).toContain(
      "API reference:   https://voice.example.com/docs (on this machine: http://127.0.0.1:8080/docs)",
    );
    expect(out).toContain("Next steps:");
    expect(out).toContain(`--status`);
    expect(out).toContain(
      `scripts/call.ts --env-file ${envFile} --server http://127.0.0.1:8080 --to +1YOURPHONE`,
    );
  });
});

describe("sudo in the hints", () => {
  test.skipIf(process.getuid?.() !== 0)(
    "run through sudo, a root-owned env file is read with sudo afterwards",
    async () => {
      twilio.addNumber("+15550000001");
      const { out } = await setup([...full, "--number", "+15550000001"], { SUDO_USER: "admin" });
      expect(out).toContain(`show it with: sudo grep ENDPOINT_SECRET ${envFile}`);
      expect(out).toContain(`sudo bun run scripts/call.ts --env-file ${envFile}`);
      // A loopback URL: --status fetches it, and tests never leave this machine.
      const status = await setup(["--status", "--url", `http://127.0.0.1:${freePort()}`], {
        SUDO_USER: "admin",
      });
      expect(status.out).toContain(`show it with: sudo grep ENDPOINT_SECRET ${envFile}`);
    },
  );
});

describe("--status", () => {
  test("with nothing set: every check fails, exit 1, and it says what to do without asking anyone", async () => {
    const { code, out } = await setup(["--status"]);
    expect(code).toBe(1);
    for (const line of [
      "✗ Deepgram API key: DEEPGRAM_API_KEY is not set",
      "✗ Twilio credentials: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN not set",
      "✗ Number webhook: TWILIO_PHONE_NUMBER is not set",
      "✗ ENDPOINT_SECRET: not set",
      "✗ Service /health: SERVER_EXTERNAL_URL is not set",
      "Not ready to take calls: 5 checks failed",
      "Nothing is configured yet: run:",
      "API reference:   http://127.0.0.1:8080/docs",
    ])
      expect(out).toContain(line);
    expect(twilio.requests).toHaveLength(0);
    expect(deepgram.projectRequests).toHaveLength(0);
  });

  test("tells an unreachable Twilio from rejected credentials", async () => {
    writeFileSync(
      envFile,
      `TWILIO_ACCOUNT_SID=${SID}\nTWILIO_AUTH_TOKEN=${"e".repeat(32)}\nTWILIO_PHONE_NUMBER=+15550000001\n`,
    );
    const rejected = await setup(["--status"]);
    expect(rejected.code).toBe(1);
    expect(rejected.out).toContain(
      "✗ Twilio credentials: Twilio did not accept these credentials (HTTP 401: Authenticate)",
    );
    expect(rejected.out).toContain("– Number webhook: +15550000001 not checked");
    const down = `http://127.0.0.1:${freePort()}`;
    const unreachable = await setup(["--status"], { TWILIO_API_URL: down });
    expect(unreachable.code).toBe(1);
    expect(unreachable.out).toContain(
      `✗ Twilio credentials: could not reach Twilio to check the credentials: ${down} refused the connection (ECONNREFUSED). This is a network problem`,
    );
    expect(unreachable.out).not.toContain("did not accept");
  });

  test("a public URL that fails while the local port answers points at what is in front", async () => {
    const service = serveHealth({
      twilio: { configured: false, missing: ["TWILIO_ACCOUNT_SID"] },
      deepgram: { configured: true, missing: [] },
    });
    try {
      const down = `http://127.0.0.1:${freePort()}`;
      writeFileSync(envFile, `SERVER_EXTERNAL_URL=${down}\nSERVER_PORT=${service.port}\n`);
      const { code, out } = await setup(["--status"]);
      expect(code).toBe(1);
      expect(out).toContain(
        `✗ Service /health: could not reach ${down}/health: ${down} refused the connection (ECONNREFUSED); the service answers on this machine at http://127.0.0.1:${service.port}, so what is in front of it (DNS, the reverse proxy, the firewall) does not reach it`,
      );
      // The running service answers, but was started without the Twilio settings.
      writeFileSync(envFile, `SERVER_EXTERNAL_URL=http://127.0.0.1:${service.port}\n`);
      const stale = await setup(["--status"]);
      expect(stale.out).toContain(
        "answered 200, but the running service lacks TWILIO_ACCOUNT_SID: restart it after setup",
      );
    } finally {
      service.stop(true);
    }
  });

  test("masks secrets and checks credentials, the webhook and /health live", async () => {
    twilio.addNumber("+15550000001");
    const server = serveHealth();
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
      // At most the last three characters of a long secret; none of a short one.
      expect(mask("0123456789abcdef0123456789abcdef")).toBe("…def (32 characters)");
      expect(mask("0123456789abcdef")).toBe("•••• (16 characters)");
      expect(out).toContain("✓ Twilio credentials: Fake account");
      expect(out).toContain("✓ Number webhook: +15550000001 → http://127.0.0.1");
      expect(out).toContain("✓ Service /health");
      expect(out).toContain(
        `✓ ENDPOINT_SECRET: set (64 characters); show it with: grep ENDPOINT_SECRET ${envFile}`,
      );
      expect(out).not.toContain(readEnvFile(envFile).ENDPOINT_SECRET ?? "no secret");
      expect(out).toContain(`API reference:   http://127.0.0.1:${server.port}/docs`);
      expect(out).toContain("Ready to take calls.");
      expect(out).toContain("--to +1YOURPHONE");
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
    const { code, out, err } = await setup(keyFlagged(WRONG_KEY));
    expect(code).toBe(1);
    expect(err).toStartWith("Deepgram rejected the API key (HTTP 401: Invalid credentials.)");
    expect(out).not.toContain("✓ Checking the Deepgram API key");
    expect(`${out}${err}`).not.toContain(WRONG_KEY);
    expect(twilio.requests).toHaveLength(0);
    expect(existsSync(envFile)).toBe(false);
  });

  test("a key with limited scopes (403) is kept, and said to be limited", async () => {
    twilio.addNumber("+15550000001");
    deepgram.scopedKeys.add(SCOPED_KEY);
    const { code, out } = await setup(keyFlagged(SCOPED_KEY));
    expect(code).toBe(0);
    expect(out).toContain("Deepgram accepted the API key, but it lacks the scope to list projects");
    expect(readEnvFile(envFile).DEEPGRAM_API_KEY).toBe(SCOPED_KEY);
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
    // Only the key is set, so every run is "not ready": the Deepgram line is what differs.
    const valid = await status(DEEPGRAM_KEY);
    expect(valid.code).toBe(1);
    expect(valid.out).toContain(
      "✓ Deepgram API key: Deepgram accepted the API key (1 project: Fake project)",
    );
    deepgram.scopedKeys.add(SCOPED_KEY);
    const limited = await status(SCOPED_KEY);
    expect(limited.code).toBe(1);
    expect(limited.out).toContain(
      "✓ Deepgram API key: Deepgram accepted the API key, but it lacks the scope",
    );
    const rejected = await status(WRONG_KEY);
    expect(rejected.code).toBe(1);
    expect(rejected.out).toContain(
      "✗ Deepgram API key: Deepgram rejected the API key (HTTP 401: Invalid credentials.)",
    );
    expect(rejected.out).not.toContain(WRONG_KEY);
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
    expect(second.out.match(/unchanged /g)).toHaveLength(4);
    expect(second.out).not.toContain("daemon-reload");

    // A secret rotated on the VM survives installing again (an upgrade); new settings join it.
    const installedEnv = join(root, "etc/voice-agent/voice-agent.env");
    writeFileSync(
      installedEnv,
      readFileSync(installedEnv, "utf8").replace(
        "ENDPOINT_SECRET=abcdefghijklmnopqrstuvwxyz",
        "ENDPOINT_SECRET=rotated-0123456789abcdef",
      ),
    );
    writeFileSync(envFile, `${readFileSync(envFile, "utf8")}LOG_LEVEL=debug\n`);
    const third = await setup(["--install-service", "--root", root, "--binary", binary]);
    expect(readEnvFile(installedEnv)).toMatchObject({
      ENDPOINT_SECRET: "rotated-0123456789abcdef",
      LOG_LEVEL: "debug",
    });
    expect(third.out).toContain("kept the values");
    expect(third.out).toContain("ENDPOINT_SECRET");
    expect(third.out).not.toContain("rotated-0123456789abcdef");

    const removed = await setup(["--uninstall-service", "--root", root]);
    expect(removed.out).toContain(`removed ${root}/etc/systemd/system/voice-agent.service`);
    expect(removed.out).toContain(`removed ${root}/usr/local/share/doc/voice-agent/README.md`);
    expect(existsSync(join(root, "usr/local/bin/voice-agent"))).toBe(false);
    expect((await setup(["--uninstall-service", "--root", root])).out).toContain("absent");
  });

  test("binds the installed service to loopback for the proxy it suggests; the wizard's .env stays as it was", async () => {
    const root = join(dir, "root");
    const binary = join(dir, "voice-agent-binary");
    writeFileSync(binary, "#!/bin/sh\n");
    const source = `SERVER_PORT=9000\nSERVER_EXTERNAL_URL=${URL_}\nENDPOINT_SECRET=${"c".repeat(64)}\n`;
    writeFileSync(envFile, source);
    const { code, out } = await setup(["--install-service", "--root", root, "--binary", binary]);
    expect(code).toBe(0);
    expect(readFileSync(envFile, "utf8")).toBe(source);
    const installed = readEnvFile(join(root, "etc/voice-agent/voice-agent.env"));
    expect(installed).toMatchObject({
      SERVER_HOST: "127.0.0.1",
      TRUSTED_PROXIES: "127.0.0.1",
      SERVER_PORT: "9000",
    });
    expect(out).toContain(
      "SERVER_HOST=127.0.0.1 and TRUSTED_PROXIES=127.0.0.1 set in /etc/voice-agent/voice-agent.env: the service listens on loopback only",
    );
    expect(out).toContain("  voice.example.com {\n      reverse_proxy 127.0.0.1:9000\n  }");
    expect(out).toContain("Firewall: open only the proxy's ports (sudo ufw allow 80,443/tcp");
    expect(out).toContain(
      "show it with: sudo grep ENDPOINT_SECRET /etc/voice-agent/voice-agent.env",
    );
    expect(out).not.toContain("c".repeat(64));
    expect(out).toContain(
      "sudo voice-agent setup --env-file /etc/voice-agent/voice-agent.env --status",
    );
    expect(out).toContain(
      "sudo voice-agent call --env-file /etc/voice-agent/voice-agent.env --server http://127.0.0.1:9000 --to +1YOURPHONE",
    );
    const notes = readFileSync(join(root, "usr/local/share/doc/voice-agent/README.md"), "utf8");
    expect(notes).toContain("sudo grep ENDPOINT_SECRET /etc/voice-agent/voice-agent.env");
    expect(readFileSync(join(root, "etc/systemd/system/voice-agent.service"), "utf8")).toContain(
      "\nDocumentation=file:///usr/local/share/doc/voice-agent/README.md\n",
    );
  });

  test("an address the env file chose is kept, and the output says what that means", async () => {
    const root = join(dir, "root");
    const binary = join(dir, "voice-agent-binary");
    writeFileSync(binary, "#!/bin/sh\n");
    writeFileSync(envFile, "SERVER_HOST=0.0.0.0\n");
    const { code, out } = await setup(["--install-service", "--root", root, "--binary", binary]);
    expect(code).toBe(0);
    const installed = readEnvFile(join(root, "etc/voice-agent/voice-agent.env"));
    expect(installed).toEqual({ SERVER_HOST: "0.0.0.0" });
    expect(out).toContain(
      "SERVER_HOST=0.0.0.0 is kept as your env file sets it: port 8080 is reachable from other machines.",
    );
    expect(out).toContain("set SERVER_HOST=127.0.0.1 in /etc/voice-agent/voice-agent.env");
  });

  test("needs the binary and an env file", async () => {
    const root = join(dir, "root");
    expect((await setup(["--install-service", "--root", root])).code).toBe(64);
    expect(
      (await setup(["--install-service", "--root", root, "--binary", "/bin/true"])).err,
    ).toContain("run setup first");
  });
});

describe("the installed env file, as systemd reads it", () => {
  test("`export` lines lose the word systemd would choke on; a loopback host without a trusted proxy is flagged", () => {
    const { text, notes } = serviceEnv('export SERVER_HOST="127.0.0.1"\nexport LOG_LEVEL=debug\n');
    expect(text).toBe('SERVER_HOST="127.0.0.1"\nLOG_LEVEL=debug\n');
    expect(notes.join("\n")).toContain("Add 127.0.0.1 to TRUSTED_PROXIES");
    const trusted = serviceEnv("SERVER_HOST=127.0.0.1\nTRUSTED_PROXIES=127.0.0.1\n");
    expect(trusted.notes.join("\n")).not.toContain("TRUSTED_PROXIES");
  });
});
