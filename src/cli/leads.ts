/**
 * `voice-agent leads import FILE.csv`: sends a CSV of leads to a running voice-agent
 * (`POST /leads/import`), found as `call` finds it, in pieces under the request size limit, and
 * reports what became of each row: stored, already a lead (by phone), or rejected with the field
 * and why. Row numbers are the file's (1 = the first row under the header).
 */
import { parseArgs } from "node:util";
import { type CallIo, findService } from "./call.ts";
import { SERVICE_ENV_FILE } from "./env-file.ts";

export const LEADS_USAGE = `Usage: leads import FILE.csv [--env-file PATH] [--server URL] [--secret S]

Stores the leads of a CSV file (a header row naming the lead fields: first_name and last_name at
least; phone, email, property_address, timezone, …) through a running voice-agent. A row whose
phone is already a lead's is not stored twice; a row that breaks a rule is reported with its field.
  --env-file PATH  the service's settings, e.g. ${SERVICE_ENV_FILE} (needs sudo)
  --server URL     the service's base URL (default: the one on this machine, else SERVER_EXTERNAL_URL)
  --secret S       the endpoint secret (default: ENDPOINT_SECRET)
Exit status: 0 all rows stored or already there, 1 some rejected, other: nothing could be sent.`;

/** A request stays under the service's 64 KB body limit. */
const PIECE_BYTES = 60 * 1024;

interface ImportAnswer {
  stored: { row: number; id: string }[];
  duplicates: { row: number; phone: string }[];
  rejected: { row: number; field: string; reason: string }[];
}

/** The file's lines as pieces under PIECE_BYTES, each with the header, and its first row's number. */
async function pieces(csv: string): Promise<{ text: string; firstRow: number }[]> {
  const { default: Papa } = await import("papaparse");
  const parsed = Papa.parse<string[]>(csv, { skipEmptyLines: true });
  const [header, ...rows] = parsed.data;
  if (!header) return [];
  const head = Papa.unparse([header]);
  const out: { text: string; firstRow: number }[] = [];
  let lines: string[] = [];
  let size = head.length;
  let firstRow = 1;
  rows.forEach((row, index) => {
    const line = Papa.unparse([row]);
    if (lines.length > 0 && size + line.length + 2 > PIECE_BYTES) {
      out.push({ text: [head, ...lines].join("\r\n"), firstRow });
      lines = [];
      size = head.length;
      firstRow = index + 1;
    }
    lines.push(line);
    size += line.length + 2;
  });
  if (lines.length > 0) out.push({ text: [head, ...lines].join("\r\n"), firstRow });
  return out;
}

export async function runLeadsCommand(
  argv: string[],
  env: Record<string, string | undefined>,
  io: CallIo,
): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        "env-file": { type: "string" },
        server: { type: "string" },
        secret: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${LEADS_USAGE}`);
    return 64;
  }
  if (values.help) {
    io.out(LEADS_USAGE);
    return 0;
  }
  const [action, path, ...extra] = positionals;
  if (action !== "import" || !path || extra.length > 0) {
    io.err(LEADS_USAGE);
    return 64;
  }
  let csv: string;
  try {
    csv = await io.readFile(path);
  } catch (error) {
    io.err(`could not read ${path}: ${(error as Error).message}`);
    return 66;
  }
  const parts = await pieces(csv);
  if (parts.length === 0) {
    io.err(`${path} has no rows under its header`);
    return 65;
  }
  const found = await findService(values, env, io);
  if (typeof found === "number") return found;
  const { target, secret } = found;
  const total: ImportAnswer = { stored: [], duplicates: [], rejected: [] };
  for (const { text, firstRow } of parts) {
    let response: Response;
    try {
      response = await fetch(`${target.url}/leads/import`, {
        method: "POST",
        redirect: "manual",
        headers: {
          "content-type": "text/csv",
          ...(secret ? { authorization: `Bearer ${secret}` } : {}),
        },
        body: text,
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      io.err(
        `${target.url} did not take the rows from ${firstRow} on: ${(error as Error).message}`,
      );
      return 69;
    }
    const answer = (await response.json().catch(() => ({}))) as Partial<ImportAnswer> & {
      error?: string;
    };
    if (!response.ok) {
      io.err(
        `${target.url}/leads/import refused the rows from ${firstRow} on (${response.status}): ${answer.error ?? "no reason given"}`,
      );
      if (total.stored.length > 0) io.err(`${total.stored.length} rows before them were stored`);
      return response.status === 401 ? 77 : 69;
    }
    const shift = <T extends { row: number }>(entries: T[] | undefined) =>
      (entries ?? []).map((entry) => ({ ...entry, row: entry.row + firstRow - 1 }));
    total.stored.push(...shift(answer.stored));
    total.duplicates.push(...shift(answer.duplicates));
    total.rejected.push(...shift(answer.rejected));
  }
  io.out(
    `stored ${total.stored.length}, already leads ${total.duplicates.length}, rejected ${total.rejected.length}`,
  );
  for (const { row, phone } of total.duplicates)
    io.out(`row ${row}: ${phone} is already a lead's number; not stored again`);
  for (const { row, field, reason } of total.rejected) io.err(`row ${row}: ${field}: ${reason}`);
  return total.rejected.length > 0 ? 1 : 0;
}
