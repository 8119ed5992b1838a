#!/usr/bin/env bun
/**
 * Dev client: plays the phone side of a call against a running voice-agent, speaking Twilio's media
 * stream protocol, so a developer can talk to an agent with no phone and no Twilio account.
 *
 *   ALLOW_DEV_STREAMS=true bun run start                        # the server, in another terminal
 *   bun run scripts/dev-client.ts --audio hello.wav --save agent.wav
 *   bun run scripts/dev-client.ts --mic --play                  # needs sox (or arecord/aplay)
 *
 * Streams a WAV or raw mu-law file (then silence, as Twilio does) or the microphone, plays or saves
 * what the agent says, and prints the call's transcript and function calls from GET /calls/:sid.
 */
import { parseArgs } from "node:util";
import { mulawSilence } from "../test/fakes/mulaw.ts";
import { FakeTwilioCall } from "../test/fakes/twilio-media-client.ts";
import { mulawToWav, wavToMulaw } from "./lib/wav.ts";

const { values } = parseArgs({
  options: {
    server: { type: "string", default: process.env.DEV_CLIENT_SERVER ?? "http://127.0.0.1:8080" },
    audio: { type: "string" },
    mic: { type: "boolean", default: false },
    save: { type: "string" },
    play: { type: "boolean", default: false },
    from: { type: "string", default: "+15555550100" },
    to: { type: "string", default: "+15555550199" },
    scenario: { type: "string" },
    seconds: { type: "string", default: "120" },
    secret: { type: "string", default: process.env.ENDPOINT_SECRET },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  console.log(`Usage: bun run scripts/dev-client.ts [--server http://127.0.0.1:8080] [--audio FILE.wav|FILE.ulaw] [--mic]
       [--save agent.wav] [--play] [--from +1555…] [--to +1555…] [--scenario ID] [--seconds 120] [--secret S]
The server must run with ALLOW_DEV_STREAMS=true.`);
  process.exit(0);
}

const httpBase = values.server.replace(/\/+$/, "").replace(/^ws/, "http");
const callSid = `CAdev${crypto.randomUUID().replaceAll("-", "").slice(0, 29)}`;

async function loadAudio(path: string): Promise<Buffer> {
  const file = await Bun.file(path).bytes();
  if (path.endsWith(".ulaw") || path.endsWith(".raw")) return Buffer.from(file);
  const direct = wavToMulaw(file);
  if (direct) return direct;
  const sox = Bun.spawnSync(
    ["sox", path, "-t", "raw", "-r", "8000", "-e", "mu-law", "-c", "1", "-"],
    { stderr: "pipe" },
  );
  if (sox.exitCode !== 0)
    throw new Error(`${path} is not 8 kHz mono WAV and sox could not convert it`);
  return Buffer.from(sox.stdout);
}

function spawnFirst(commands: string[][], io: { stdin?: "pipe"; stdout?: "pipe" }) {
  for (const command of commands) {
    if (Bun.which(command[0] ?? "")) return Bun.spawn(command, { ...io, stderr: "ignore" });
  }
  return undefined;
}

const phone = await FakeTwilioCall.connect({
  url: `${httpBase.replace(/^http/, "ws")}/twilio`,
  callSid,
  speed: 1,
  customParameters: {
    from: values.from,
    to: values.to,
    ...(values.scenario ? { scenario: values.scenario } : {}),
  },
}).catch((error: Error) => {
  console.error(`${error.message}: is the server running at ${httpBase}?`);
  process.exit(1);
});
console.log(`call ${callSid} connected to ${httpBase}`);
phone.closed.then(({ code, reason }) => {
  if (code !== 1008) return;
  console.error(
    `stream refused: ${reason}. Start the server with ALLOW_DEV_STREAMS=true for local development.`,
  );
  process.exit(2);
});

const player = values.play
  ? spawnFirst(
      [
        ["aplay", "-q", "-f", "MU_LAW", "-r", "8000", "-c", "1"],
        ["play", "-q", "-t", "raw", "-r", "8000", "-e", "mu-law", "-c", "1", "-"],
      ],
      { stdin: "pipe" },
    )
  : undefined;
if (values.play && !player) console.error("--play needs aplay or sox's play; saving only");
let played = 0;

const headers: Record<string, string> = values.secret
  ? { authorization: `Bearer ${values.secret}` }
  : {};
let shown = 0;
async function printTimeline(): Promise<void> {
  const response = await fetch(`${httpBase}/calls/${callSid}`, { headers }).catch(() => undefined);
  if (!response?.ok) return;
  const { timeline } = (await response.json()) as {
    timeline: { kind: string; data: Record<string, unknown> }[];
  };
  for (const event of timeline.slice(shown)) {
    const { data } = event;
    if (event.kind === "transcript")
      console.log(`${data.role === "user" ? "caller" : "agent "}: ${data.text}`);
    else if (event.kind === "function_call")
      console.log(`  ↳ ${data.name}(${JSON.stringify(data.arguments)}) → ${data.result}`);
    else console.log(`  [${event.kind}] ${JSON.stringify(data)}`);
  }
  shown = timeline.length;
}

const poll = setInterval(() => {
  const audio = phone.receivedAudio();
  if (player?.stdin && audio.length > played) {
    player.stdin.write(audio.subarray(played));
    played = audio.length;
  }
  void printTimeline();
}, 250);

const deadline = Date.now() + Number(values.seconds) * 1000;
const source = values.mic
  ? spawnFirst(
      [
        ["sox", "-q", "-d", "-t", "raw", "-r", "8000", "-e", "mu-law", "-c", "1", "-"],
        ["arecord", "-q", "-f", "MU_LAW", "-r", "8000", "-c", "1", "-t", "raw"],
      ],
      { stdout: "pipe" },
    )
  : undefined;
if (values.mic && !source) console.error("--mic needs sox or arecord; sending silence");

if (source?.stdout) {
  (async () => {
    for await (const chunk of source.stdout as ReadableStream<Uint8Array>) {
      for (let offset = 0; offset < chunk.length; offset += 160)
        phone.sendMedia(chunk.subarray(offset, offset + 160));
      if (phone.isClosed || Date.now() > deadline) break;
    }
  })();
} else {
  if (values.audio) await phone.streamAudio(await loadAudio(values.audio));
  // Twilio keeps sending (silent) frames for as long as the call lasts.
  while (!phone.isClosed && Date.now() < deadline) await phone.streamAudio(mulawSilence(1000));
}

if (phone.isClosed) console.log("the agent hung up");
else {
  phone.hangUp();
  console.log("hung up");
}
await Promise.race([phone.closed, Bun.sleep(2000)]);
source?.kill();
clearInterval(poll);
await Bun.sleep(300);
await printTimeline();
if (values.save) {
  await Bun.write(values.save, mulawToWav(phone.receivedAudio()));
  console.log(
    `agent audio saved to ${values.save} (${(phone.receivedAudio().length / 8000).toFixed(1)} s)`,
  );
}
player?.stdin?.end();
process.exit(0);
