/** The files around the code stay true to it: documented variables, the systemd unit, the Dockerfile. */
import { describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describeEnvironment, loadConfig } from "../src/config.ts";

const repo = resolve(import.meta.dir, "..");
const read = (path: string) => readFileSync(join(repo, path), "utf8");
const variables = describeEnvironment();

describe("documentation of the environment", () => {
  test(".env.example sets every variable, with the default where there is one", () => {
    const example = read(".env.example");
    for (const { name, default: value } of variables) {
      expect(example).toContain(`\n${name}=${value === undefined ? "" : String(value)}\n`);
    }
  });

  test(".env.example as written is a valid configuration", () => {
    const env = Object.fromEntries(
      read(".env.example")
        .split("\n")
        .filter((line) => /^[A-Z_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );
    expect(() => loadConfig(env)).not.toThrow();
  });

  test("the README table lists every variable and its default", () => {
    const rows = new Map(
      read("README.md")
        .split("\n")
        .filter((line) => line.startsWith("| `"))
        .map((line) => line.split("|").map((cell) => cell.trim()))
        .map(([, name, shown]) => [name, shown]),
    );
    for (const { name, default: value } of variables) {
      expect(rows.get(`\`${name}\``)).toBe(value === undefined ? "—" : `\`${String(value)}\``);
    }
  });
});

describe("systemd unit", () => {
  const unit = read("scripts/voice-agent.service");

  test("has the settings the deployment relies on", () => {
    for (const line of [
      "ExecStart=/usr/local/bin/voice-agent",
      "EnvironmentFile=/etc/voice-agent/voice-agent.env",
      "StateDirectory=voice-agent",
      "DynamicUser=yes",
      "Restart=on-failure",
      "RestartPreventExitStatus=78 64",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
    ]) {
      expect(unit).toContain(`\n${line}\n`);
    }
  });

  test("gives the drain, the goodbye and the exit bound's 2 s before systemd kills the process", () => {
    const stopSeconds = Number(unit.match(/\nTimeoutStopSec=(\d+)\n/)?.[1]);
    const { shutdownDrainMs, shutdownGoodbyeMs } = loadConfig({}).server;
    expect(stopSeconds * 1000).toBeGreaterThan(shutdownDrainMs + shutdownGoodbyeMs + 2_000);
  });
});

describe("Dockerfile", () => {
  const dockerfile = read("Dockerfile");

  test("builds with the Bun version CI pins", () => {
    const pinned = JSON.parse(read("package.json")).packageManager.split("@")[1];
    expect(dockerfile).toContain(`FROM oven/bun:${pinned} AS build`);
  });

  test("its build stage copies everything the binary is built from", () => {
    const context = mkdtempSync(join(tmpdir(), "voice-agent-docker-"));
    try {
      const build = dockerfile.slice(
        0,
        dockerfile.indexOf("\nFROM ", dockerfile.indexOf("FROM ") + 1),
      );
      for (const [, sources] of build.matchAll(/^COPY (.+) \S+$/gm)) {
        for (const source of (sources ?? "").split(" "))
          cpSync(join(repo, source), join(context, source), { recursive: true });
      }
      symlinkSync(join(repo, "node_modules"), join(context, "node_modules"));
      const result = Bun.spawnSync(
        [
          process.execPath,
          "build",
          "--compile",
          "src/main.ts",
          "--outfile",
          join(context, "voice-agent"),
        ],
        { cwd: context, stderr: "pipe" },
      );
      expect(result.stderr.toString()).not.toContain("error");
      expect(result.exitCode).toBe(0);
    } finally {
      rmSync(context, { recursive: true, force: true });
    }
  }, 60_000);

  test("runs non-root with the database on a volume and a health check", () => {
    expect(dockerfile).toMatch(/\nUSER voice-agent\n/);
    expect(dockerfile).toContain("DATABASE_PATH=/var/lib/voice-agent/voice-agent.db");
    expect(dockerfile).toContain('VOLUME ["/var/lib/voice-agent"]');
    expect(dockerfile).toContain(
      'HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["voice-agent", "health"]',
    );
  });
});
