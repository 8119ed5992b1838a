/**
 * Structured logging: one JSON object a line, filtered by level, with secrets redacted by key.
 * Personal data (transcripts, phone numbers, tool arguments) goes only under the `pii` key.
 */

import { type Clock, systemClock } from "./clock.ts";

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds `fields` (e.g. `{ callSid }`) to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level: LogLevel;
  /** Receives one serialised line, without the newline. Defaults to stdout. */
  write?: (line: string) => void;
  clock?: Clock;
}

/** Keys whose values are never written, however deep they sit. */
const SECRET_KEY = /secret|token|password|passwd|api_?key|authorization|signature|cookie/i;
const REDACTED = "[redacted]";
const MAX_DEPTH = 6;

function sanitize(value: unknown, depth: number): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack };
  }
  if (value === null || typeof value !== "object") {
    return typeof value === "bigint" ? value.toString() : value;
  }
  if (depth >= MAX_DEPTH) return "[truncated]";
  if (Array.isArray(value)) return value.map((item) => sanitize(item, depth + 1));
  if (value instanceof Date) return value.toISOString();
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) ? REDACTED : sanitize(item, depth + 1);
  }
  return out;
}

/** Runs `work`; an exception is logged at error as `message` with `fields`, never thrown. */
export function tryLogged(logger: Logger, message: string, fields: LogFields, work: () => void) {
  try {
    work();
  } catch (error) {
    logger.error(message, { ...fields, error });
  }
}

/**
 * @example createLogger({ level: "info" }).child({ callSid }).info("call started", { pii: { from } })
 */
export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const clock = options.clock ?? systemClock;
  const threshold = LOG_LEVELS.indexOf(options.level);

  const make = (bound: LogFields): Logger => {
    const log = (level: LogLevel) => (message: string, fields?: LogFields) => {
      if (LOG_LEVELS.indexOf(level) < threshold) return;
      const extra = sanitize({ ...bound, ...fields }, 0) as LogFields;
      write(JSON.stringify({ time: clock.now().toISOString(), level, msg: message, ...extra }));
    };
    return {
      debug: log("debug"),
      info: log("info"),
      warn: log("warn"),
      error: log("error"),
      child: (fields) => make({ ...bound, ...fields }),
    };
  };
  return make({});
}
