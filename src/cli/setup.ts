/**
 * The `setup` command: from a fresh Twilio account to a configured service. Interactive with
 * @clack/prompts, or fully scripted with a flag for every answer plus --yes. Verifies the Deepgram
 * key and the Twilio credentials, picks or buys a number, points its webhooks at this service
 * (remembering the previous ones for --teardown), writes the .env file (0600), and reports the state
 * with --status (the same checks, live). The VM part (--install-service / --uninstall-service) lives
 * in service-install.ts.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as clack from "@clack/prompts";
import {
  checkDeepgramKey,
  type DeepgramKeyCheck,
  describeDeepgramKeyCheck,
} from "../adapters/deepgram-keys.ts";
import { type NumberWebhooks, type OwnedNumber, TwilioRest } from "../adapters/twilio-rest.ts";
import { readEnvFile, updateEnvFile } from "./env-file.ts";
import { installService, uninstallService } from "./service-install.ts";

export const SETUP_USAGE = `Usage: setup [options]

Configures Twilio, Deepgram and this service, writing the .env file (mode 0600).
  --env-file PATH        the file to write (default .env)
  --deepgram-key KEY     Deepgram API key
  --account-sid SID      Twilio Account SID          --auth-token TOKEN   Twilio Auth Token
  --number +E164         use this number of the account
  --buy                  buy a local number: --country US (default), --area-code 415
  --url URL              public https URL of the service (SERVER_EXTERNAL_URL)
  --llm-model MODEL      gpt-4o-mini (default), gpt-4o, gpt-4.1-mini
  --voice VOICE          aura-2-thalia-en (default), aura-2-andromeda-en, aura-2-apollo-en, aura-2-arcas-en
  --twilio-only          only the Twilio steps
  --yes                  accept defaults and confirmations (no prompts)
  --status               show the configuration (secrets masked) and check it live
  --teardown             restore the number's previous webhooks
  --install-service      install the binary as a systemd service (as root on the VM)
  --uninstall-service    remove it again
  --root DIR             prefix for the service's paths (default /; for tests and images)
  --binary PATH          the voice-agent binary to install (default: this executable)`;

export const LLM_MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"] as const;
export const VOICES = [
  "aura-2-thalia-en",
  "aura-2-andromeda-en",
  "aura-2-apollo-en",
  "aura-2-arcas-en",
] as const;

export interface SetupIo {
  out(line: string): void;
  err(line: string): void;
  /** Prompts may be shown (a terminal, and no --yes). */
  interactive: boolean;
}

class SetupError extends Error {}

/** How the wizard talks: clack prompts and spinners on a terminal, plain lines otherwise. */
interface Ui {
  step<T>(label: string, work: () => Promise<T>): Promise<T>;
  info(text: string): void;
  ask(
    question: string,
    options?: { secret?: boolean; initial?: string },
  ): Promise<string | undefined>;
  choose<T extends string>(
    question: string,
    options: { value: T; label: string }[],
    initial?: T,
  ): Promise<T | undefined>;
  confirm(question: string): Promise<boolean>;
}

function plainUi(io: SetupIo, yes: boolean): Ui {
  return {
    async step(label, work) {
      io.out(`… ${label}`);
      const result = await work();
      io.out(`✓ ${label}`);
      return result;
    },
    info: (text) => io.out(text),
    ask: async () => undefined,
    choose: async (_question, _options, initial) => initial,
    confirm: async () => yes,
  };
}

function clackUi(): Ui {
  /**
   * Runs one prompt; Ctrl-C (clack's cancel) and Ctrl-D (end of input, which clack ignores while
   * its line reader closes underneath it) both end the wizard with "cancelled".
   */
  const answer = async <T>(ask: (signal: AbortSignal) => Promise<T | symbol>): Promise<T> => {
    const controller = new AbortController();
    const onKey = (_text: unknown, key?: { ctrl?: boolean; name?: string }) => {
      if (key?.ctrl && key.name === "d") controller.abort();
    };
    process.stdin.on("keypress", onKey);
    try {
      const value = await ask(controller.signal);
      if (typeof value === "symbol") throw new SetupError("cancelled");
      return value;
    } finally {
      process.stdin.off("keypress", onKey);
    }
  };
  return {
    async step(label, work) {
      const spin = clack.spinner();
      spin.start(label);
      try {
        const result = await work();
        spin.stop(label);
        return result;
      } catch (error) {
        spin.error(`${label}: failed`);
        throw error;
      }
    },
    info: (text) => clack.log.info(text),
    ask: async (question, options = {}) =>
      (await answer<string>((signal) =>
        options.secret
          ? clack.password({ message: question, signal })
          : clack.text({
              message: question,
              signal,
              ...(options.initial ? { initialValue: options.initial } : {}),
            }),
      )) || undefined,
    choose: async <T extends string>(
      question: string,
      options: { value: T; label: string }[],
      initial?: T,
    ) =>
      (await answer((signal) =>
        clack.select<string>({
          message: question,
          options,
          signal,
          ...(initial ? { initialValue: initial } : {}),
        }),
      )) as T,
    confirm: (question) =>
      answer<boolean>((signal) => clack.confirm({ message: question, signal })),
  };
}

/** Shows the start of a secret only. */
export function mask(secret: string | undefined): string {
  if (!secret) return "(not set)";
  return secret.length <= 8
    ? "••••"
    : `${secret.slice(0, 4)}…${secret.slice(-2)} (${secret.length} characters)`;
}

/** Previous webhooks of the numbers setup changed, kept beside the env file for --teardown. */
interface SetupState {
  numbers: Record<string, NumberWebhooks & { phoneNumber: string }>;
}

const statePath = (envFile: string) => `${envFile}.setup.json`;

function readState(envFile: string): SetupState {
  return existsSync(statePath(envFile))
    ? JSON.parse(readFileSync(statePath(envFile), "utf8"))
    : { numbers: {} };
}

function writeState(envFile: string, state: SetupState): void {
  writeFileSync(statePath(envFile), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

/** Runs the command; resolves with the process exit code. */
export async function runSetup(
  argv: string[],
  env: Record<string, string | undefined>,
  io: SetupIo,
): Promise<number> {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(argv).values;
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${SETUP_USAGE}`);
    return 64;
  }
  if (values.help) {
    io.out(SETUP_USAGE);
    return 0;
  }
  const envFile = values["env-file"];
  const ui = io.interactive && !values.yes ? clackUi() : plainUi(io, values.yes === true);
  try {
    if (values["install-service"]) return await installService(values, envFile, io);
    if (values["uninstall-service"]) return await uninstallService(values, io);
    const file = readEnvFile(envFile);
    const setting = (name: string) => file[name] ?? env[name];
    if (values.status) return await status(values, setting, envFile, io);
    if (values.teardown) return await teardown(setting, envFile, ui, io);
    return await configure(values, setting, envFile, ui, io);
  } catch (error) {
    io.err(
      error instanceof SetupError ? error.message : `setup failed: ${(error as Error).message}`,
    );
    return 1;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      "env-file": { type: "string", default: ".env" },
      "deepgram-key": { type: "string" },
      "account-sid": { type: "string" },
      "auth-token": { type: "string" },
      number: { type: "string" },
      buy: { type: "boolean" },
      country: { type: "string", default: "US" },
      "area-code": { type: "string" },
      url: { type: "string" },
      "llm-model": { type: "string" },
      voice: { type: "string" },
      "twilio-only": { type: "boolean" },
      yes: { type: "boolean", short: "y" },
      status: { type: "boolean" },
      teardown: { type: "boolean" },
      "install-service": { type: "boolean" },
      "uninstall-service": { type: "boolean" },
      root: { type: "string", default: "/" },
      binary: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}

export type SetupFlags = ReturnType<typeof parse>["values"];

function twilioFor(
  setting: (name: string) => string | undefined,
  accountSid: string,
  authToken: string,
): TwilioRest {
  return new TwilioRest({
    accountSid,
    authToken,
    apiUrl: setting("TWILIO_API_URL") ?? "https://api.twilio.com",
  });
}

/** Longest wait for Deepgram to answer the key check. */
const DEEPGRAM_CHECK_TIMEOUT_MS = 10_000;

function checkKey(
  setting: (name: string) => string | undefined,
  apiKey: string,
): Promise<DeepgramKeyCheck> {
  return checkDeepgramKey({
    apiUrl: setting("DEEPGRAM_API_URL") || "https://api.deepgram.com",
    apiKey,
    timeoutMs: DEEPGRAM_CHECK_TIMEOUT_MS,
  });
}

/**
 * A rejected key stops setup before anything is written; a key that could not be checked (Deepgram
 * unreachable or answering oddly) is kept with a warning, since it may well be right.
 */
async function verifyDeepgramKey(
  setting: (name: string) => string | undefined,
  apiKey: string,
  ui: Ui,
): Promise<void> {
  const check = await ui.step("Checking the Deepgram API key", async () => {
    const result = await checkKey(setting, apiKey);
    if (result.verdict === "rejected")
      throw new SetupError(
        `${describeDeepgramKeyCheck(result)}. Copy the key again from console.deepgram.com (API Keys) and run setup again.`,
      );
    return result;
  });
  const text = describeDeepgramKeyCheck(check);
  ui.info(
    check.verdict === "valid" || check.verdict === "limited"
      ? text
      : `Warning: ${text}. The key is kept unchecked; check it later with: voice-agent setup --status`,
  );
}

async function need(
  value: string | undefined,
  ask: () => Promise<string | undefined>,
  flag: string,
): Promise<string> {
  const answer = value ?? (await ask());
  if (!answer)
    throw new SetupError(
      `missing ${flag} (give it as a flag, or run setup in a terminal without --yes)`,
    );
  return answer;
}

async function configure(
  flags: SetupFlags,
  setting: (name: string) => string | undefined,
  envFile: string,
  ui: Ui,
  io: SetupIo,
): Promise<number> {
  const updates: Record<string, string> = {};
  if (!flags["twilio-only"]) {
    updates.DEEPGRAM_API_KEY = await need(
      flags["deepgram-key"] ?? setting("DEEPGRAM_API_KEY"),
      () => ui.ask("Deepgram API key", { secret: true }),
      "--deepgram-key",
    );
    await verifyDeepgramKey(setting, updates.DEEPGRAM_API_KEY, ui);
  }
  const accountSid = await need(
    flags["account-sid"] ?? setting("TWILIO_ACCOUNT_SID"),
    () => ui.ask("Twilio Account SID (AC…)"),
    "--account-sid",
  );
  const authToken = await need(
    flags["auth-token"] ?? setting("TWILIO_AUTH_TOKEN"),
    () => ui.ask("Twilio Auth Token", { secret: true }),
    "--auth-token",
  );
  const twilio = twilioFor(setting, accountSid, authToken);
  const account = await ui
    .step("Checking the Twilio credentials", () => twilio.verifyAccount(accountSid))
    .catch((error: Error) => {
      throw new SetupError(
        `Twilio did not accept these credentials (${error.message}). Check the Account SID and Auth Token.`,
      );
    });
  ui.info(`Twilio account: ${account.friendlyName} (${account.status})`);
  updates.TWILIO_ACCOUNT_SID = accountSid;
  updates.TWILIO_AUTH_TOKEN = authToken;

  const number = await pickNumber(flags, setting, twilio, ui);
  updates.TWILIO_PHONE_NUMBER = number.phoneNumber;

  const url = (
    await need(
      flags.url ?? setting("SERVER_EXTERNAL_URL"),
      () =>
        ui.ask("Public https URL of this service (SERVER_EXTERNAL_URL)", { initial: "https://" }),
      "--url",
    )
  ).replace(/\/+$/, "");
  if (!URL.canParse(url)) throw new SetupError(`--url must be an absolute URL, got ${url}`);
  if (!url.startsWith("https://"))
    ui.info(
      "Warning: Twilio only calls https webhooks and opens wss streams; use https in production.",
    );
  updates.SERVER_EXTERNAL_URL = url;

  const state = readState(envFile);
  if (!state.numbers[number.sid]) {
    const { voiceUrl, voiceMethod, statusCallback, statusCallbackMethod, phoneNumber } = number;
    state.numbers[number.sid] = {
      phoneNumber,
      voiceUrl,
      voiceMethod,
      statusCallback,
      statusCallbackMethod,
    };
    writeState(envFile, state);
  }
  await ui.step(`Pointing ${number.phoneNumber} at ${url}/incoming-call`, () =>
    twilio.configureNumber(number.sid, {
      voiceUrl: `${url}/incoming-call`,
      voiceMethod: "POST",
      statusCallback: `${url}/call-status`,
      statusCallbackMethod: "POST",
    }),
  );

  updates.ENDPOINT_SECRET = setting("ENDPOINT_SECRET") ?? randomBytes(32).toString("hex");
  if (!flags["twilio-only"]) {
    updates.LLM_MODEL =
      flags["llm-model"] ??
      (await ui.choose(
        "LLM for the agent",
        LLM_MODELS.map((model) => ({ value: model, label: model })),
        (setting("LLM_MODEL") as (typeof LLM_MODELS)[number]) ?? "gpt-4o-mini",
      )) ??
      "gpt-4o-mini";
    updates.VOICE_MODEL =
      flags.voice ??
      (await ui.choose(
        "Voice",
        VOICES.map((voice) => ({ value: voice, label: voice })),
        (setting("VOICE_MODEL") as (typeof VOICES)[number]) ?? "aura-2-thalia-en",
      )) ??
      "aura-2-thalia-en";
  }
  const changed = updateEnvFile(envFile, updates);
  io.out(`${changed ? "Wrote" : "Unchanged:"} ${envFile} (mode 0600)`);
  io.out(
    `Calls to ${number.phoneNumber} now reach ${url}/incoming-call. Start the service and check with: voice-agent setup --status`,
  );
  return 0;
}

async function pickNumber(
  flags: SetupFlags,
  setting: (name: string) => string | undefined,
  twilio: TwilioRest,
  ui: Ui,
): Promise<OwnedNumber> {
  const owned = await ui.step("Listing the account's phone numbers", () => twilio.listNumbers());
  if (flags.buy) return buyNumber(flags, twilio, ui);
  const wanted = flags.number ?? setting("TWILIO_PHONE_NUMBER");
  if (wanted) {
    const found = owned.find((number) => number.phoneNumber === wanted);
    if (!found)
      throw new SetupError(
        `${wanted} is not a number of this Twilio account (it has: ${owned.map((n) => n.phoneNumber).join(", ") || "none"})`,
      );
    return found;
  }
  const BUY = "buy";
  const choice = await ui.choose(
    "Which number should the agent use?",
    [
      ...owned.map((number) => ({
        value: number.sid,
        label:
          number.friendlyName === number.phoneNumber
            ? number.phoneNumber
            : `${number.phoneNumber} (${number.friendlyName})`,
      })),
      { value: BUY, label: "Buy a new local number" },
    ],
    owned.length === 1 ? owned[0]?.sid : undefined,
  );
  if (choice === BUY) return buyNumber(flags, twilio, ui);
  const chosen = owned.find((number) => number.sid === choice);
  if (!chosen) throw new SetupError("no number chosen: give --number +E164 or --buy");
  return chosen;
}

async function buyNumber(flags: SetupFlags, twilio: TwilioRest, ui: Ui): Promise<OwnedNumber> {
  const areaCode = flags["area-code"] ? Number(flags["area-code"]) : undefined;
  const country = flags.country ?? "US";
  const found = await ui.step(
    `Searching local numbers in ${country}${areaCode ? ` (${areaCode})` : ""}`,
    () => twilio.searchNumbers(country, areaCode),
  );
  if (found.length === 0)
    throw new SetupError("Twilio has no such numbers for sale; try another --area-code");
  const pick =
    (await ui.choose(
      "Number to buy",
      found.map((number) => ({
        value: number.phoneNumber,
        label: `${number.phoneNumber} ${number.locality}`,
      })),
      found[0]?.phoneNumber,
    )) ?? "";
  if (!(await ui.confirm(`Buy ${pick}? Twilio charges your account for it.`))) {
    throw new SetupError(`not buying ${pick} without confirmation (add --yes)`);
  }
  return ui.step(`Buying ${pick}`, () => twilio.buyNumber(pick));
}

async function teardown(
  setting: (name: string) => string | undefined,
  envFile: string,
  ui: Ui,
  io: SetupIo,
): Promise<number> {
  const state = readState(envFile);
  const accountSid = setting("TWILIO_ACCOUNT_SID");
  const authToken = setting("TWILIO_AUTH_TOKEN");
  if (!accountSid || !authToken) throw new SetupError(`no Twilio credentials in ${envFile}`);
  const twilio = twilioFor(setting, accountSid, authToken);
  const entries = Object.entries(state.numbers);
  if (entries.length === 0) io.out("Nothing to restore: setup has not changed any number.");
  for (const [sid, previous] of entries) {
    const { phoneNumber, ...webhooks } = previous;
    await ui.step(`Restoring the previous webhook of ${phoneNumber}`, () =>
      twilio.configureNumber(sid, webhooks),
    );
    delete state.numbers[sid];
    writeState(envFile, state);
  }
  return 0;
}

async function status(
  flags: SetupFlags,
  setting: (name: string) => string | undefined,
  envFile: string,
  io: SetupIo,
): Promise<number> {
  const secret = (name: string) => `${name}=${mask(setting(name))}`;
  const plain = (name: string) => `${name}=${setting(name) ?? "(not set)"}`;
  io.out(`Configuration (${envFile}):`);
  for (const line of [
    plain("SERVER_EXTERNAL_URL"),
    secret("ENDPOINT_SECRET"),
    plain("TWILIO_ACCOUNT_SID"),
    secret("TWILIO_AUTH_TOKEN"),
    plain("TWILIO_PHONE_NUMBER"),
    secret("DEEPGRAM_API_KEY"),
    plain("LLM_MODEL"),
    plain("VOICE_MODEL"),
  ]) {
    io.out(`  ${line}`);
  }
  const checks: [string, () => Promise<string>][] = [];
  const accountSid = setting("TWILIO_ACCOUNT_SID");
  const authToken = setting("TWILIO_AUTH_TOKEN");
  const url = setting("SERVER_EXTERNAL_URL")?.replace(/\/+$/, "");
  if (accountSid && authToken) {
    const twilio = twilioFor(setting, accountSid, authToken);
    checks.push([
      "Twilio credentials",
      async () => (await twilio.verifyAccount(accountSid)).friendlyName,
    ]);
    checks.push([
      "Number webhook",
      async () => {
        const number = (await twilio.listNumbers()).find(
          (owned) => owned.phoneNumber === setting("TWILIO_PHONE_NUMBER"),
        );
        if (!number) throw new Error(`${setting("TWILIO_PHONE_NUMBER")} is not in the account`);
        if (number.voiceUrl !== `${url}/incoming-call`)
          throw new Error(`points at ${number.voiceUrl || "nothing"}, not ${url}/incoming-call`);
        return `${number.phoneNumber} → ${number.voiceUrl}`;
      },
    ]);
  }
  const deepgramKey = setting("DEEPGRAM_API_KEY");
  if (deepgramKey) {
    checks.push([
      "Deepgram API key",
      async () => {
        const check = await checkKey(setting, deepgramKey);
        const text = describeDeepgramKeyCheck(check);
        if (check.verdict === "valid" || check.verdict === "limited") return text;
        throw new Error(check.verdict === "rejected" ? text : `not checked: ${text}`);
      },
    ]);
  }
  const server = flags.url ?? url;
  if (server) {
    checks.push([
      "Service /health",
      async () => {
        const response = await fetch(`${server}/health`, { signal: AbortSignal.timeout(5_000) });
        if (!response.ok) throw new Error(`answered ${response.status}`);
        return `${server}/health answered 200`;
      },
    ]);
  }
  let failures = 0;
  for (const [name, check] of checks) {
    try {
      io.out(`✓ ${name}: ${await check()}`);
    } catch (error) {
      failures++;
      io.out(`✗ ${name}: ${(error as Error).message}`);
    }
  }
  return failures === 0 ? 0 : 1;
}
