/** The setup wizard's interactive prompts, answered key by key on a real pseudo-terminal against the fake Twilio and Deepgram REST servers. */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readEnvFile } from "../../src/cli/env-file.ts";
import { serveHealth } from "../fakes/health-server.ts";
import { FakeTtsServer } from "../fakes/tts-server.ts";
import { FakeTwilioRest } from "../fakes/twilio-rest-server.ts";
import { freePort } from "../fakes/twilio-webhooks.ts";
import { KEYS, Terminal } from "../helpers/terminal.ts";

const SID = `AC${"6".repeat(32)}`;
const TOKEN = "9876543210fedcba".repeat(2);
const DEEPGRAM_KEY = "c0ffee12".repeat(5);
const ROOT = join(import.meta.dir, "../..");
let twilio: FakeTwilioRest;
let deepgram: FakeTtsServer;
let dir: string;
let envFile: string;
let terminal: Terminal | undefined;

beforeEach(() => {
  twilio = FakeTwilioRest.start(SID, TOKEN);
  deepgram = FakeTtsServer.start(DEEPGRAM_KEY);
  dir = mkdtempSync(join(tmpdir(), "setup-tty-"));
  envFile = join(dir, ".env");
});
afterEach(() => {
  terminal?.kill();
  twilio.stop();
  deepgram.stop();
  rmSync(dir, { recursive: true, force: true });
});

function setupOnTerminal(extra: string[] = [], env: Record<string, string> = {}): Terminal {
  terminal = new Terminal(
    [process.execPath, "run", "src/main.ts", "setup", "--env-file", envFile, ...extra],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "",
        TWILIO_API_URL: twilio.url,
        DEEPGRAM_API_URL: deepgram.url,
        ...env,
      },
    },
  );
  return terminal;
}

/** Backspace over a refused answer, as a person would. */
const erase = (count: number) => "\x7f".repeat(count);

test("a person answers every prompt: hidden secrets, arrow-key choices, a confirmed purchase", async () => {
  twilio.addNumber("+15550000001");
  const tty = setupOnTerminal();
  await tty.answer("Deepgram API key", `${DEEPGRAM_KEY}${KEYS.enter}`);
  await tty.waitFor("Deepgram accepted the API key");
  await tty.answer("Twilio Account SID", `${SID}${KEYS.enter}`);
  await tty.answer("Twilio Auth Token", `${TOKEN}${KEYS.enter}`);
  await tty.waitFor("Twilio account:");
  // The one owned number is preselected; one step down is "Buy a new local number".
  await tty.answer("Which number should the agent use?", `${KEYS.down}${KEYS.enter}`);
  await tty.answer("Number to buy", `${KEYS.down}${KEYS.enter}`);
  await tty.answer("Buy +14155550102?", KEYS.enter);
  await tty.answer("Public https URL", `voice.example.com${KEYS.enter}`);
  await tty.answer("LLM for the agent", `${KEYS.down}${KEYS.enter}`);
  await tty.answer("Voice", KEYS.enter);
  await tty.waitFor(`Wrote ${envFile}`);
  expect(await tty.exited).toBe(0);

  expect(readEnvFile(envFile)).toMatchObject({
    DEEPGRAM_API_KEY: DEEPGRAM_KEY,
    TWILIO_ACCOUNT_SID: SID,
    TWILIO_AUTH_TOKEN: TOKEN,
    TWILIO_PHONE_NUMBER: "+14155550102",
    SERVER_EXTERNAL_URL: "https://voice.example.com",
    LLM_MODEL: "gpt-4o",
    VOICE_MODEL: "aura-2-thalia-en",
  });
  const bought = [...twilio.numbers.values()].find((n) => n.phone_number === "+14155550102");
  expect(bought?.voice_url).toBe("https://voice.example.com/incoming-call");
  expect(tty.screen).not.toContain(DEEPGRAM_KEY);
  expect(tty.screen).not.toContain(TOKEN);
});

test.each([
  ["Ctrl-C", KEYS.ctrlC],
  ["Ctrl-D", KEYS.ctrlD],
])("%s at a prompt cancels: exit 1 and nothing written", async (_name, key) => {
  const tty = setupOnTerminal();
  await tty.answer("Deepgram API key", `${DEEPGRAM_KEY}${KEYS.enter}`);
  await tty.answer("Twilio Account SID", key);
  await tty.waitFor("cancelled");
  expect(await tty.exited).toBe(1);
  expect(existsSync(envFile)).toBe(false);
  expect(twilio.requests).toHaveLength(0);
});

test("each answer is checked at its prompt; a refused token is asked for again, keeping the other answers", async () => {
  twilio.addNumber("+15550000001");
  const tty = setupOnTerminal();
  await tty.answer("Deepgram API key", `dg-short${KEYS.enter}`);
  await tty.waitFor(
    "a Deepgram API key is a long run of letters and digits, 40 today (this has 8 characters)",
  );
  tty.type(`${erase(8)}${DEEPGRAM_KEY}${KEYS.enter}`);
  await tty.waitFor("Deepgram accepted the API key");
  await tty.answer("Twilio Account SID", `hello${KEYS.enter}`);
  await tty.waitFor("an Account SID is AC followed by 32 hexadecimal characters");
  tty.type(`${erase(5)}${SID}${KEYS.enter}`);
  // Right shape, but not this account's token: Twilio answers 401.
  await tty.answer("Twilio Auth Token", `${"f".repeat(32)}${KEYS.enter}`);
  await tty.waitFor("Twilio did not accept these credentials (HTTP 401: Authenticate)");
  await tty.answer("Twilio Account SID", KEYS.enter); // the SID is offered as it was
  await tty.answer("Twilio Auth Token", `${TOKEN}${KEYS.enter}`);
  await tty.waitFor("Twilio account: Fake account (active)");
  await tty.answer("Which number should the agent use?", KEYS.enter);
  await tty.answer("Public https URL", `voice.example.com/docs${KEYS.enter}`);
  await tty.waitFor("give the bare address without a path");
  tty.type(`${erase(5)}${KEYS.enter}`);
  await tty.answer("LLM for the agent", KEYS.enter);
  await tty.answer("Voice", KEYS.enter);
  await tty.waitFor(`Wrote ${envFile}`);
  await tty.waitFor("ENDPOINT_SECRET: generated now (64 characters)");
  await tty.waitFor(`grep ENDPOINT_SECRET ${envFile}`);
  await tty.waitFor("https://voice.example.com/docs");
  await tty.waitFor("--to +1YOURPHONE");
  expect(await tty.exited).toBe(0);

  const values = readEnvFile(envFile);
  expect(values).toMatchObject({
    DEEPGRAM_API_KEY: DEEPGRAM_KEY,
    TWILIO_ACCOUNT_SID: SID,
    TWILIO_AUTH_TOKEN: TOKEN,
    TWILIO_PHONE_NUMBER: "+15550000001",
    SERVER_EXTERNAL_URL: "https://voice.example.com",
  });
  expect(deepgram.projectRequests).toHaveLength(1);
  expect(tty.screen).not.toContain(values.ENDPOINT_SECRET ?? "no secret");
  expect(tty.screen).not.toContain(TOKEN);
  expect(tty.screen).not.toContain(DEEPGRAM_KEY);
});

test("an unreachable Twilio is said to be the network, not the credentials; declining a retry keeps the answers", async () => {
  const down = `http://127.0.0.1:${freePort()}`;
  const tty = setupOnTerminal([], { TWILIO_API_URL: down });
  await tty.answer("Deepgram API key", `${DEEPGRAM_KEY}${KEYS.enter}`);
  await tty.answer("Twilio Account SID", `${SID}${KEYS.enter}`);
  await tty.answer("Twilio Auth Token", `${TOKEN}${KEYS.enter}`);
  await tty.waitFor("Could not reach Twilio to check the credentials");
  await tty.waitFor("refused the connection");
  await tty.answer("Try again?", "n");
  await tty.waitFor("Kept the answers given so far");
  expect(await tty.exited).toBe(1);
  expect(tty.screen).not.toContain("did not accept");
  expect(readEnvFile(envFile)).toEqual({
    DEEPGRAM_API_KEY: DEEPGRAM_KEY,
    TWILIO_ACCOUNT_SID: SID,
    TWILIO_AUTH_TOKEN: TOKEN,
  });
});

test("--status on a terminal with nothing set: each check fails, exit 1, and what to do", async () => {
  const tty = setupOnTerminal(["--status"]);
  await tty.waitFor("✗ Deepgram API key: DEEPGRAM_API_KEY is not set");
  await tty.waitFor("✗ Twilio credentials");
  await tty.waitFor("✗ Service /health: SERVER_EXTERNAL_URL is not set");
  await tty.waitFor("Not ready to take calls: 5 checks failed");
  await tty.waitFor("Nothing is configured yet");
  expect(await tty.exited).toBe(1);
  expect(twilio.requests).toHaveLength(0);
});

test("--status on a terminal with a working setup: every check passes, exit 0, and a call to try", async () => {
  twilio.addNumber("+15550000001");
  const service = serveHealth();
  try {
    const url = `http://127.0.0.1:${service.port}`;
    const number = [...twilio.numbers.values()][0];
    if (number) number.voice_url = `${url}/incoming-call`;
    writeFileSync(
      envFile,
      [
        `DEEPGRAM_API_KEY=${DEEPGRAM_KEY}`,
        `TWILIO_ACCOUNT_SID=${SID}`,
        `TWILIO_AUTH_TOKEN=${TOKEN}`,
        "TWILIO_PHONE_NUMBER=+15550000001",
        `SERVER_EXTERNAL_URL=${url}`,
        `SERVER_PORT=${service.port}`,
        `ENDPOINT_SECRET=${"d".repeat(64)}`,
        "",
      ].join("\n"),
    );
    const tty = setupOnTerminal(["--status"]);
    await tty.waitFor("✓ Deepgram API key");
    await tty.waitFor("✓ Twilio credentials: Fake account (active)");
    await tty.waitFor("✓ Number webhook");
    await tty.waitFor("✓ ENDPOINT_SECRET: set (64 characters)");
    await tty.waitFor(`✓ Service /health: ${url}/health answered 200`);
    await tty.waitFor("Ready to take calls.");
    expect(await tty.exited).toBe(0);
    expect(tty.screen).not.toContain("d".repeat(64));
  } finally {
    service.stop(true);
  }
});
