#!/usr/bin/env bun
/** The setup wizard from the sources: `bun run scripts/setup.ts [--help]`. See src/cli/setup.ts. */
import { runSetup } from "../src/cli/setup.ts";

process.exit(
  await runSetup(Bun.argv.slice(2), process.env, {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
    interactive: process.stdin.isTTY === true,
  }),
);
