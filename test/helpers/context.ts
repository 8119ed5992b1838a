/** Small builders shared by tests: a valid configuration and a logger that keeps its lines. */
import { type Config, loadConfig } from "../../src/config.ts";
import { createLogger, type Logger } from "../../src/log.ts";

/** A configuration for tests: in-memory database, random port, plus any overrides. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_PATH: ":memory:",
    SERVER_PORT: "0",
    SERVER_HOST: "127.0.0.1",
    ...overrides,
  });
}

export interface CapturedLogger {
  logger: Logger;
  /** Every line written, parsed. */
  lines: Record<string, unknown>[];
}

export function captureLogger(): CapturedLogger {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}
