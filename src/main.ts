#!/usr/bin/env bun
/**
 * Process entry point of `voice-agent`: parses the command line, validates configuration, runs the
 * service and turns SIGTERM/SIGINT into a graceful drain. Exit codes: 0 ok, 1 failure, 64 usage,
 * 75 the port is taken by another process (SERVER_REUSE_PORT unset; a restart succeeds once it is
 * free), 78 config.
 */
import { parseArgs } from "node:util";
import { systemClock } from "./clock.ts";
import { ConfigError, describeEnvironment, loadConfig } from "./config.ts";
import { IpcCoordination, type SupervisorReply } from "./fleet/ipc-coordination.ts";
import { runSupervisor, WORKER_ENV, WORKER_INDEX_ENV } from "./fleet/supervisor.ts";
import { createLogger } from "./log.ts";
import { keepServingOnUncaughtErrors } from "./process-guard.ts";
import { PortInUseError, startService } from "./service.ts";
import { DatabaseInUseError } from "./store/instance-lock.ts";
import { VERSION } from "./version.ts";

const EXIT_USAGE = 64;
const EXIT_PORT_IN_USE = 75;
const EXIT_CONFIG = 78;
/** Beyond the drain and the goodbye, the longest closing sockets and the database may take. */
const SHUTDOWN_SLACK_MS = 2_000;

/** Help text: names up to NAME_COLUMN - 2 characters share their line; longer ones stand alone. */
const NAME_COLUMN = 34;
const HELP_WIDTH = 100;

/** `text` in lines of at most `width` characters, broken at spaces (a longer word stands alone). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return line ? [...lines, line] : lines;
}

function usage(): string {
  const indent = " ".repeat(2 + NAME_COLUMN);
  const variables = describeEnvironment()
    .map(({ name, default: value, description }) => {
      const fallback = value === undefined ? "" : ` (default ${String(value)})`;
      const [first = "", ...rest] = wrap(`${description}${fallback}`, HELP_WIDTH - indent.length);
      const head =
        name.length + 2 <= NAME_COLUMN
          ? `  ${name.padEnd(NAME_COLUMN)}${first}`
          : `  ${name}\n${indent}${first}`;
      return [head, ...rest.map((line) => `${indent}${line}`)].join("\n");
    })
    .join("\n");
  return `voice-agent ${VERSION}: bridges Twilio phone calls to a Deepgram Voice Agent.

Usage:
  voice-agent [serve]        run the HTTP/WebSocket service (default); --workers N (or auto): N
                             supervised worker processes sharing the port
  voice-agent health         exit 0 when the local service answers GET /health with 200
  voice-agent call --to N    place an outbound call through a running service (call --help)
  voice-agent leads import F store the leads of a CSV file through a running service (leads --help)
  voice-agent campaign CMD   create, list, show, pause, resume or cancel a calling campaign on a
                             running service (campaign --help)
  voice-agent setup          configure Twilio, Deepgram and the .env; --install-service on a VM
                             (setup --help)
  voice-agent migrate        bring the configured database to this binary's schema, then exit
  voice-agent db copy --to U copy the SQLite database into an empty PostgreSQL one (db copy --help)
  voice-agent --version      print the version
  voice-agent --help         print this help

Configuration comes from the environment and from a .env file in the working directory:
${variables}
`;
}

async function checkHealth(): Promise<number> {
  const config = loadConfig(process.env);
  const host = ["0.0.0.0", "::"].includes(config.server.host) ? "127.0.0.1" : config.server.host;
  try {
    const response = await fetch(`http://${host}:${config.server.port}/health`, {
      signal: AbortSignal.timeout(5_000),
    });
    console.log(`${response.status} ${await response.text()}`);
    return response.ok ? 0 : 1;
  } catch (error) {
    console.error(`health check failed: ${(error as Error).message}`);
    return 1;
  }
}

/** `workers`: from `--workers`, which wins over WORKERS. */
async function serve(workers: string | undefined): Promise<number | undefined> {
  const config = loadConfig(
    workers === undefined ? process.env : { ...process.env, WORKERS: workers },
  );
  const workerIndex = process.env[WORKER_INDEX_ENV];
  const root = createLogger({ level: config.logLevel });
  // A worker's lines say which worker wrote them.
  const logger = workerIndex === undefined ? root : root.child({ worker: Number(workerIndex) });
  keepServingOnUncaughtErrors(logger);
  const workerId = process.env[WORKER_ENV];
  if (workerId === undefined && config.server.workers > 1) {
    return runSupervisor({
      config,
      logger,
      clock: systemClock,
      workers: config.server.workers,
      command: ownCommand(),
      env: process.env,
    });
  }
  const worker = workerId === undefined ? undefined : ipcWorker(workerId);
  const stops = worker?.stops ?? processSignals();
  // Listened for before the service starts: Bun takes a moment to install a signal handler, and a
  // SIGTERM in that moment (right after "listening") would kill the process with its calls.
  let starting: NodeJS.Signals | undefined;
  const beforeStart = (signal: NodeJS.Signals) => {
    starting ??= signal;
  };
  stops.add(beforeStart);
  const service = await startService(config, logger, worker ? { worker } : {});
  /** Exits at once, with the calls this process holds ended on their records first. */
  const exitNow = async (why: string) => {
    logger.warn(why, { activeCalls: service.calls.size });
    try {
      await service.store.calls.endOpen("interrupted", { mine: true });
    } catch (error) {
      logger.error("could not record the end of live calls", { error });
    }
    process.exit(1);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (service.calls.draining) {
      void exitNow(`second ${signal}, exiting without waiting for calls`);
      return;
    }
    // Whatever clients and calls do, the process is gone by the drain, the goodbye and two seconds.
    const { shutdownDrainMs, shutdownGoodbyeMs } = config.server;
    setTimeout(
      () => void exitNow("shutdown took too long, exiting"),
      shutdownDrainMs + shutdownGoodbyeMs + SHUTDOWN_SLACK_MS,
    ).unref();
    service.shutdown(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error("shutdown failed", { error });
        process.exit(1);
      },
    );
  };
  stops.add(onSignal);
  stops.delete(beforeStart);
  if (starting) onSignal(starting);
  return undefined;
}

type StopHandler = (signal: NodeJS.Signals) => void;

/** SIGTERM and SIGINT, for a process serving on its own. */
function processSignals(): Set<StopHandler> {
  const handlers = new Set<StopHandler>();
  const relay = (signal: NodeJS.Signals) => {
    for (const handler of handlers) handler(signal);
  };
  process.on("SIGTERM", relay);
  process.on("SIGINT", relay);
  return handlers;
}

/** How to run this program again: the compiled binary itself, or bun with the entry file. */
function ownCommand(): string[] {
  const compiled = Bun.main.startsWith("/$bunfs/");
  return compiled ? [process.execPath, "serve"] : [process.execPath, Bun.main, "serve"];
}

/**
 * A worker of a supervisor: its coordination goes over the IPC channel the supervisor opened, and
 * so do its stop requests. Signals sent to it directly are ignored: systemd (KillMode=control-group)
 * and a terminal's Ctrl-C signal every process of the group, and the supervisor relays each signal
 * once, so a second one from outside would otherwise cut the calls short.
 */
function ipcWorker(instance: string) {
  const supervisor = new IpcCoordination(instance, (request) => process.send?.(request));
  const stops = new Set<StopHandler>();
  const stop = (signal: NodeJS.Signals) => {
    for (const handler of stops) handler(signal);
  };
  process.on("message", (message) => {
    const reply = message as SupervisorReply;
    if (reply.type === "stop") stop(reply.signal);
    else supervisor.receive(reply);
  });
  process.on("SIGTERM", () => {});
  process.on("SIGINT", () => {});
  // The supervisor is gone (killed): nothing would stop this worker any more, so it drains now.
  let orphaned = false;
  const leave = () => {
    if (orphaned) return;
    orphaned = true;
    stop("SIGTERM");
  };
  process.on("disconnect", leave);
  setInterval(() => {
    if (process.connected === false || process.ppid === 1) leave();
  }, 1_000).unref();
  return { instance, supervisor, stops };
}

async function main(argv: string[]): Promise<number | undefined> {
  // The other commands are imported when asked for: serving starts without loading them.
  if (argv[0] === "setup") {
    const { runSetup } = await import("./cli/setup.ts");
    return runSetup(argv.slice(1), process.env, {
      out: (line) => console.log(line),
      err: (line) => console.error(line),
      interactive: process.stdin.isTTY === true,
    });
  }
  if (argv[0] === "call") {
    const { runCallCommand } = await import("./cli/call.ts");
    return runCallCommand(argv.slice(1), process.env, {
      out: (line) => console.log(line),
      err: (line) => console.error(line),
      readFile: (path) => Bun.file(path).text(),
    });
  }
  if (argv[0] === "leads") {
    const { runLeadsCommand } = await import("./cli/leads.ts");
    return runLeadsCommand(argv.slice(1), process.env, {
      out: (line) => console.log(line),
      err: (line) => console.error(line),
      readFile: (path) => Bun.file(path).text(),
    });
  }
  if (argv[0] === "campaign") {
    const { runCampaignCommand } = await import("./cli/campaign.ts");
    return runCampaignCommand(argv.slice(1), process.env, {
      out: (line) => console.log(line),
      err: (line) => console.error(line),
      readFile: (path) => Bun.file(path).text(),
    });
  }
  if (argv[0] === "migrate" || argv[0] === "db") {
    const { runDbCommand, runMigrate } = await import("./cli/db.ts");
    const io = {
      out: (line: string) => console.log(line),
      err: (line: string) => console.error(line),
    };
    const config = loadConfig(process.env);
    return argv[0] === "migrate"
      ? runMigrate(argv.slice(1), config, io)
      : runDbCommand(argv.slice(1), config, io);
  }
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      version: { type: "boolean", short: "v" },
      help: { type: "boolean", short: "h" },
      workers: { type: "string" },
    },
    allowPositionals: true,
  });
  if (values.version) {
    console.log(VERSION);
    return 0;
  }
  if (values.help) {
    console.log(usage());
    return 0;
  }
  const [command = "serve", ...extra] = positionals;
  if (extra.length > 0 || !["serve", "health"].includes(command)) {
    console.error(`unknown command: ${positionals.join(" ")}\n\n${usage()}`);
    return EXIT_USAGE;
  }
  if (command === "health") return checkHealth();
  return serve(values.workers);
}

try {
  const code = await main(Bun.argv.slice(2));
  if (code !== undefined) process.exit(code);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(EXIT_CONFIG);
  }
  if (error instanceof PortInUseError) {
    console.error(error.message);
    process.exit(EXIT_PORT_IN_USE);
  }
  if (error instanceof DatabaseInUseError) {
    // Exit 1, not 78: once the other instance has stopped, a restart succeeds.
    console.error(error.message);
    process.exit(1);
  }
  if (
    error instanceof TypeError &&
    "code" in error &&
    String(error.code).startsWith("ERR_PARSE_ARGS")
  ) {
    console.error(`${error.message}\n\n${usage()}`);
    process.exit(EXIT_USAGE);
  }
  console.error(error);
  process.exit(1);
}
