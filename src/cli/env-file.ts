/**
 * Reading and updating a `.env` file in place: changed keys keep their line, new keys are appended,
 * comments and unrelated lines stay as they were, and the file is left readable by its owner only.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

const ASSIGNMENT = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/;

function unquote(raw: string): string {
  const value = raw.trim();
  const quoted = value.match(/^(["'])(.*)\1$/);
  return quoted ? (quoted[2] ?? "") : value;
}

function quote(value: string): string {
  return /^[A-Za-z0-9_./:@+,=-]*$/.test(value) ? value : JSON.stringify(value);
}

/** Where `setup --install-service` puts the service's environment file, as the VM sees it. */
export const SERVICE_ENV_FILE = "/etc/voice-agent/voice-agent.env";

/** The variables a .env file's content sets. */
export function parseEnv(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = ASSIGNMENT.exec(line);
    if (match?.[1]) values[match[1]] = unquote(match[2] ?? "");
  }
  return values;
}

/** The variables a .env file sets (empty when it does not exist). */
export function readEnvFile(path: string): Record<string, string> {
  try {
    return parseEnv(readFileSync(path, "utf8"));
  } catch (error) {
    // A file that is not there is empty; one that cannot be read (permissions) is an error.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
}

/**
 * `text` (a .env file's content, possibly empty) with `updates` set: changed keys keep their line,
 * new keys are appended, everything else stays as it was.
 */
export function withEnvUpdates(text: string, updates: Record<string, string>): string {
  const pending = new Map(Object.entries(updates));
  const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  const written = lines.map((line) => {
    const key = ASSIGNMENT.exec(line)?.[1];
    if (!key || !pending.has(key)) return line;
    const value = pending.get(key) ?? "";
    pending.delete(key);
    return `${key}=${quote(value)}`;
  });
  for (const [key, value] of pending) written.push(`${key}=${quote(value)}`);
  return `${written.join("\n")}\n`;
}

/**
 * Sets `updates` in the file at `path` (created with its folder if missing), mode 0600.
 * @returns true when the file's content changed
 */
export function updateEnvFile(path: string, updates: Record<string, string>): boolean {
  const before = existsSync(path) ? readFileSync(path, "utf8") : "";
  const after = withEnvUpdates(before, updates);
  mkdirSync(dirname(path), { recursive: true });
  if (after !== before) writeFileSync(path, after, { mode: 0o600 });
  chmodSync(path, 0o600);
  return after !== before;
}
