#!/usr/bin/env bun
/** Places an outbound call through a running voice-agent: `bun run scripts/call.ts --to +15551234567`. See src/cli/call.ts. */
import { runCallCommand } from "../src/cli/call.ts";

process.exit(
  await runCallCommand(Bun.argv.slice(2), process.env, {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
    readFile: (path) => Bun.file(path).text(),
  }),
);
