/**
 * `setup --install-service` / `--uninstall-service`: puts the binary, its env file (0600) and the
 * hardened systemd unit in place under --root, then enables and starts it and waits for /health.
 * Where systemd is absent (or a --root is given) it prints the systemctl commands instead. Running
 * it twice changes nothing the second time.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import unitText from "../../scripts/voice-agent.service" with { type: "text" };
import { readEnvFile } from "./env-file.ts";
import type { SetupFlags, SetupIo } from "./setup.ts";

const UNIT = "voice-agent";

function paths(root: string) {
  return {
    binary: join(root, "usr/local/bin/voice-agent"),
    envFile: join(root, "etc/voice-agent/voice-agent.env"),
    unit: join(root, `etc/systemd/system/${UNIT}.service`),
  };
}

/** True when this process is the compiled voice-agent binary (not `bun run`). */
function runningCompiled(): boolean {
  return import.meta.path.startsWith("/$bunfs/") || import.meta.path.startsWith("B:/~BUN/");
}

function sameContent(path: string, content: Uint8Array): boolean {
  return existsSync(path) && Buffer.from(readFileSync(path)).equals(Buffer.from(content));
}

/** Writes `content` unless the file already holds it. @returns true when it wrote */
function place(path: string, content: Uint8Array, mode: number): boolean {
  if (sameContent(path, content)) {
    chmodSync(path, mode);
    return false;
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content, { mode });
  chmodSync(path, mode);
  return true;
}

function systemctl(root: string): string | null {
  return root === "/" ? Bun.which("systemctl") : null;
}

function run(command: string[], io: SetupIo): void {
  io.out(`$ ${command.join(" ")}`);
  const result = Bun.spawnSync(command, { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0)
    throw new Error(`${command.join(" ")} failed: ${result.stderr.toString().trim()}`);
}

async function waitForHealth(port: string, io: SetupIo): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`http://127.0.0.1:${port}/health`, {
      signal: AbortSignal.timeout(2_000),
    })
      .then((response) => response.ok)
      .catch(() => false);
    if (ok) {
      io.out(`✓ http://127.0.0.1:${port}/health answers 200`);
      return true;
    }
    await Bun.sleep(500);
  }
  io.err(`✗ the service did not answer /health within 30 s: see journalctl -u ${UNIT}`);
  return false;
}

export async function installService(
  flags: SetupFlags,
  envFile: string,
  io: SetupIo,
): Promise<number> {
  const root = flags.root ?? "/";
  const target = paths(root);
  const source = flags.binary ?? (runningCompiled() ? process.execPath : undefined);
  if (!source) {
    io.err(
      "--binary PATH is needed when setup does not run as the compiled voice-agent binary (bun run build makes dist/voice-agent)",
    );
    return 64;
  }
  if (!existsSync(envFile)) {
    io.err(`${envFile} does not exist: run setup first (or pass --env-file)`);
    return 66;
  }
  const changed = {
    binary: place(target.binary, readFileSync(source), 0o755),
    envFile: place(target.envFile, readFileSync(envFile), 0o600),
    unit: place(target.unit, Buffer.from(unitText), 0o644),
  };
  for (const [what, path] of Object.entries(target)) {
    io.out(`${changed[what as keyof typeof changed] ? "installed" : "unchanged"} ${path}`);
  }
  const anyChange = changed.binary || changed.envFile || changed.unit;
  const commands = [
    ...(changed.unit ? [["systemctl", "daemon-reload"]] : []),
    ["systemctl", "enable", "--now", UNIT],
    ...(anyChange ? [["systemctl", "restart", UNIT]] : []),
  ];
  const tool = systemctl(root);
  if (!tool) {
    io.out("systemd is not available here (or --root was given); run these as root on the VM:");
    for (const command of commands) io.out(`  ${command.join(" ")}`);
  } else {
    for (const command of commands) run([tool, ...command.slice(1)], io);
    if (!(await waitForHealth(readEnvFile(target.envFile).SERVER_PORT ?? "8080", io))) return 1;
  }
  io.out(`Logs: journalctl -u ${UNIT} -f`);
  io.out("Put TLS in front (Caddy: reverse_proxy 127.0.0.1:8080); see docs/DEPLOY.md.");
  return 0;
}

export async function uninstallService(flags: SetupFlags, io: SetupIo): Promise<number> {
  const root = flags.root ?? "/";
  const target = paths(root);
  const tool = systemctl(root);
  if (tool && existsSync(target.unit)) run([tool, "disable", "--now", UNIT], io);
  else if (!tool)
    io.out(
      `systemd is not available here (or --root was given); run as root on the VM: systemctl disable --now ${UNIT}`,
    );
  for (const path of [target.unit, target.envFile, target.binary]) {
    const present = existsSync(path);
    rmSync(path, { force: true });
    io.out(`${present ? "removed" : "absent"} ${path}`);
  }
  if (tool) run([tool, "daemon-reload"], io);
  return 0;
}
