/**
 * The `call` command: asks a running voice-agent to place an outbound call (`POST /make-call`) and
 * explains what went wrong in words. Used by `scripts/call.ts` and `voice-agent call`.
 *
 * Settings come from --env-file (the service's own file on a VM), else from the environment (which
 * Bun fills from ./.env). Without --server it prefers the service on this machine and falls back to
 * SERVER_EXTERNAL_URL only when nothing answers locally; it always says which server it used.
 */

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { newNonce, proofHolds } from "../health-proof.ts";
import { isLoopbackHost } from "../loopback.ts";
import { describeNetworkError } from "../network-errors.ts";
import { E164 } from "../phone-number.ts";
import { parseEnv, SERVICE_ENV_FILE } from "./env-file.ts";
import { localServiceUrl } from "./local-service.ts";

export const CALL_USAGE = `Usage: call --to +15551234567 [--lead-name "John Smith" | --lead-file lead.json | --lead-id ID]
            [--env-file PATH] [--server URL] [--secret S]

Places an outbound follow-up call through a running voice-agent (POST /make-call).
  --to NUMBER      number to call, in E.164: +, country code, number (e.g. +15551234567)
  --lead-name N    "First Last" of the lead (the rest of the demo lead's details are not used)
  --lead-file F    JSON file with the lead (first_name, last_name, email, property_address, …)
  --lead-id ID     a lead stored earlier with POST /leads
  --env-file PATH  read ENDPOINT_SECRET, SERVER_HOST, SERVER_PORT and SERVER_EXTERNAL_URL from this
                   file, e.g. the service's ${SERVICE_ENV_FILE} (needs sudo)
  --server URL     the service's base URL, e.g. http://127.0.0.1:8080 (default: the service on this
                   machine at SERVER_HOST:SERVER_PORT; if it does not answer, SERVER_EXTERNAL_URL)
  --secret S       the endpoint secret (default: ENDPOINT_SECRET)
Without --lead-* the service uses its demo lead. Without --env-file the settings come from the
environment and ./.env.
Example on a VM:
  sudo voice-agent call --env-file ${SERVICE_ENV_FILE} --to +15551234567`;

export interface CallIo {
  out(line: string): void;
  err(line: string): void;
  readFile(path: string): Promise<string>;
}

const E164_RULE = "phone numbers are written in E.164, e.g. +15551234567";

/**
 * Why `value` is not an E.164 number, with the normalised number offered when the intent is plain
 * (never dialled on a guess); null when it is fine.
 * @example e164Problem("--to", "555-123-4567") // "--to 555-123-4567: phone numbers are … did you mean +15551234567? …"
 */
export function e164Problem(flag: string, value: string): string | null {
  if (E164.test(value)) return null;
  const problem = `${flag} ${value}: ${E164_RULE} (a +, the country code, then the number, with no spaces or dashes)`;
  if (!/^[+0-9\s().\-/]+$/.test(value)) return problem;
  const plus = value.trim().startsWith("+");
  const digits = value.replace(/\D/g, "");
  let suggestion: string | undefined;
  let why = "";
  if (plus && E164.test(`+${digits}`)) suggestion = `+${digits}`;
  else if (!plus && /^00[1-9]/.test(digits) && E164.test(`+${digits.slice(2)}`)) {
    suggestion = `+${digits.slice(2)}`;
    why = " (00 is the international prefix)";
  } else if (!plus && /^1[2-9][0-9]{9}$/.test(digits)) {
    suggestion = `+${digits}`;
    why = " (11 digits starting with 1: a North American number)";
  } else if (!plus && /^[2-9][0-9]{9}$/.test(digits)) {
    suggestion = `+1${digits}`;
    why = " (10 digits read as a North American number; for another country write its code)";
  }
  return suggestion ? `${problem}\ndid you mean ${suggestion}?${why}` : problem;
}

/** The first path segments of the service's own routes, which no --server URL ends with. */
const SERVICE_ROUTES = new Set([
  "docs",
  "health",
  "make-call",
  "calls",
  "leads",
  "campaigns",
  "twilio",
  "amd-result",
  "call-status",
  "stream-status",
  "incoming-call",
]);

/**
 * Reads a --server or SERVER_EXTERNAL_URL value as the service's base URL. A path that names one of
 * the service's pages (e.g. /docs, copied from the browser) is dropped, with a note; any other
 * path is kept, as a reverse proxy may serve the service under a prefix.
 */
export function serviceBaseUrl(
  raw: string,
  what: string,
): { url: string; note?: string } | { error: string } {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    return { error: `${what} ${raw} is not a URL: write it like http://127.0.0.1:8080` };
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    return {
      error: `${what} ${raw} is not an http(s) URL: write it like http://127.0.0.1:8080`,
    };
  const segments = parsed.pathname.split("/").filter(Boolean);
  const route = segments.findIndex((segment) => SERVICE_ROUTES.has(segment.toLowerCase()));
  const kept = route < 0 ? segments : segments.slice(0, route);
  const url = `${parsed.origin}${kept.map((segment) => `/${segment}`).join("")}`;
  const dropped = route < 0 ? "" : `/${segments.slice(route).join("/")}`;
  const extra = parsed.search || parsed.hash ? " and the query" : "";
  if (!dropped && !extra) return { url };
  return {
    url,
    note: `${what}: using ${url} (left out ${dropped || "the query"}${dropped ? extra : ""}: the command needs the service's base URL, not one of its pages)`,
  };
}

const PROBE_TIMEOUT_MS = 3_000;
const CALL_TIMEOUT_MS = 30_000;

/** Whether a voice-agent answers GET /health at `url`: null when it does, else why not. */
async function probe(url: string, secret: string | undefined): Promise<string | null> {
  const nonce = newNonce();
  try {
    const response = await fetch(`${url}/health?proof=${nonce}`, {
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    const health = (await response.json().catch(() => null)) as {
      version?: unknown;
      proof?: unknown;
    } | null;
    if (typeof health?.version !== "string")
      return `${url} answers, but not as a voice-agent (GET /health: ${response.status})`;
    // Any local process may listen on the port while the service is down: the secret goes only to
    // one that proves it already holds it.
    if (secret && !proofHolds(secret, nonce, health.proof))
      return `${url} answers as a voice-agent but cannot prove it holds this ENDPOINT_SECRET (another process on the port, or another service's secret): the secret is not sent there`;
    return null;
  } catch (error) {
    return describeNetworkError(error, url, PROBE_TIMEOUT_MS);
  }
}

function leadFromName(name: string): { first_name: string; last_name: string } | string {
  const parts = name.trim().split(/\s+/);
  if (parts.length < 2) return `--lead-name needs a first and a last name, got "${name}"`;
  return { first_name: parts.slice(0, -1).join(" "), last_name: parts.at(-1) ?? "" };
}

/** https anywhere, or http on this machine only: where a bearer secret may be sent. */
export function safeForSecret(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return protocol === "https:" || isLoopbackHost(hostname);
}

/** Reads --env-file; a string is what went wrong. */
function readSettings(path: string): Record<string, string> | string {
  try {
    return parseEnv(readFileSync(path, "utf8"));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return `--env-file ${path}: no such file`;
    if (code === "EACCES" || code === "EPERM")
      return `--env-file ${path}: permission denied (it holds the secrets and is readable by root only: run the command with sudo)`;
    return `--env-file ${path}: ${(error as Error).message}`;
  }
}

interface Target {
  url: string;
  /** Said in the "via" line: where the URL came from. */
  source: string;
}

/** The service a command talks to, found as `call` finds it, and how to sign in to it. */
export interface FoundService {
  target: Target;
  secret: string | undefined;
  /** Where the secret came from, for messages. */
  secretFrom: string;
  envFile: string | undefined;
  /** Set when the local service was tried first and did not answer. */
  localMiss: { why: string } | undefined;
  /** The name of a setting as the user knows it ("X in FILE" for --env-file). */
  settingFrom(name: string): string;
}

/**
 * Finds the service: --server as given; else the service on this machine, then
 * SERVER_EXTERNAL_URL; the secret from --secret, else ENDPOINT_SECRET (with --env-file, that file
 * alone). Says which server it uses; refuses to send a secret over plain http to another machine.
 * @returns the service, or the exit code after saying why not
 */
export async function findService(
  values: { "env-file"?: unknown; server?: unknown; secret?: unknown },
  env: Record<string, string | undefined>,
  io: Pick<CallIo, "out" | "err">,
): Promise<FoundService | number> {
  const envFile = values["env-file"] as string | undefined;
  let file: Record<string, string> = {};
  if (envFile !== undefined) {
    const read = readSettings(envFile);
    if (typeof read === "string") {
      io.err(read);
      return 66;
    }
    file = read;
  }
  // With --env-file, that file alone: a ./.env or the shell must not redirect the service's secret.
  const setting = (name: string) => (envFile === undefined ? env[name] : file[name]);
  const settingFrom = (name: string) =>
    file[name] !== undefined ? `${name} in ${envFile}` : `${name}`;

  const secret = (values.secret as string | undefined) ?? setting("ENDPOINT_SECRET");
  const secretFrom = values.secret !== undefined ? "--secret" : settingFrom("ENDPOINT_SECRET");

  // Which server: --server as given; else the local service, then SERVER_EXTERNAL_URL.
  let target: Target;
  /** Set when the local service was tried first and did not answer. */
  let localMiss: { why: string } | undefined;
  if (typeof values.server === "string") {
    const base = serviceBaseUrl(values.server, "--server");
    if ("error" in base) {
      io.err(base.error);
      return 64;
    }
    if (base.note) io.out(base.note);
    target = { url: base.url, source: "--server" };
  } else {
    const external = setting("SERVER_EXTERNAL_URL") || undefined;
    // Port 0 is chosen at start-up: there is nothing to find on this machine.
    const local = setting("SERVER_PORT") === "0" ? null : localServiceUrl(setting);
    const why = local ? await probe(local, secret) : "SERVER_PORT is 0";
    if (local && why === null) {
      target = { url: local, source: "the local service" };
    } else if (external) {
      const base = serviceBaseUrl(external, settingFrom("SERVER_EXTERNAL_URL"));
      if ("error" in base) {
        io.err(base.error);
        return 78;
      }
      if (local) {
        localMiss = { why: why ?? "" };
        io.out(`no voice-agent answered: ${why}; trying SERVER_EXTERNAL_URL`);
      }
      if (base.note) io.out(base.note);
      target = { url: base.url, source: settingFrom("SERVER_EXTERNAL_URL") };
    } else {
      io.err(
        local
          ? `no voice-agent answered: ${why} — is it running? (systemctl status voice-agent)`
          : "no server to call: SERVER_PORT is 0 and SERVER_EXTERNAL_URL is not set; pass --server URL",
      );
      if (local && envFile === undefined && !setting("SERVER_PORT"))
        io.err(
          `on a VM its settings are in ${SERVICE_ENV_FILE}: add --env-file ${SERVICE_ENV_FILE} (with sudo), or pass --server URL`,
        );
      return 69;
    }
  }
  io.out(`via ${target.url} (${target.source})`);

  if (secret && !safeForSecret(target.url)) {
    io.err(
      `${target.url} is plain http to another machine: the secret would cross the network readable; use its https URL (or --server http://127.0.0.1:PORT on the service's machine)`,
    );
    return 64;
  }
  return { target, secret, secretFrom, envFile, localMiss, settingFrom };
}

/** Runs the command; resolves with the process exit code. */
export async function runCallCommand(
  argv: string[],
  env: Record<string, string | undefined>,
  io: CallIo,
): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        to: { type: "string" },
        "lead-name": { type: "string" },
        "lead-file": { type: "string" },
        "lead-id": { type: "string" },
        "env-file": { type: "string" },
        server: { type: "string" },
        secret: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${CALL_USAGE}`);
    return 64;
  }
  if (values.help) {
    io.out(CALL_USAGE);
    return 0;
  }
  const to = values.to;
  if (typeof to !== "string") {
    io.err(`--to is required\n\n${CALL_USAGE}`);
    return 64;
  }
  const numberProblem = e164Problem("--to", to);
  if (numberProblem) {
    io.err(numberProblem);
    return 64;
  }
  const leadFlags = ["lead-name", "lead-file", "lead-id"].filter((flag) => values[flag]);
  if (leadFlags.length > 1) {
    io.err(
      `give one of --lead-name, --lead-file and --lead-id, not ${leadFlags.map((flag) => `--${flag}`).join(" and ")}`,
    );
    return 64;
  }
  const body: Record<string, unknown> = { to };
  if (typeof values["lead-id"] === "string") body.lead_id = values["lead-id"];
  if (typeof values["lead-name"] === "string") {
    const lead = leadFromName(values["lead-name"]);
    if (typeof lead === "string") {
      io.err(lead);
      return 64;
    }
    body.lead = lead;
  }
  if (typeof values["lead-file"] === "string") {
    try {
      body.lead = JSON.parse(await io.readFile(values["lead-file"]));
    } catch (error) {
      io.err(`could not read the lead from ${values["lead-file"]}: ${(error as Error).message}`);
      return 66;
    }
  }

  const found = await findService(values, env, io);
  if (typeof found === "number") return found;
  const { target, secret, secretFrom, envFile, localMiss, settingFrom } = found;

  let response: Response;
  try {
    response = await fetch(`${target.url}/make-call`, {
      // A redirect would send the lead (personal data) on to wherever it points: reported instead.
      redirect: "manual",
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(secret ? { authorization: `Bearer ${secret}` } : {}),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
  } catch (error) {
    const why = describeNetworkError(error, target.url, CALL_TIMEOUT_MS);
    const name = (error as Error).name;
    if (name === "TimeoutError" || name === "AbortError") {
      io.err(
        `${target.url} did not answer within ${CALL_TIMEOUT_MS / 1000} s: the call may have been placed; check GET ${target.url}/calls before trying again`,
      );
    } else if (target.source === "the local service") {
      io.err(`no voice-agent answered: ${why} — is it running? (systemctl status voice-agent)`);
    } else if (localMiss) {
      io.err(
        `no voice-agent answered: ${localMiss.why} — is it running? (systemctl status voice-agent)`,
      );
      io.err(`nor through ${settingFrom("SERVER_EXTERNAL_URL")}: ${why}`);
    } else {
      io.err(
        `no voice-agent answered: ${why} — is it running there, and is ${target.source} right?`,
      );
    }
    return 69;
  }
  if (response.status >= 300 && response.status < 400) {
    io.err(
      `${target.url}/make-call redirects (${response.status}) to ${response.headers.get("location") ?? "elsewhere"}: nothing was sent on; give the service's own URL`,
    );
    return 69;
  }
  const reply = (await response.json().catch(() => ({}))) as Record<string, string | undefined>;
  if (response.ok) {
    io.out(`call placed: ${reply.call_sid}`);
    io.out(`lead: ${reply.lead_id}`);
    io.out(`follow it with GET ${target.url}/calls/${reply.call_sid}`);
    return 0;
  }
  for (const line of explainRefusal(response, reply, { to, secret, secretFrom, envFile, target }))
    io.err(line);
  return 1;
}

/** The lines that explain a refused /make-call: the server's words first, then what to do. */
function explainRefusal(
  response: Response,
  reply: Record<string, string | undefined>,
  context: {
    to: string;
    secret: string | undefined;
    secretFrom: string;
    envFile: string | undefined;
    target: Target;
  },
): string[] {
  const { status } = response;
  const { code, error } = reply;
  const { field } = reply;
  const said = `${status}: ${error ?? response.statusText}`;
  const baseUrlHint = `${context.target.source === "the local service" ? "--server" : context.target.source} should be the service's base URL, e.g. http://127.0.0.1:8080`;
  const otherServer = `${context.target.url} does not look like a voice-agent (${said}): ${baseUrlHint}`;
  if (status === 400 && field === "body.to")
    return [`400: the server refused --to ${context.to}: ${E164_RULE}`];
  if (status === 400 && field?.startsWith("body.lead"))
    return [said, "the lead was refused: check --lead-name, --lead-file or --lead-id"];
  if (status === 401) {
    if (code === undefined) return [otherServer];
    if (context.secret)
      return [
        said,
        `the secret was refused: check ${context.secretFrom} against the server's ENDPOINT_SECRET${context.envFile === undefined && context.secretFrom !== "--secret" ? ` (on a VM, read it with --env-file ${SERVICE_ENV_FILE})` : ""}`,
      ];
    return [
      said,
      context.envFile
        ? `the server wants a secret and ${context.envFile} sets no ENDPOINT_SECRET: pass --secret`
        : `the server wants a secret: pass --secret, set ENDPOINT_SECRET, or read the service's with --env-file ${SERVICE_ENV_FILE} (with sudo)`,
    ];
  }
  if (status === 404) {
    // Only the lead lookup answers NOT_FOUND with "No lead …"; anything else is a wrong URL.
    if (code === "NOT_FOUND" && error?.startsWith("No lead"))
      return [said, "no such lead: check --lead-id (GET /leads lists the stored leads)"];
    return [`${context.target.url}/make-call was not found (${said}): ${baseUrlHint}`];
  }
  const hints: Record<string, string> = {
    TOO_MANY_FAILED_ATTEMPTS: `too many wrong secrets came from this address; wait, then check ${context.secretFrom}`,
    TOO_MANY_CALLS: "the server is at its concurrent-call limit; try again shortly",
    TWILIO_ERROR: "Twilio refused the call",
    INTEGRATION_NOT_CONFIGURED:
      "the server cannot place calls yet: finish its configuration (voice-agent setup)",
    SHUTTING_DOWN: "the service is shutting down; try again once it has restarted",
    PAYLOAD_TOO_LARGE: "the lead is too large",
  };
  const hint = code ? hints[code] : undefined;
  if (hint) return [said, hint];
  if (code === undefined && (status === 502 || status === 503 || status === 504))
    return [
      said,
      `something in front of the service (a reverse proxy?) answered: is voice-agent running behind ${context.target.url}?`,
    ];
  if (code === undefined) return [otherServer];
  return status === 400 ? [said, "the request was refused as invalid"] : [said];
}
