/**
 * `voice-agent --workers 2` on one port and one SQLite file, nothing else installed: the kernel
 * spreads connections over the workers, so a call's webhook, its stream and its verdict may reach
 * different workers, which agree through the supervisor. Calls work whichever worker they reach,
 * the limit holds across workers, a crashed worker is started again, SIGTERM drains them all.
 */
import { afterEach, expect, setDefaultTimeout, test } from "bun:test";

/** Several processes or instances start per test: more than the default 5 s on a loaded machine. */
setDefaultTimeout(30_000);

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { FakeTtsServer } from "../fakes/tts-server.ts";
import { FakeTwilioRest } from "../fakes/twilio-rest-server.ts";
import { freePort, openStream, postSigned } from "../fakes/twilio-webhooks.ts";
import { FakeVoiceAgentServer } from "../fakes/voice-agent-server.ts";
import { eventually } from "../helpers/eventually.ts";
import { json } from "../helpers/http.ts";
import { parseMetrics, value } from "../helpers/metrics.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  CALLER,
  OFFICE_NUMBER,
  SECRET,
  signedServiceEnv,
} from "../helpers/signed-service.ts";

const MAIN = join(import.meta.dir, "../../src/main.ts");
const GREETING_BYTES = 300 * 8;
const DEEPGRAM_KEY = "dg-key";

interface Machine {
  child: Subprocess<"ignore", "pipe", "pipe">;
  url: string;
  /** Every JSON line the supervisor and its workers wrote. */
  lines: Record<string, unknown>[];
  twilio: FakeTwilioRest;
  agent: FakeVoiceAgentServer;
  stop(): Promise<void>;
}

let machine: Machine | undefined;
afterEach(async () => {
  await machine?.stop();
  machine = undefined;
});

async function startMachine(env: Record<string, string> = {}): Promise<Machine> {
  const dir = mkdtempSync(join(tmpdir(), "voice-agent-workers-"));
  const agent = FakeVoiceAgentServer.start({ apiKey: DEEPGRAM_KEY, greetingMs: 300 });
  const twilio = FakeTwilioRest.start(ACCOUNT_SID, AUTH_TOKEN);
  const tts = FakeTtsServer.start(DEEPGRAM_KEY);
  const port = freePort();
  const child = Bun.spawn(["bun", "run", MAIN, "--workers", "2"], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "",
      ...signedServiceEnv(port, agent.url),
      DEEPGRAM_API_URL: tts.url,
      TWILIO_API_URL: twilio.url,
      DATABASE_PATH: join(dir, "voice-agent.db"),
      SHUTDOWN_DRAIN_MS: "2000",
      HANGUP_SETTLE_MS: "30",
      LOG_LEVEL: "debug",
      ...env,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const lines: Record<string, unknown>[] = [];
  void (async () => {
    let buffered = "";
    for await (const chunk of child.stdout) {
      buffered += new TextDecoder().decode(chunk);
      const parts = buffered.split("\n");
      buffered = parts.pop() ?? "";
      for (const part of parts) if (part.startsWith("{")) lines.push(JSON.parse(part));
    }
  })();
  await eventually(
    () => lines.filter((line) => line.msg === "listening").length === 2,
    "both workers listening",
    15_000,
  );
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    lines,
    twilio,
    agent,
    async stop() {
      child.kill("SIGKILL");
      await child.exited;
      agent.stop();
      twilio.stop();
      tts.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A signed webhook on a connection of its own (so the kernel may pick either worker). */
const signed = (running: Machine, path: string, params: Record<string, string>) =>
  postSigned({
    serverUrl: running.url,
    publicUrl: running.url,
    path,
    params,
    authToken: AUTH_TOKEN,
  });

/** Which workers logged `msg` (for the call `callSid`, when given). */
const workersThat = (running: Machine, msg: string, callSid?: string) =>
  new Set(
    running.lines
      .filter((line) => line.msg === msg && (callSid === undefined || line.callSid === callSid))
      .map((line) => line.worker),
  );

test("two workers on one port: whole calls work whichever worker each part reaches", async () => {
  machine = await startMachine();
  for (let index = 0; index < 6; index++) {
    const callSid = `CAwork${String(index).padStart(4, "0")}`;
    const xml = await (
      await signed(machine, "/incoming-call", {
        CallSid: callSid,
        From: CALLER,
        To: OFFICE_NUMBER,
        CallStatus: "ringing",
      })
    ).text();
    const phone = await openStream(xml, callSid);
    await machine.agent.nextSession();
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, `${callSid} greeted`);
    phone.hangUp();
  }

  // Outbound: placed, streamed and its verdict may each reach another worker.
  for (let index = 0; index < 4; index++) {
    const placed = await json(
      await fetch(`${machine.url}/make-call`, {
        method: "POST",
        headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json" },
        body: JSON.stringify({ to: CALLER }),
      }),
    );
    const phone = await machine.twilio.answer(placed.call_sid);
    await machine.agent.nextSession();
    expect((await machine.twilio.sendAmd(placed.call_sid, "human")).status).toBe(204);
    await phone.waitFor(
      () => phone.heardBytes === GREETING_BYTES,
      "the greeting after the verdict",
    );
    phone.hangUp();
  }
  // The rest of a whole call, through the one port: barge-in and a booking in an inbound call; an
  // early verdict; a machine's voicemail; Twilio's end of a call; the records read on any worker.
  const xml = await (
    await signed(machine, "/incoming-call", {
      CallSid: "CAwhole01",
      From: CALLER,
      To: OFFICE_NUMBER,
    })
  ).text();
  const caller = await openStream(xml, "CAwhole01");
  const receptionist = await machine.agent.nextSession();
  await caller.waitFor(() => caller.heardBytes === GREETING_BYTES, "the receptionist");
  receptionist.say("Our next opening is on Tuesday.", 2_000);
  await caller.waitFor(() => caller.mediaReceived > 0, "the agent speaking");
  receptionist.userStartedSpeaking();
  await caller.waitFor(() => caller.clears === 1, "the barge-in's clear");
  const open = JSON.parse(await receptionist.callFunction("check_available_slots", {}));
  expect(open.slots?.length ?? open.available?.length).toBeGreaterThan(0);
  caller.hangUp();

  const place = async () =>
    json(
      await fetch(`${machine?.url}/make-call`, {
        method: "POST",
        headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json" },
        body: JSON.stringify({ to: CALLER }),
      }),
    );
  const early = await place();
  await machine.twilio.sendAmd(early.call_sid, "human");
  const earlyPhone = await machine.twilio.answer(early.call_sid);
  await earlyPhone.waitFor(() => earlyPhone.heardBytes === GREETING_BYTES, "greeted at once");
  expect((await machine.twilio.sendStatus(early.call_sid, "completed"))?.status).toBe(204);
  await earlyPhone.closed;

  const voicemail = await place();
  const answering = await machine.twilio.answer(voicemail.call_sid);
  await machine.agent.nextSession();
  await machine.twilio.sendAmd(voicemail.call_sid, "machine_end_beep");
  await answering.closed;
  for (let read = 0; read < 4; read++) {
    const record = await eventually(async () => {
      const { call } = await json(
        await fetch(`${machine?.url}/calls/${voicemail.call_sid}`, {
          headers: { authorization: `Bearer ${SECRET}` },
        }),
      );
      return call.end_reason ? call : undefined;
    }, "the voicemail's record, read on any worker");
    expect(record).toMatchObject({ outcome: "no_answer_voicemail_left" });
  }

  // The kernel spread the calls' streams over both workers (all on one: a 1-in-4,000 chance).
  expect(workersThat(machine, "call started")).toEqual(new Set([0, 1]));
  const health = await json(await fetch(`${machine.url}/health`));
  expect(health.workers).toEqual({ total: 2, alive: 2 });
}, 30_000);

test("the limit holds across the workers; a crashed worker is started again; SIGTERM drains all", async () => {
  machine = await startMachine({ MAX_CONCURRENT_CALLS: "2" });
  const answers = await Promise.all(
    Array.from({ length: 8 }, (_, index) =>
      signed(machine as Machine, "/incoming-call", {
        CallSid: `CAlimit${String(index).padStart(3, "0")}`,
        From: CALLER,
        To: OFFICE_NUMBER,
      }).then((response) => response.text()),
    ),
  );
  expect(answers.filter((xml) => xml.includes("<Stream"))).toHaveLength(2);

  const started = machine.lines.filter((line) => line.msg === "worker started");
  const victim = Number(started[0]?.pid);
  process.kill(victim, "SIGKILL");
  await eventually(
    () => machine?.lines.some((line) => line.msg === "worker exited; starting it again"),
    "the supervisor noticing",
    10_000,
  );
  await eventually(
    () => machine?.lines.filter((line) => line.msg === "listening").length === 3,
    "the worker listening again",
    15_000,
  );

  // A call live through the shutdown: the drain waits for it.
  const index = answers.findIndex((xml) => xml.includes("<Stream"));
  const phone = await openStream(answers[index] ?? "", `CAlimit${String(index).padStart(3, "0")}`);
  await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, "a call live through shutdown");
  // As systemd (KillMode=control-group) and Ctrl-C do: every process of the group is signalled.
  const pids = new Map(
    machine.lines
      .filter((line) => line.msg === "worker started")
      .map((line) => [line.worker, Number(line.pid)]),
  );
  machine.child.kill("SIGTERM");
  for (const pid of pids.values()) process.kill(pid, "SIGTERM");
  await Bun.sleep(300);
  expect(phone.isClosed).toBe(false);
  phone.hangUp();
  expect(await machine.child.exited).toBe(0);
  expect(machine.lines.filter((line) => line.msg === "worker stopped")).toHaveLength(2);
  // Each worker drained once: the supervisor's relay, not a second signal cutting calls short.
  expect(machine.lines.filter((line) => String(line.msg).startsWith("second SIGTERM"))).toEqual([]);
  expect(machine.lines.filter((line) => line.msg === "shutting down")).toHaveLength(2);
});

test("recordings through two workers: written where the call is held, served by either", async () => {
  machine = await startMachine({
    RECORDING: "local",
    INBOUND_DISCLOSURE: "This call is recorded.",
  });
  const calls: string[] = [];
  for (let index = 0; index < 4; index++) {
    const callSid = `CArec${String(index).padStart(4, "0")}`;
    calls.push(callSid);
    const xml = await (
      await signed(machine, "/incoming-call", { CallSid: callSid, From: CALLER, To: OFFICE_NUMBER })
    ).text();
    const phone = await openStream(xml, callSid);
    await machine.agent.nextSession();
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, `${callSid} greeted`);
    for (let frame = 0; frame < 25; frame++) phone.sendMedia(new Uint8Array(160).fill(index));
    phone.hangUp();
  }
  for (const callSid of calls) {
    const { recording } = await eventually(async () => {
      const { call } = await json(
        await fetch(`${machine?.url}/calls/${callSid}`, {
          headers: { authorization: `Bearer ${SECRET}` },
        }),
      );
      return call.recording ? call : undefined;
    }, `${callSid}'s recording on its record`);
    for (let read = 0; read < 6; read++) {
      // A connection of its own each time, so the kernel may pick either worker.
      const response = await fetch(`${machine.url}/calls/${callSid}/recording`, {
        headers: { authorization: `Bearer ${SECRET}`, connection: "close" },
      });
      expect(response.status).toBe(200);
      expect((await response.arrayBuffer()).byteLength).toBe(recording.bytes);
    }
  }
  const servedBy = new Set(
    machine.lines
      .filter((line) => line.msg === "http" && String(line.path).endsWith("/recording"))
      .map((line) => line.worker),
  );
  // 24 reads on fresh connections: all on one worker is a 1-in-8-million chance.
  expect(servedBy).toEqual(new Set([0, 1]));

  // One scrape, on whichever worker, covers the machine: every call counted once, summed.
  const scrapes = await Promise.all(
    [0, 1, 2, 3].map(async () =>
      parseMetrics(
        await (
          await fetch(`${machine?.url}/metrics`, {
            headers: { authorization: `Bearer ${SECRET}`, connection: "close" },
          })
        ).text(),
      ),
    ),
  );
  for (const scrape of scrapes) {
    expect(value(scrape, "voice_agent_webhooks_total", { route: "/incoming-call" })).toBe(4);
    expect(scrape.types.get("voice_agent_calls_total")).toBe("counter");
    // Every worker's own series, labelled.
    for (const worker of ["0", "1"])
      expect(value(scrape, "process_resident_memory_bytes", { worker })).toBeGreaterThan(0);
  }
  const running = machine;
  await eventually(
    async () => {
      const scrape = parseMetrics(
        await (
          await fetch(`${running.url}/metrics`, { headers: { authorization: `Bearer ${SECRET}` } })
        ).text(),
      );
      return value(scrape, "voice_agent_calls_total", { end_reason: "caller_hung_up" }) === 4;
    },
    "the four calls counted once across the workers",
    10_000,
  );
}, 30_000);

test("the console's live stream and the events webhook through two workers: every call, once", async () => {
  const delivered: string[] = [];
  const crm = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      delivered.push(JSON.parse(await request.text()).call.call.sid);
      return new Response(null, { status: 204 });
    },
  });
  try {
    machine = await startMachine({
      EVENTS_WEBHOOK_URL: `http://127.0.0.1:${crm.port}/calls`,
      EVENTS_WEBHOOK_SECRET: "events-secret-for-the-workers-test",
    });
    const running = machine;
    const login = await fetch(`${running.url}/console/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ secret: SECRET }),
    });
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    // The stream on one worker (its own connection); the calls on either.
    const stream = await fetch(`${running.url}/console/stream`, {
      headers: { cookie, connection: "close" },
    });
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    let seen = "";
    const calls: string[] = [];
    for (let index = 0; index < 4; index++) {
      const callSid = `CAcon${String(index).padStart(4, "0")}`;
      calls.push(callSid);
      const xml = await (
        await signed(running, "/incoming-call", {
          CallSid: callSid,
          From: CALLER,
          To: OFFICE_NUMBER,
        })
      ).text();
      const phone = await openStream(xml, callSid);
      await running.agent.nextSession();
      await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, `${callSid} greeted`);
      // Live on whichever worker: the stream, wherever it is, lists it.
      while (!seen.includes(`"sid":"${callSid}"`)) {
        const { value } = await reader.read();
        seen += new TextDecoder().decode(value);
      }
      phone.hangUp();
    }
    await reader.cancel();
    expect(workersThat(running, "call started").size).toBeGreaterThan(0);
    await eventually(() => delivered.length >= 4, "every call delivered", 15_000);
    expect(delivered.sort()).toEqual(calls);
  } finally {
    crm.stop(true);
  }
}, 30_000);
