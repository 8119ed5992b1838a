/**
 * The compiled single binary (built as `bun run build` builds it), run as a user would: from a
 * folder with no node_modules, configured only by its environment. Also renders /docs in headless
 * Chromium with every non-loopback request blocked.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import twilio from "twilio";
import { describeEnvironment } from "../src/config.ts";
import { VERSION } from "../src/version.ts";
import { FakeTwilioRest } from "./fakes/twilio-rest-server.ts";
import { freePort } from "./fakes/twilio-webhooks.ts";
import { buildCommand, compiledBinary } from "./helpers/compiled-binary.ts";
import { NO_DEEPGRAM_REST } from "./helpers/context.ts";
import { json } from "./helpers/http.ts";
import { listeningUrl } from "./helpers/listening.ts";
import { haveChromium, offlinePage, warnWithoutChromium } from "./helpers/offline-browser.ts";

let dir: string;
let binary: string;

beforeAll(async () => {
  binary = await compiledBinary();
  dir = mkdtempSync(join(tmpdir(), "voice-agent-binary-runs-"));
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the binary in an empty working folder with only the given environment. */
function run(args: string[], env: Record<string, string> = {}) {
  const cwd = mkdtempSync(join(dir, "run-"));
  return Bun.spawnSync([binary, ...args], { cwd, env: { PATH: process.env.PATH ?? "", ...env } });
}

interface Running {
  url: string;
  cwd: string;
  process: Bun.Subprocess<"ignore", "pipe", "pipe">;
}

/** Starts `voice-agent` on a random loopback port and waits for its "listening" log line. */
async function serve(env: Record<string, string> = {}): Promise<Running> {
  const cwd = mkdtempSync(join(dir, "serve-"));
  const child = Bun.spawn([binary], {
    cwd,
    env: {
      PATH: process.env.PATH ?? "",
      SERVER_PORT: "0",
      SERVER_HOST: "127.0.0.1",
      SHUTDOWN_DRAIN_MS: "100",
      ...env,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const url = await listeningUrl(child.stdout, () => new Response(child.stderr).text());
  return { url, cwd, process: child };
}

describe("the build the binary tests use", () => {
  test("is package.json's build script with only the output moved", () => {
    expect(
      buildCommand("bun build --compile --minify --bytecode src/main.ts --outfile dist/x", "/t/x"),
    ).toEqual([
      process.execPath,
      "build",
      "--compile",
      "--minify",
      "--bytecode",
      "src/main.ts",
      "--outfile",
      "/t/x",
    ]);
  });

  test("refuses a script it cannot run faithfully", () => {
    for (const script of [
      "bun build --compile src/main.ts --outfile dist/x && strip dist/x",
      "bun build --compile src/main.ts --outfile=dist/x",
      "bun build src/main.ts --outfile dist/x",
      "bun build --compile src/main.ts --outdir dist",
    ])
      expect(() => buildCommand(script, "/t/x")).toThrow("not one plain");
  });
});

describe("compiled binary", () => {
  test("a bunfig.toml in the working folder runs nothing (sudo voice-agent … from any folder)", () => {
    const cwd = mkdtempSync(join(dir, "bunfig-"));
    const marker = join(cwd, "preloaded");
    writeFileSync(join(cwd, "bunfig.toml"), 'preload = ["./evil.js"]\n');
    writeFileSync(
      join(cwd, "evil.js"),
      `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "x");`,
    );
    const result = Bun.spawnSync([binary, "--version"], {
      cwd,
      env: { PATH: process.env.PATH ?? "" },
    });
    expect(result.exitCode).toBe(0);
    expect(existsSync(marker)).toBe(false);
  });

  test("--version prints the package version", () => {
    const result = run(["--version"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout.toString().trim()).toBe(VERSION);
  });

  test("--help lists the commands and every variable", () => {
    const result = run(["--help"]);
    expect(result.exitCode).toBe(0);
    const help = result.stdout.toString();
    expect(help).toContain("voice-agent health");
    for (const { name } of describeEnvironment()) expect(help).toContain(name);
  });

  test("bad configuration exits 78 naming each bad variable", () => {
    const result = run([], { SERVER_PORT: "abc", SERVER_EXTERNAL_URL: "not a url" });
    expect(result.exitCode).toBe(78);
    const stderr = result.stderr.toString();
    expect(stderr).toContain("SERVER_PORT: expected an integer from 0 to 65535");
    expect(stderr).toContain("SERVER_EXTERNAL_URL: expected an absolute http(s) URL");
  });

  test("call --help describes the call command; call without --to is a usage error", () => {
    const help = run(["call", "--help"]);
    expect(help.exitCode).toBe(0);
    expect(help.stdout.toString()).toContain("--lead-file");
    expect(run(["call"]).exitCode).toBe(64);
  });

  test("setup --help works from the binary", () => {
    const help = run(["setup", "--help"]);
    expect(help.exitCode).toBe(0);
    expect(help.stdout.toString()).toContain("--install-service");
  });

  test("setup --install-service from the binary installs the binary itself under a root", () => {
    const root = join(dir, "install-root");
    const envFile = join(dir, "install.env");
    writeFileSync(envFile, "SERVER_PORT=8080\n");
    const result = run(["setup", "--install-service", "--root", root, "--env-file", envFile]);
    expect(result.exitCode).toBe(0);
    expect(readFileSync(join(root, "usr/local/bin/voice-agent")).equals(readFileSync(binary))).toBe(
      true,
    );
    expect(result.stdout.toString()).toContain("systemctl enable --now voice-agent");
  });

  test("health exits 1 when nothing answers", () => {
    const result = run(["health"], { SERVER_PORT: "1" });
    expect(result.exitCode).toBe(1);
    expect(result.stderr.toString()).toContain("health check failed");
  });

  test("an unknown command exits 64 with the usage", () => {
    const result = run(["dance"]);
    expect(result.exitCode).toBe(64);
    expect(result.stderr.toString()).toContain("unknown command: dance");
  });

  test("serves health and docs with no node_modules, creates its database, exits 0 on SIGTERM", async () => {
    const server = await serve();
    try {
      const health = await fetch(`${server.url}/health`);
      expect(health.status).toBe(200);
      expect(await json(health)).toMatchObject({ status: "ok", version: VERSION, activeCalls: 0 });
      const document = await json(await fetch(`${server.url}/docs/json`));
      expect(Object.keys(document.paths)).toContain("/health");
      const script = await fetch(`${server.url}/docs/assets/scalar.js`);
      expect(script.status).toBe(200);
      expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(1_000_000);
      const port = new URL(server.url).port;
      expect(run(["health"], { SERVER_PORT: port }).exitCode).toBe(0);
    } finally {
      server.process.kill("SIGTERM");
    }
    expect(await server.process.exited).toBe(0);
    expect(existsSync(join(server.cwd, "data", "voice-agent.db"))).toBe(true);
  }, 30_000);

  test("--workers 2 runs two copies of the binary on one port; SIGTERM stops them all", async () => {
    const port = freePort();
    const cwd = mkdtempSync(join(dir, "workers-"));
    const child = Bun.spawn([binary, "--workers", "2"], {
      cwd,
      env: { PATH: process.env.PATH ?? "", SERVER_PORT: String(port), SERVER_HOST: "127.0.0.1" },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    await listeningUrl(child.stdout, () => new Response(child.stderr).text());
    const health = await json(await fetch(`http://127.0.0.1:${port}/health`));
    expect(health.workers).toMatchObject({ total: 2 });
    child.kill("SIGTERM");
    expect(await child.exited).toBe(0);
  }, 30_000);
});

describe("compiled binary with Twilio", () => {
  test("POST /make-call places the call through the bundled twilio SDK", async () => {
    const sid = `AC${"9".repeat(32)}`;
    const twilio = FakeTwilioRest.start(sid, "binary-token");
    const server = await serve({
      SERVER_EXTERNAL_URL: "https://voice.example.com",
      ENDPOINT_SECRET: "binary-endpoint-secret",
      DEEPGRAM_API_KEY: "dg",
      DEEPGRAM_API_URL: NO_DEEPGRAM_REST,
      // Its start-up model check goes to the agent host: a closed loopback port, never Deepgram.
      DEEPGRAM_AGENT_URL: "ws://127.0.0.1:9/v1/agent/converse",
      TWILIO_ACCOUNT_SID: sid,
      TWILIO_AUTH_TOKEN: "binary-token",
      TWILIO_PHONE_NUMBER: "+15550001111",
      TWILIO_API_URL: twilio.url,
    });
    try {
      const response = await fetch(`${server.url}/make-call`, {
        method: "POST",
        headers: {
          authorization: "Bearer binary-endpoint-secret",
          "content-type": "application/json",
        },
        body: JSON.stringify({ to: "+15557654321" }),
      });
      expect(response.status).toBe(200);
      expect(twilio.lastCall()).toMatchObject({
        to: "+15557654321",
        machineDetection: "DetectMessageEnd",
      });
    } finally {
      server.process.kill("SIGTERM");
      await server.process.exited;
      twilio.stop();
    }
  }, 30_000);
});

describe("compiled binary, the twilio SDK's first use in a media-stream upgrade", () => {
  test("with stream signatures on, a signed upgrade opens and a wrongly signed one is refused", async () => {
    const port = freePort();
    const server = await serve({
      SERVER_PORT: String(port),
      SERVER_EXTERNAL_URL: `http://127.0.0.1:${port}`,
      TWILIO_AUTH_TOKEN: "binary-token",
      TWILIO_VALIDATE_STREAM_SIGNATURES: "true",
    });
    const streamUrl = `ws://127.0.0.1:${port}/twilio`;
    /** Whether the upgrade with this signature opens (then it is closed again). */
    const opens = async (signature: string) => {
      const headers = { "x-twilio-signature": signature };
      const socket = new WebSocket(streamUrl, { headers } as unknown as string[]);
      const opened = await new Promise<boolean>((resolve) => {
        socket.addEventListener("open", () => resolve(true));
        socket.addEventListener("error", () => resolve(false));
      });
      socket.close();
      return opened;
    };
    try {
      expect(await opens(twilio.getExpectedTwilioSignature("binary-token", streamUrl, {}))).toBe(
        true,
      );
      expect(await opens("d3Jvbmc=")).toBe(false);
    } finally {
      server.process.kill("SIGTERM");
      await server.process.exited;
    }
  }, 30_000);
});

warnWithoutChromium("the /docs browser test");

describe("docs page in a browser", () => {
  test.skipIf(!haveChromium)(
    "headless Chromium renders the API reference with no network",
    async () => {
      const server = await serve();
      const { browser, page, blocked } = await offlinePage();
      try {
        await page.goto(`${server.url}/docs`);
        await page
          .getByText("Service health")
          .first()
          .waitFor({ state: "visible", timeout: 20_000 });
        expect(await page.title()).toBe("Voice Agent API");
        await expect(page.getByText("Voice Agent API").first().isVisible()).resolves.toBe(true);
        await page.screenshot({ path: join(dir, "docs.png") });
        if (process.env.DOCS_SCREENSHOT)
          await page.screenshot({ path: process.env.DOCS_SCREENSHOT, fullPage: false });
      } finally {
        await browser.close();
        server.process.kill("SIGTERM");
        await server.process.exited;
      }
      expect(blocked).toEqual([]);
    },
    60_000,
  );
});
