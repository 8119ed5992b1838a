/**
 * The `setup` command: from a fresh Twilio account to a configured service. Interactive with
 * @clack/prompts, or fully scripted with a flag for every answer plus --yes. Each answer is checked
 * at its prompt (shape first, then live: the Deepgram key and the Twilio credentials), and a
 * failing item is asked for again without losing the others. It picks or buys a number, points its
 * webhooks at this service (remembering the previous ones for --teardown), writes the .env file
 * (0600) and ends with a summary and next steps. --status shows the same summary with live checks
 * and exits 1 while the service cannot take calls. The VM part (--install-service /
 * --uninstall-service) lives in service-install.ts.
 */

import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import * as clack from "@clack/prompts";
import {
  checkDeepgramKey,
  type DeepgramKeyCheck,
  describeDeepgramKeyCheck,
} from "../adapters/deepgram-keys.ts";
import { type NumberWebhooks, type OwnedNumber, TwilioRest } from "../adapters/twilio-rest.ts";
import { isLoopbackHost } from "../loopback.ts";
import { describeNetworkError } from "../network-errors.ts";
import { E164 } from "../phone-number.ts";
import { readEnvFile, updateEnvFile } from "./env-file.ts";
import { localServiceUrl } from "./local-service.ts";
import { installService, runningCompiled, uninstallService } from "./service-install.ts";

export const SETUP_USAGE = `Usage: setup [options]

Configures Twilio, Deepgram and this service, writing the .env file (mode 0600).
  --env-file PATH        the file to write (default .env)
  --deepgram-key KEY     Deepgram API key (40 letters and digits)
  --account-sid SID      Twilio Account SID (AC + 32 hex)
  --auth-token TOKEN     Twilio Auth Token (32 hex)
  --number +E164         use this number of the account
  --buy                  buy a local number: --country US (default), --area-code 415
  --url URL              public https URL of the service (SERVER_EXTERNAL_URL)
  --llm-model MODEL      gpt-4o-mini (default), gpt-4o, gpt-4.1-mini
  --voice VOICE          aura-2-thalia-en (default), aura-2-andromeda-en, aura-2-apollo-en, aura-2-arcas-en
  --twilio-only          only the Twilio steps
  --yes                  accept defaults and confirmations (no prompts)
  --status               show the configuration (secrets masked), check it live; exit 1 when the
                         service cannot take calls
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

/** Ends setup with a message and an exit code: 1, or 64 for a bad command line. */
class SetupError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Ctrl-C or Ctrl-D at a prompt: nothing is kept. */
class Cancelled extends SetupError {
  constructor() {
    super("cancelled");
  }
}

/** How the wizard talks: clack prompts and spinners on a terminal, plain lines otherwise. */
interface Ui {
  /** Prompts are shown, so a failing answer can be asked for again. */
  interactive: boolean;
  step<T>(label: string, work: () => Promise<T>): Promise<T>;
  info(text: string): void;
  ask(
    question: string,
    options?: {
      secret?: boolean;
      initial?: string;
      /** Why the typed text cannot be accepted (shown under the prompt), or undefined. */
      validate?: (value: string) => string | undefined;
    },
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
    interactive: false,
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
      if (typeof value === "symbol") throw new Cancelled();
      return value;
    } finally {
      process.stdin.off("keypress", onKey);
    }
  };
  return {
    interactive: true,
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
    ask: async (question, options = {}) => {
      const validate = options.validate
        ? (value: string | undefined) => options.validate?.(value ?? "")
        : undefined;
      return (
        (await answer<string>((signal) =>
          options.secret
            ? clack.password({ message: question, signal, ...(validate ? { validate } : {}) })
            : clack.text({
                message: question,
                signal,
                ...(validate ? { validate } : {}),
                ...(options.initial ? { initialValue: options.initial } : {}),
              }),
        )) || undefined
      );
    },
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
  // Enough to tell two secrets apart in a pasted report, never a useful share of one.
  return secret.length < 32
    ? `•••• (${secret.length} characters)`
    : `…${secret.slice(-3)} (${secret.length} characters)`;
}

// ---- What each answer must look like -------------------------------------------------------

/** Why `key` cannot be a Deepgram API key, or undefined. Never repeats the key. */
export function deepgramKeyProblem(key: string): string | undefined {
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(key))
    return "that looks like the key's ID; paste the API key itself (the secret shown once when the key was created)";
  if (/^token\s/i.test(key)) return 'paste the key alone, without "Token "';
  // Keys today are 40 letters and digits; only what cannot be any key is refused here, so that a
  // new key format is judged by Deepgram's own answer, not by this check.
  if (!/^[A-Za-z0-9_-]{20,}$/.test(key))
    return `a Deepgram API key is a long run of letters and digits, 40 today (this has ${key.length} characters); copy it from console.deepgram.com → API Keys`;
  return undefined;
}

/** Why `sid` cannot be a Twilio Account SID, or undefined. */
export function accountSidProblem(sid: string): string | undefined {
  if (/^(SK|PN|CA|AP)[0-9a-f]{32}$/i.test(sid))
    return `that is a ${sid.slice(0, 2)}… SID, not the Account SID: the Account SID starts with AC (Twilio Console → Account Info)`;
  if (!/^AC[0-9a-f]{32}$/i.test(sid))
    return "an Account SID is AC followed by 32 hexadecimal characters (Twilio Console → Account Info)";
  return undefined;
}

/** Why `token` cannot be a Twilio Auth Token, or undefined. Never repeats the token. */
function authTokenProblem(token: string): string | undefined {
  if (!/^[0-9a-f]{32}$/i.test(token))
    return `an Auth Token is 32 hexadecimal characters (this has ${token.length} characters); reveal and copy it in Twilio Console → Account Info`;
  return undefined;
}

/** A typed address as the service wants it: https:// added when no scheme was typed, no trailing slash. */
export function normaliseUrl(url: string): string {
  const trimmed = url.trim().replace(/\/+$/, "");
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) || trimmed === ""
    ? trimmed
    : `https://${trimmed}`;
}

/** Why `url` cannot be SERVER_EXTERNAL_URL, or undefined (http is accepted for loopback only). */
export function publicUrlProblem(url: string): string | undefined {
  if (!URL.canParse(url) || /^https?:\/\/?$/i.test(url))
    return "give the public address of this service, e.g. https://voice.example.com";
  const parsed = new URL(url);
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:")
    return `use https://, not ${parsed.protocol}//`;
  if (parsed.protocol === "http:" && !isLoopbackHost(parsed.hostname))
    return "Twilio reaches webhooks and media streams over https/wss only: use https:// with TLS in a reverse proxy in front (docs/DEPLOY.md)";
  if (parsed.pathname !== "/" || parsed.search || parsed.hash)
    return `give the bare address without a path, e.g. ${parsed.origin} (the service adds /incoming-call and /call-status)`;
  if (parsed.username || parsed.password) return "leave user names and passwords out of the URL";
  return undefined;
}

/** Why `number` is not an E.164 phone number, or undefined. */
function phoneNumberProblem(number: string): string | undefined {
  return E164.test(number)
    ? undefined
    : "phone numbers are written in E.164: + and the country code, digits only, e.g. +15551234567";
}

interface Question {
  variable: string;
  flag: string;
  prompt: string;
  secret?: boolean;
  initial?: string;
  normalise(value: string): string;
  problem(value: string): string | undefined;
}

const trim = (value: string) => value.trim();

const QUESTIONS = {
  deepgramKey: {
    variable: "DEEPGRAM_API_KEY",
    flag: "--deepgram-key",
    prompt: "Deepgram API key",
    secret: true,
    normalise: trim,
    problem: deepgramKeyProblem,
  },
  accountSid: {
    variable: "TWILIO_ACCOUNT_SID",
    flag: "--account-sid",
    prompt: "Twilio Account SID (AC…)",
    normalise: trim,
    problem: accountSidProblem,
  },
  authToken: {
    variable: "TWILIO_AUTH_TOKEN",
    flag: "--auth-token",
    prompt: "Twilio Auth Token",
    secret: true,
    normalise: trim,
    problem: authTokenProblem,
  },
  url: {
    variable: "SERVER_EXTERNAL_URL",
    flag: "--url",
    prompt: "Public https URL of this service (SERVER_EXTERNAL_URL)",
    initial: "https://",
    normalise: normaliseUrl,
    problem: publicUrlProblem,
  },
} satisfies Record<string, Question>;

// ---- Setup state beside the env file -------------------------------------------------------

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

/** Reads a setting from the env file first, then the environment, and says where it came from. */
interface Settings {
  (name: string): string | undefined;
  from(name: string): string;
  /** Run through sudo (SUDO_USER set): root-owned files will need sudo to read afterwards. */
  viaSudo: boolean;
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
    const setting = Object.assign((name: string) => file[name] ?? env[name], {
      from: (name: string) =>
        file[name] !== undefined ? `${name} in ${envFile}` : `${name} in the environment`,
      viaSudo: Boolean(env.SUDO_USER),
    });
    if (values.status) return await status(values, setting, envFile, io);
    if (values.teardown) return await teardown(setting, envFile, ui, io);
    return await configure(values, setting, envFile, ui, io);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    io.err(
      error instanceof SetupError
        ? error.message
        : code === "EACCES" || code === "EPERM"
          ? `setup failed: ${envFile} cannot be read (permission denied): it holds the secrets; run with sudo`
          : `setup failed: ${(error as Error).message}`,
    );
    return error instanceof SetupError ? error.exitCode : 1;
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

// ---- Live checks -----------------------------------------------------------------------------

/** Longest wait for Deepgram or Twilio to answer a check. */
const CHECK_TIMEOUT_MS = 10_000;
/** Longest wait for the service's /health. */
const HEALTH_TIMEOUT_MS = 5_000;

type TwilioCredentialsCheck =
  /** 200: the account and its status (active, suspended, closed). */
  | { verdict: "valid"; friendlyName: string; status: string }
  /** 401/403: Twilio does not accept this Account SID and Auth Token. */
  | { verdict: "rejected"; status: number; message: string }
  /** Any other answer (404 from a wrong TWILIO_API_URL, 5xx…): the credentials were not checked. */
  | { verdict: "unexpected"; status: number; message: string }
  /** No answer at all (DNS, refused connection, time-out): the credentials were not checked. */
  | { verdict: "unreachable"; message: string };

/** `GET /2010-04-01/Accounts/{sid}.json` with HTTP Basic auth, as the SDK authenticates. */
async function checkTwilioCredentials(options: {
  apiUrl: string;
  accountSid: string;
  authToken: string;
  timeoutMs: number;
}): Promise<TwilioCredentialsCheck> {
  const url = new URL(
    `/2010-04-01/Accounts/${encodeURIComponent(options.accountSid)}.json`,
    options.apiUrl,
  );
  let response: Response;
  try {
    response = await fetch(url, {
      headers: {
        Authorization: `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString("base64")}`,
        Accept: "application/json",
      },
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    return {
      verdict: "unreachable",
      message: describeNetworkError(error, url.href, options.timeoutMs),
    };
  }
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  const message =
    typeof body.message === "string"
      ? body.message.replaceAll(options.authToken, "[redacted]")
      : "";
  if (response.ok)
    return {
      verdict: "valid",
      friendlyName: String(body.friendly_name ?? options.accountSid),
      status: String(body.status ?? "unknown"),
    };
  if (response.status === 401 || response.status === 403)
    return { verdict: "rejected", status: response.status, message };
  return { verdict: "unexpected", status: response.status, message };
}

/** One sentence for a person: what Twilio said of the credentials, without the token. */
function describeTwilioCheck(check: TwilioCredentialsCheck, apiUrl: string): string {
  const because = (message: string) => (message ? `: ${message}` : "");
  switch (check.verdict) {
    case "valid":
      return `${check.friendlyName} (${check.status})`;
    case "rejected":
      return `Twilio did not accept these credentials (HTTP ${check.status}${because(check.message)}): check the Account SID and Auth Token`;
    case "unexpected":
      return `Twilio answered HTTP ${check.status}${because(check.message)} at ${apiUrl}; the credentials could not be checked (is TWILIO_API_URL right?)`;
    case "unreachable":
      return `could not reach Twilio to check the credentials: ${check.message}. This is a network problem, not a verdict on the credentials: check this machine's internet access and DNS (or TWILIO_API_URL)`;
  }
}

const twilioApiUrl = (setting: Settings) => setting("TWILIO_API_URL") || "https://api.twilio.com";

function twilioFor(setting: Settings, accountSid: string, authToken: string): TwilioRest {
  return new TwilioRest({ accountSid, authToken, apiUrl: twilioApiUrl(setting) });
}

function checkTwilio(
  setting: Settings,
  accountSid: string,
  authToken: string,
): Promise<TwilioCredentialsCheck> {
  return checkTwilioCredentials({
    apiUrl: twilioApiUrl(setting),
    accountSid,
    authToken,
    timeoutMs: CHECK_TIMEOUT_MS,
  });
}

function checkKey(setting: Settings, apiKey: string): Promise<DeepgramKeyCheck> {
  return checkDeepgramKey({
    apiUrl: setting("DEEPGRAM_API_URL") || "https://api.deepgram.com",
    apiKey,
    timeoutMs: CHECK_TIMEOUT_MS,
  });
}

// ---- The wizard ------------------------------------------------------------------------------

/** Asks `question` until the answer has the right shape. */
async function ask(question: Question, ui: Ui, initial?: string): Promise<string> {
  const raw = await ui.ask(question.prompt, {
    ...(question.secret ? { secret: true } : {}),
    ...((initial ?? question.initial) ? { initial: initial ?? question.initial } : {}),
    validate: (value) =>
      value.trim() === "" || (question.initial && value.trim() === question.initial)
        ? "an answer is needed here (Ctrl-C stops setup)"
        : question.problem(question.normalise(value)),
  });
  if (raw === undefined)
    throw new SetupError(
      `missing ${question.flag} (give it as a flag, or run setup in a terminal without --yes)`,
    );
  return question.normalise(raw);
}

/**
 * The answer to `question`: the flag or the setting when it has the right shape, else asked for. A
 * wrong flag is a usage error (64) and a wrong setting an error where nobody can be asked.
 */
async function obtain(
  question: Question,
  flag: string | undefined,
  setting: Settings,
  ui: Ui,
): Promise<string> {
  // Flags were checked before anything was asked (configure): a bad one has already stopped setup.
  if (flag !== undefined) return question.normalise(flag);
  const given = setting(question.variable);
  if (given !== undefined) {
    const value = question.normalise(given);
    const problem = question.problem(value);
    if (!problem) return value;
    const source = setting.from(question.variable);
    if (!ui.interactive) throw new SetupError(`${source}: ${problem}`, 1);
    ui.info(`${source} cannot be used: ${problem}`);
  }
  return ask(question, ui);
}

/**
 * The Deepgram key, checked live. A rejected key is asked for again on a terminal and stops setup
 * otherwise; a key that could not be checked (Deepgram unreachable or answering oddly) is kept with
 * a warning, since it may well be right.
 */
async function deepgramKey(flags: SetupFlags, setting: Settings, ui: Ui): Promise<string> {
  let key = await obtain(QUESTIONS.deepgramKey, flags["deepgram-key"], setting, ui);
  for (;;) {
    const check = await ui
      .step("Checking the Deepgram API key", async () => {
        const result = await checkKey(setting, key);
        if (result.verdict === "rejected")
          throw new CheckFailed(describeDeepgramKeyCheck(result), result.verdict);
        return result;
      })
      .catch((error: Error) => {
        if (!(error instanceof CheckFailed)) throw error;
        const text = `${error.message}. Copy the key again from console.deepgram.com (API Keys)`;
        if (!ui.interactive) throw new SetupError(`${text} and run setup again.`);
        ui.info(`${text}.`);
        return undefined;
      });
    if (check) {
      const text = describeDeepgramKeyCheck(check);
      ui.info(
        check.verdict === "valid" || check.verdict === "limited"
          ? text
          : `Warning: ${text}. The key is kept unchecked; check it later with: voice-agent setup --status`,
      );
      return key;
    }
    key = await ask(QUESTIONS.deepgramKey, ui);
  }
}

/** A live check said no (or could not ask): the words for a person, and the verdict. */
class CheckFailed extends Error {
  constructor(
    message: string,
    readonly verdict: string,
  ) {
    super(message);
  }
}

/**
 * The Account SID and Auth Token, checked live. On a terminal, rejected credentials are asked for
 * again (the SID offered as it was, so Enter keeps it) and an unreachable Twilio can be retried;
 * otherwise either ends setup with what went wrong.
 */
async function twilioCredentials(
  flags: SetupFlags,
  setting: Settings,
  ui: Ui,
  keep: (updates: Record<string, string>) => void,
): Promise<{ accountSid: string; authToken: string }> {
  let accountSid = await obtain(QUESTIONS.accountSid, flags["account-sid"], setting, ui);
  let authToken = await obtain(QUESTIONS.authToken, flags["auth-token"], setting, ui);
  for (;;) {
    const check = await ui
      .step("Checking the Twilio credentials", async () => {
        const result = await checkTwilio(setting, accountSid, authToken);
        if (result.verdict !== "valid")
          throw new CheckFailed(describeTwilioCheck(result, twilioApiUrl(setting)), result.verdict);
        return result;
      })
      .catch((error: Error) => {
        if (!(error instanceof CheckFailed)) throw error;
        return error;
      });
    if (!(check instanceof CheckFailed)) {
      ui.info(`Twilio account: ${describeTwilioCheck(check, twilioApiUrl(setting))}`);
      return { accountSid, authToken };
    }
    if (check.verdict !== "rejected") {
      // Not a verdict on the credentials: they are kept for the next run.
      keep({ TWILIO_ACCOUNT_SID: accountSid, TWILIO_AUTH_TOKEN: authToken });
      const text = `${check.message.charAt(0).toUpperCase()}${check.message.slice(1)}.`;
      if (!ui.interactive || !(await ui.confirm(`${text} Try again?`))) throw new SetupError(text);
      continue;
    }
    if (!ui.interactive) throw new SetupError(`${check.message}.`);
    ui.info(`${check.message}. Enter them again (Enter keeps the Account SID shown).`);
    accountSid = await ask(QUESTIONS.accountSid, ui, accountSid);
    authToken = await ask(QUESTIONS.authToken, ui);
  }
}

async function configure(
  flags: SetupFlags,
  setting: Settings,
  envFile: string,
  ui: Ui,
  io: SetupIo,
): Promise<number> {
  for (const [question, flag] of [
    [QUESTIONS.deepgramKey, flags["twilio-only"] ? undefined : flags["deepgram-key"]],
    [QUESTIONS.accountSid, flags["account-sid"]],
    [QUESTIONS.authToken, flags["auth-token"]],
    [QUESTIONS.url, flags.url],
  ] as const) {
    const problem = flag === undefined ? undefined : question.problem(question.normalise(flag));
    if (problem) throw new SetupError(`${question.flag}: ${problem}`, 64);
  }
  if (flags.number !== undefined) {
    const problem = phoneNumberProblem(flags.number);
    if (problem) throw new SetupError(`--number: ${problem}`, 64);
  }
  if (flags["area-code"] !== undefined && !/^[0-9]{3}$/.test(flags["area-code"]))
    throw new SetupError("--area-code: give the three digits of the area code, e.g. 415", 64);

  const updates: Record<string, string> = {};
  /** Answers that passed their checks, written if a later step fails so the next run starts from them. */
  const kept: Record<string, string> = {};
  const keep = (values: Record<string, string>) => Object.assign(kept, values);
  try {
    if (!flags["twilio-only"]) {
      updates.DEEPGRAM_API_KEY = await deepgramKey(flags, setting, ui);
      keep({ DEEPGRAM_API_KEY: updates.DEEPGRAM_API_KEY });
    }
    const { accountSid, authToken } = await twilioCredentials(flags, setting, ui, keep);
    updates.TWILIO_ACCOUNT_SID = accountSid;
    updates.TWILIO_AUTH_TOKEN = authToken;
    keep({ TWILIO_ACCOUNT_SID: accountSid, TWILIO_AUTH_TOKEN: authToken });
    const twilio = twilioFor(setting, accountSid, authToken);

    const number = await pickNumber(flags, setting, twilio, ui);
    updates.TWILIO_PHONE_NUMBER = number.phoneNumber;

    const url = await obtain(QUESTIONS.url, flags.url, setting, ui);
    if (!url.startsWith("https://"))
      ui.info(
        "Warning: Twilio only calls https webhooks and opens wss streams; http works here only with local fakes.",
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
  } catch (error) {
    if (!(error instanceof Cancelled) && Object.keys(kept).length > 0) {
      updateEnvFile(envFile, kept);
      io.err(
        `Kept the answers given so far in ${envFile} (${Object.keys(kept).join(", ")}); run setup again to go on from there.`,
      );
    }
    throw error;
  }

  const existingSecret = setting("ENDPOINT_SECRET");
  updates.ENDPOINT_SECRET = existingSecret ?? randomBytes(32).toString("hex");
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
    `Calls to ${updates.TWILIO_PHONE_NUMBER} now reach ${updates.SERVER_EXTERNAL_URL}/incoming-call.`,
  );
  const written = readEnvFile(envFile);
  const after = (name: string) => written[name] ?? setting(name);
  io.out("");
  for (const line of summary(after, envFile, {
    secret: existingSecret === undefined ? "generated" : "kept",
    viaSudo: setting.viaSudo,
  }))
    io.out(line);
  io.out("");
  for (const line of nextSteps(after, envFile, { ready: false, viaSudo: setting.viaSudo }))
    io.out(line);
  return 0;
}

async function pickNumber(
  flags: SetupFlags,
  setting: Settings,
  twilio: TwilioRest,
  ui: Ui,
): Promise<OwnedNumber> {
  const owned = await ui.step("Listing the account's phone numbers", () => twilio.listNumbers());
  if (flags.buy) return buyNumber(flags, twilio, ui);
  const wanted = flags.number ?? setting("TWILIO_PHONE_NUMBER");
  if (wanted) {
    const found = owned.find((number) => number.phoneNumber === wanted);
    if (found) return found;
    const text = `${wanted} is not a number of this Twilio account (it has: ${owned.map((n) => n.phoneNumber).join(", ") || "none"})`;
    if (!ui.interactive || flags.number !== undefined) throw new SetupError(text);
    ui.info(text);
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

async function teardown(setting: Settings, envFile: string, ui: Ui, io: SetupIo): Promise<number> {
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

// ---- Summary and next steps (the end of the wizard, --status and --install-service) ----------

/** `sudo ` where the env file is the service's (root-only) one. */
function sudoFor(envFile: string, viaSudo = false): string {
  const path = resolve(envFile);
  if (path.startsWith("/etc/")) return "sudo ";
  return viaSudo && existsSync(path) && statSync(path).uid === 0 ? "sudo " : "";
}

/**
 * How to run this program's commands from here: the binary as invoked (`voice-agent` once
 * installed), or the sources with bun; with the env file and sudo where they are needed.
 */
function commands(envFile: string, installed = false, viaSudo = false) {
  const compiled = installed || runningCompiled();
  const self =
    installed || process.execPath === "/usr/local/bin/voice-agent"
      ? "voice-agent"
      : process.execPath;
  const defaultEnv = resolve(envFile) === resolve(".env");
  const envFlag = defaultEnv ? "" : ` --env-file ${envFile}`;
  const sudo = sudoFor(envFile, viaSudo);
  const call = compiled ? `${self} call` : "bun run scripts/call.ts";
  const setup = compiled ? `${self} setup` : "bun run scripts/setup.ts";
  return {
    setup: (flags: string) => `${sudo}${setup}${envFlag}${flags ? ` ${flags}` : ""}`,
    /** Starts the service with this env file; undefined where only --install-service can. */
    start: defaultEnv
      ? compiled
        ? self
        : "bun run start"
      : compiled
        ? basename(envFile) === ".env"
          ? `cd ${dirname(resolve(envFile))} && ${self}`
          : undefined
        : `bun --env-file=${envFile} run start`,
    install: `sudo ${compiled ? self : "dist/voice-agent"} setup${envFlag} --install-service`,
    call: (flags: string) =>
      defaultEnv ? `${call} ${flags}` : `${sudo}${call} --env-file ${envFile} ${flags}`,
  };
}

/**
 * What is configured and where: the env file, the number and its webhook, where ENDPOINT_SECRET
 * is (never the secret itself) and the API reference.
 */
export function summary(
  setting: (name: string) => string | undefined,
  envFile: string,
  options: { secret?: "generated" | "kept"; viaSudo?: boolean } = {},
): string[] {
  const url = setting("SERVER_EXTERNAL_URL")?.replace(/\/+$/, "");
  const number = setting("TWILIO_PHONE_NUMBER");
  const secret = setting("ENDPOINT_SECRET");
  const local = localServiceUrl(setting);
  const where = `${sudoFor(envFile, options.viaSudo)}grep ENDPOINT_SECRET ${envFile}`;
  const lines = ["Summary:", `  Env file:        ${envFile} (mode 0600, holds the secrets)`];
  if (number)
    lines.push(
      `  Phone number:    ${number}${url ? ` → ${url}/incoming-call (status: ${url}/call-status)` : ""}`,
    );
  if (secret)
    lines.push(
      `  ENDPOINT_SECRET: ${options.secret === "generated" ? "generated now" : "set"} (${secret.length} characters) in ${envFile}; show it with: ${where}`,
      "                   (the bearer secret: POST /make-call and the call records need Authorization: Bearer <it>)",
    );
  else lines.push("  ENDPOINT_SECRET: not set (setup generates one)");
  const model = [setting("LLM_MODEL"), setting("VOICE_MODEL")].filter(Boolean).join(", ");
  if (model) lines.push(`  Agent:           ${model}`);
  lines.push(
    `  API reference:   ${url ? `${url}/docs (on this machine: ${local}/docs)` : `${local}/docs`}`,
  );
  return lines;
}

/** What to do next: start the service, check it, try a call. */
export function nextSteps(
  setting: (name: string) => string | undefined,
  envFile: string,
  options: { ready: boolean; installed?: boolean; viaSudo?: boolean },
): string[] {
  const run = commands(envFile, options.installed, options.viaSudo);
  const call = run.call(`--server ${localServiceUrl(setting)} --to +1YOURPHONE`);
  if (options.ready)
    return [
      "Ready to take calls. Try one to your own phone (E.164, e.g. +15551234567):",
      `  ${call}`,
    ];
  const steps = options.installed
    ? [`Check it live: ${run.setup("--status")}`]
    : [
        run.start
          ? `Start the service: ${run.start}   (on a VM: ${run.install})`
          : `Install and start the service: ${run.install}`,
        `Check it live: ${run.setup("--status")}`,
      ];
  steps.push(`Place a test call to your own phone (E.164, e.g. +15551234567):\n     ${call}`);
  return ["Next steps:", ...steps.map((step, index) => `  ${index + 1}. ${step}`)];
}

// ---- --status ------------------------------------------------------------------------------

interface CheckResult {
  name: string;
  /** ✓ passed, ✗ the service cannot take calls until fixed, ! works but worth a look, – not checked */
  mark: "✓" | "✗" | "!" | "–";
  text: string;
}

async function status(
  flags: SetupFlags,
  setting: Settings,
  envFile: string,
  io: SetupIo,
): Promise<number> {
  const secret = (name: string) => `${name}=${mask(setting(name))}`;
  const plain = (name: string) => `${name}=${setting(name) ?? "(not set)"}`;
  io.out(
    `Configuration (${envFile}${existsSync(envFile) ? "" : ": no such file, only the environment"}):`,
  );
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
  io.out("Checks:");
  const results: CheckResult[] = [];
  const report = (result: CheckResult) => {
    results.push(result);
    io.out(`${result.mark} ${result.name}: ${result.text}`);
  };
  const run = commands(envFile, false, setting.viaSudo);
  const fix = `run: ${run.setup("")}`;

  const deepgramKeyValue = setting("DEEPGRAM_API_KEY");
  if (!deepgramKeyValue)
    report({ name: "Deepgram API key", mark: "✗", text: `DEEPGRAM_API_KEY is not set; ${fix}` });
  else {
    const check = await checkKey(setting, deepgramKeyValue);
    const text = describeDeepgramKeyCheck(check);
    report(
      check.verdict === "valid" || check.verdict === "limited"
        ? { name: "Deepgram API key", mark: "✓", text }
        : check.verdict === "rejected"
          ? { name: "Deepgram API key", mark: "✗", text: `${text}; ${fix}` }
          : { name: "Deepgram API key", mark: "✗", text: `not checked: ${text}` },
    );
  }

  const accountSid = setting("TWILIO_ACCOUNT_SID");
  const authToken = setting("TWILIO_AUTH_TOKEN");
  const number = setting("TWILIO_PHONE_NUMBER");
  const url = (flags.url ?? setting("SERVER_EXTERNAL_URL"))?.replace(/\/+$/, "");
  let twilio: TwilioRest | undefined;
  const missingTwilio = [
    ["TWILIO_ACCOUNT_SID", accountSid],
    ["TWILIO_AUTH_TOKEN", authToken],
  ]
    .filter(([, value]) => !value)
    .map(([name]) => name);
  const shapeProblem =
    (accountSid && accountSidProblem(accountSid)) || (authToken && authTokenProblem(authToken));
  if (missingTwilio.length > 0)
    report({
      name: "Twilio credentials",
      mark: "✗",
      text: `${missingTwilio.join(" and ")} not set; ${fix}`,
    });
  else if (shapeProblem)
    report({ name: "Twilio credentials", mark: "✗", text: `${shapeProblem}; ${fix}` });
  else if (accountSid && authToken) {
    const check = await checkTwilio(setting, accountSid, authToken);
    const text = describeTwilioCheck(check, twilioApiUrl(setting));
    if (check.verdict === "valid") {
      twilio = twilioFor(setting, accountSid, authToken);
      report({
        name: "Twilio credentials",
        mark: check.status === "active" ? "✓" : "✗",
        text: check.status === "active" ? text : `${text}: the account is not active`,
      });
    } else report({ name: "Twilio credentials", mark: "✗", text });
  }

  if (!number)
    report({ name: "Number webhook", mark: "✗", text: `TWILIO_PHONE_NUMBER is not set; ${fix}` });
  else if (!twilio)
    report({
      name: "Number webhook",
      mark: "–",
      text: `${number} not checked (needs working Twilio credentials)`,
    });
  else {
    try {
      const owned = (await twilio.listNumbers()).find((entry) => entry.phoneNumber === number);
      if (!owned)
        report({
          name: "Number webhook",
          mark: "✗",
          text: `${number} is not in the account; ${fix}`,
        });
      else if (!url || owned.voiceUrl !== `${url}/incoming-call`)
        report({
          name: "Number webhook",
          mark: "✗",
          text: `${number} points at ${owned.voiceUrl || "nothing"}${url ? `, not ${url}/incoming-call` : ""}; ${fix}`,
        });
      else
        report({
          name: "Number webhook",
          mark: "✓",
          text: `${owned.phoneNumber} → ${owned.voiceUrl}`,
        });
    } catch (error) {
      report({ name: "Number webhook", mark: "✗", text: (error as Error).message });
    }
  }

  const endpointSecret = setting("ENDPOINT_SECRET");
  report(
    !endpointSecret
      ? {
          name: "ENDPOINT_SECRET",
          mark: "✗",
          text: `not set: the service refuses to start with Twilio configured; ${fix} (it generates one)`,
        }
      : endpointSecret.length < 16
        ? {
            name: "ENDPOINT_SECRET",
            mark: "✗",
            text: `only ${endpointSecret.length} characters (16 or more needed); ${fix}`,
          }
        : {
            name: "ENDPOINT_SECRET",
            mark: "✓",
            text: `set (${endpointSecret.length} characters); show it with: ${sudoFor(envFile, setting.viaSudo)}grep ENDPOINT_SECRET ${envFile}`,
          },
  );

  if (!url)
    report({ name: "Service /health", mark: "✗", text: `SERVER_EXTERNAL_URL is not set; ${fix}` });
  else report(await healthCheck(url, setting));

  io.out("");
  for (const line of summary(setting, envFile, { viaSudo: setting.viaSudo })) io.out(line);
  io.out("");
  const failures = results.filter((result) => result.mark === "✗");
  if (failures.length === 0) {
    for (const line of nextSteps(setting, envFile, { ready: true, viaSudo: setting.viaSudo }))
      io.out(line);
    return 0;
  }
  io.out(
    `Not ready to take calls: ${failures.length} check${failures.length === 1 ? "" : "s"} failed (${failures.map((failure) => failure.name).join(", ")}).`,
  );
  if (!existsSync(envFile) && !accountSid && !deepgramKeyValue)
    io.out(`Nothing is configured yet: ${fix} (it asks for each setting and checks it).`);
  return 1;
}

/**
 * The public URL's /health: 200 from a service that has Twilio and Deepgram configured. When the
 * public URL fails, the local port tells apart "the service is down" from "what is in front of it
 * (DNS, proxy, firewall) does not reach it".
 */
async function healthCheck(
  url: string,
  setting: (name: string) => string | undefined,
): Promise<CheckResult> {
  const name = "Service /health";
  const local = localServiceUrl(setting);
  const probe = async (base: string) => {
    try {
      const response = await fetch(`${base}/health`, {
        signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS),
      });
      const body = (await response.json().catch(() => undefined)) as
        | { integrations?: Record<string, { configured?: boolean; missing?: string[] }> }
        | undefined;
      return { status: response.status, body };
    } catch (error) {
      return { error: describeNetworkError(error, `${base}/health`, HEALTH_TIMEOUT_MS) };
    }
  };
  const answer = await probe(url);
  if ("status" in answer && answer.status === 200) {
    const missing = Object.entries(answer.body?.integrations ?? {}).flatMap(([, integration]) =>
      integration.configured === false ? (integration.missing ?? []) : [],
    );
    if (missing.length > 0)
      return {
        name,
        mark: "✗",
        text: `${url}/health answered 200, but the running service lacks ${missing.join(", ")}: restart it after setup (sudo systemctl restart voice-agent)`,
      };
    return { name, mark: "✓", text: `${url}/health answered 200` };
  }
  const problem =
    "status" in answer
      ? `${url}/health answered ${answer.status}${answer.status === 503 ? " (draining or starting)" : ""}`
      : `could not reach ${url}/health: ${answer.error}`;
  if (url === local) return { name, mark: "✗", text: problem };
  const here = await probe(local);
  const hint =
    "status" in here && here.status === 200
      ? `the service answers on this machine at ${local}, so what is in front of it (DNS, the reverse proxy, the firewall) does not reach it`
      : `nothing answers at ${local} either: start the service (sudo systemctl start voice-agent, or bun run start)`;
  return { name, mark: "✗", text: `${problem}; ${hint}` };
}
