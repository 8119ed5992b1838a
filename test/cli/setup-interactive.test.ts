/** The setup wizard's interactive prompts, answered key by key on a real pseudo-terminal against the fake Twilio and Deepgram REST servers. */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readEnvFile } from "../../src/cli/env-file.ts";
import { FakeTtsServer } from "../fakes/tts-server.ts";
import { FakeTwilioRest } from "../fakes/twilio-rest-server.ts";
import { KEYS, Terminal } from "../helpers/terminal.ts";

const SID = `AC${"6".repeat(32)}`;
const TOKEN = "interactive-auth-token";
const DEEPGRAM_KEY = "dg-typed-secret-key";
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

function setupOnTerminal(): Terminal {
  terminal = new Terminal(
    [process.execPath, "run", "src/main.ts", "setup", "--env-file", envFile],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "",
        TWILIO_API_URL: twilio.url,
        DEEPGRAM_API_URL: deepgram.url,
      },
    },
  );
  return terminal;
}

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
