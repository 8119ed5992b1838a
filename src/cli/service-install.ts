/**
 * `setup --install-service` / `--uninstall-service`: puts the binary, its env file (0600), the
 * hardened systemd unit and the operator's notes its `Documentation=` names in place under --root,
 * then enables and starts it and waits for /health. Where systemd is not running (or a --root is
 * given) it prints the systemctl commands instead. The installed env file binds the service to
 * loopback (SERVER_HOST=127.0.0.1) for the reverse proxy it suggests, unless the env file chose an
 * address itself. Running it twice changes nothing the second time.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import unitText from "../../scripts/voice-agent.service" with { type: "text" };
import { isLoopbackHost } from "../loopback.ts";
import { parseEnv, SERVICE_ENV_FILE, withEnvUpdates } from "./env-file.ts";
import { localServiceUrl } from "./local-service.ts";
import { nextSteps, type SetupFlags, type SetupIo, summary } from "./setup.ts";

const UNIT = "voice-agent";

/** Where the unit's `Documentation=` points; written by --install-service. */
const SERVICE_DOC_FILE = "/usr/local/share/doc/voice-agent/README.md";

function paths(root: string) {
  return {
    binary: join(root, "usr/local/bin/voice-agent"),
    envFile: join(root, SERVICE_ENV_FILE),
    unit: join(root, `etc/systemd/system/${UNIT}.service`),
    doc: join(root, SERVICE_DOC_FILE),
  };
}

/** True when this process is the compiled voice-agent binary (not `bun run`). */
export function runningCompiled(): boolean {
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

/** systemctl, when systemd runs this machine (PID 1) and the install targets it (no --root). */
function systemctl(root: string): string | null {
  return root === "/" && existsSync("/run/systemd/system") ? Bun.which("systemctl") : null;
}

function run(command: string[], io: SetupIo): void {
  io.out(`$ ${command.join(" ")}`);
  const result = Bun.spawnSync(command, { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0)
    throw new Error(`${command.join(" ")} failed: ${result.stderr.toString().trim()}`);
}

async function waitForHealth(url: string, io: SetupIo): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/health`, {
      signal: AbortSignal.timeout(2_000),
    })
      .then((response) => response.ok)
      .catch(() => false);
    if (ok) {
      io.out(`✓ ${url}/health answers 200`);
      return true;
    }
    await Bun.sleep(500);
  }
  io.err(`✗ the service did not answer /health within 30 s: see journalctl -u ${UNIT}`);
  return false;
}

/**
 * The env file as installed: the wizard's, bound to loopback for the reverse proxy (with the proxy
 * trusted for X-Forwarded-For) unless it sets SERVER_HOST itself. @returns the text and what to say
 */
export function serviceEnv(shellStyle: string): { text: string; notes: string[] } {
  // systemd's EnvironmentFile= has no `export`: such a line would be dropped, its setting lost.
  const source = shellStyle.replace(/^[ \t]*export[ \t]+/gm, "");
  const values = parseEnv(source);
  const port = values.SERVER_PORT || "8080";
  const host = values.SERVER_HOST;
  if (host === undefined) {
    const updates: Record<string, string> = { SERVER_HOST: "127.0.0.1" };
    if (values.TRUSTED_PROXIES === undefined) updates.TRUSTED_PROXIES = "127.0.0.1";
    return {
      text: withEnvUpdates(source, updates),
      notes: [
        `${Object.entries(updates)
          .map(([name, value]) => `${name}=${value}`)
          .join(
            " and ",
          )} set in ${SERVICE_ENV_FILE}: the service listens on loopback only, for the reverse proxy below (port ${port} is not reachable from other machines).`,
        `  To serve other machines directly instead, set SERVER_HOST=0.0.0.0 there and restart (Twilio still needs https in front).`,
      ],
    };
  }
  return {
    text: source,
    notes: isLoopbackHost(host)
      ? [
          `SERVER_HOST=${host}: the service listens on loopback only, for the reverse proxy below.`,
          ...((values.TRUSTED_PROXIES ?? "")
            .split(",")
            .some((proxy) => isLoopbackHost(proxy.trim()))
            ? []
            : [
                `  Add 127.0.0.1 to TRUSTED_PROXIES in ${SERVICE_ENV_FILE}: otherwise every client behind the proxy counts as one (127.0.0.1), and one client's failed secrets lock out the others.`,
              ]),
        ]
      : [
          `SERVER_HOST=${host} is kept as your env file sets it: port ${port} is reachable from other machines.`,
          `  Behind the reverse proxy below, set SERVER_HOST=127.0.0.1 in ${SERVICE_ENV_FILE} (or keep port ${port} closed in the firewall).`,
        ],
  };
}

/**
 * An env file already installed, with only the settings it lacks added from `fresh`: values set
 * there win (a secret rotated on the VM is not brought back). @returns the text and what to say
 */
function keepInstalled(
  installed: string,
  fresh: string,
  path: string,
): { text: string; notes: string[] } {
  const kept = parseEnv(installed);
  const offered = parseEnv(fresh);
  const added = Object.fromEntries(Object.entries(offered).filter(([name]) => !(name in kept)));
  const differing = Object.keys(offered).filter(
    (name) => name in kept && kept[name] !== offered[name],
  );
  const notes = [];
  if (differing.length > 0)
    notes.push(
      `kept the values ${path} already has for ${differing.join(", ")} (edit that file to change them)`,
    );
  if (Object.keys(added).length > 0)
    notes.push(`added to ${path}: ${Object.keys(added).join(", ")}`);
  return { text: withEnvUpdates(installed, added), notes };
}

/** The operator's notes on the VM (what `Documentation=` in the unit names). */
function operatorNotes(): string {
  return `# voice-agent on this machine

Installed by \`voice-agent setup --install-service\`. The full guide is docs/DEPLOY.md in the
voice-agent sources; \`voice-agent --help\` lists every setting.

- Binary: /usr/local/bin/voice-agent
- Settings and secrets (root only, mode 0600): ${SERVICE_ENV_FILE}
- systemd unit: /etc/systemd/system/${UNIT}.service
- Database (SQLite, WAL): /var/lib/voice-agent/voice-agent.db, the unit's StateDirectory

- Check everything live: \`sudo voice-agent setup --env-file ${SERVICE_ENV_FILE} --status\`
- The bearer secret for /make-call and the call records: \`sudo grep ENDPOINT_SECRET ${SERVICE_ENV_FILE}\`
- A test call to your own phone: \`sudo voice-agent call --env-file ${SERVICE_ENV_FILE} --to +1…\`
- Firewall: open only SSH and the reverse proxy's 80 and 443 (\`sudo ufw allow 80,443/tcp\`), not the
  service's port.
- Logs: \`journalctl -u ${UNIT} -f\`; after editing the env file: \`sudo systemctl restart ${UNIT}\`
  (live calls are drained first).
- Back up the database while it runs: \`sudo apt-get install -y sqlite3\`, then
  \`sudo sqlite3 /var/lib/voice-agent/voice-agent.db ".backup /root/voice-agent.bak"\`.
- Remove the service (the database stays): \`sudo voice-agent setup --uninstall-service\`.

The unit is hardened (\`systemd-analyze security ${UNIT}\`): the service may write only
/var/lib/voice-agent, so DATABASE_PATH must stay there; it sees no other processes, devices or home
directories and may use only the system calls of ordinary services. MemoryDenyWriteExecute stays
off because the JavaScript JIT needs writable and executable memory.
`;
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
  const env = serviceEnv(readFileSync(envFile, "utf8"));
  if (existsSync(target.envFile)) {
    // Installed before: what was changed there (a rotated secret) stays; only new settings join.
    const merged = keepInstalled(readFileSync(target.envFile, "utf8"), env.text, target.envFile);
    env.text = merged.text;
    env.notes.push(...merged.notes);
  }
  const changed = {
    binary: place(target.binary, readFileSync(source), 0o755),
    envFile: place(target.envFile, Buffer.from(env.text), 0o600),
    unit: place(target.unit, Buffer.from(unitText), 0o644),
    doc: place(target.doc, Buffer.from(operatorNotes()), 0o644),
  };
  for (const [what, path] of Object.entries(target)) {
    io.out(`${changed[what as keyof typeof changed] ? "installed" : "unchanged"} ${path}`);
  }
  for (const note of env.notes) io.out(note);
  const anyChange = changed.binary || changed.envFile || changed.unit;
  const commands = [
    ...(changed.unit ? [["systemctl", "daemon-reload"]] : []),
    ["systemctl", "enable", "--now", UNIT],
    ...(anyChange ? [["systemctl", "restart", UNIT]] : []),
  ];
  const values = parseEnv(env.text);
  const port = values.SERVER_PORT || "8080";
  const tool = systemctl(root);
  if (!tool) {
    io.out("systemd is not running here (or --root was given); run these as root on the VM:");
    for (const command of commands) io.out(`  ${command.join(" ")}`);
  } else {
    for (const command of commands) run([tool, ...command.slice(1)], io);
    // Where the installed settings put it (a SERVER_HOST kept from the env file included).
    if (
      !(await waitForHealth(
        localServiceUrl((name) => values[name]),
        io,
      ))
    )
      return 1;
  }
  io.out(`Logs: journalctl -u ${UNIT} -f`);
  const external = values.SERVER_EXTERNAL_URL;
  const site = external && URL.canParse(external) ? new URL(external).host : "voice.example.com";
  io.out("");
  io.out("Put TLS in front (Twilio needs https/wss), e.g. Caddy in /etc/caddy/Caddyfile:");
  io.out(`  ${site} {`);
  io.out(`      reverse_proxy 127.0.0.1:${port}`);
  io.out("  }");
  io.out(
    `Firewall: open only the proxy's ports (sudo ufw allow 80,443/tcp; also your SSH port), not ${port}. See docs/DEPLOY.md.`,
  );
  io.out("");
  const setting = (name: string) => values[name];
  for (const line of summary(setting, SERVICE_ENV_FILE)) io.out(line);
  io.out("");
  for (const line of nextSteps(setting, SERVICE_ENV_FILE, { ready: false, installed: true }))
    io.out(line);
  io.out(`Notes for this machine: ${SERVICE_DOC_FILE}`);
  return 0;
}

export async function uninstallService(flags: SetupFlags, io: SetupIo): Promise<number> {
  const root = flags.root ?? "/";
  const target = paths(root);
  const tool = systemctl(root);
  if (tool && existsSync(target.unit)) run([tool, "disable", "--now", UNIT], io);
  else if (!tool)
    io.out(
      `systemd is not running here (or --root was given); run as root on the VM: systemctl disable --now ${UNIT}`,
    );
  for (const path of [target.unit, target.envFile, target.binary, target.doc]) {
    const present = existsSync(path);
    rmSync(path, { force: true });
    io.out(`${present ? "removed" : "absent"} ${path}`);
  }
  if (tool) run([tool, "daemon-reload"], io);
  return 0;
}
