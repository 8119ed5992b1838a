/**
 * The `call` command: asks a running voice-agent to place an outbound call (`POST /make-call`) and
 * explains what went wrong in words. Used by `scripts/call.ts` and `voice-agent call`.
 */
import { parseArgs } from "node:util";

export const CALL_USAGE = `Usage: call --to +15551234567 [--lead-name "John Smith"] [--lead-file lead.json] [--lead-id ID]
            [--server URL] [--secret S]

Places an outbound follow-up call through a running voice-agent (POST /make-call).
  --to          number to call, E.164
  --lead-name   "First Last" of the lead (the rest of the demo lead's details are not used)
  --lead-file   JSON file with the lead (first_name, last_name, email, property_address, …)
  --lead-id     a lead stored earlier with POST /leads
  --server      the service's URL (default: SERVER_EXTERNAL_URL, else http://127.0.0.1:SERVER_PORT)
  --secret      the endpoint secret (default: ENDPOINT_SECRET)
Without --lead-* the service uses its demo lead. SERVER_EXTERNAL_URL, SERVER_PORT and ENDPOINT_SECRET
are read from the environment and .env.`;

export interface CallIo {
  out(line: string): void;
  err(line: string): void;
  readFile(path: string): Promise<string>;
}

function leadFromName(name: string): { first_name: string; last_name: string } | string {
  const parts = name.trim().split(/\s+/);
  if (parts.length < 2) return `--lead-name needs a first and a last name, got "${name}"`;
  return { first_name: parts.slice(0, -1).join(" "), last_name: parts.at(-1) ?? "" };
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
  const server = (
    (values.server as string | undefined) ??
    env.SERVER_EXTERNAL_URL ??
    `http://127.0.0.1:${env.SERVER_PORT ?? "8080"}`
  ).replace(/\/+$/, "");
  const secret = (values.secret as string | undefined) ?? env.ENDPOINT_SECRET;

  let response: Response;
  try {
    response = await fetch(`${server}/make-call`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(secret ? { authorization: `Bearer ${secret}` } : {}),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    io.err(
      `could not reach ${server}: ${(error as Error).message}. Is the service running, and is --server (or SERVER_EXTERNAL_URL) right?`,
    );
    return 69;
  }
  const reply = (await response.json().catch(() => ({}))) as Record<string, string>;
  if (response.ok) {
    io.out(`call placed: ${reply.call_sid}`);
    io.out(`lead: ${reply.lead_id}`);
    io.out(`follow it with GET ${server}/calls/${reply.call_sid}`);
    return 0;
  }
  const hints: Record<number, string> = {
    400: "the request was refused as invalid",
    401: secret
      ? "the secret was refused: check --secret or ENDPOINT_SECRET against the server's"
      : "the server wants a secret: pass --secret or set ENDPOINT_SECRET",
    404: "no such lead: check --lead-id",
    429: "the server is at its concurrent-call limit; try again shortly",
    502: "Twilio refused the call",
    503: "the server cannot place calls yet",
  };
  io.err(`${response.status}: ${reply.error ?? response.statusText}`);
  const hint =
    reply.code === "TOO_MANY_FAILED_ATTEMPTS"
      ? "too many wrong secrets came from this address; wait, then check --secret or ENDPOINT_SECRET"
      : hints[response.status];
  if (hint) io.err(hint);
  return 1;
}
