#!/usr/bin/env bun
/**
 * The reference `scripts/bench-bridge.ts --reference` measures the service against: the least a
 * Twilio Media Streams ↔ Voice Agent bridge must do, and nothing more. Per stream, at `start`, one
 * agent socket (DEEPGRAM_AGENT_URL, `Token` auth, a minimal Settings); caller `media` → parse,
 * base64-decode, binary to the agent; agent binary → base64 `media` to the phone with a `mark` per
 * 100 ms of audio (written together); `UserStartedSpeaking` → `clear`; `stop` or either socket
 * closing closes both. Frames that arrive before the agent socket is open are dropped and counted.
 * `GET /caller-audio` answers the frame counts; logs one JSON line, `listening`, like the service.
 *
 *   SERVER_HOST=127.0.0.1 SERVER_PORT=0 DEEPGRAM_AGENT_URL=ws://… DEEPGRAM_API_KEY=… \
 *     bun run scripts/lib/reference-bridge.ts
 */
import type { ServerWebSocket } from "bun";

const agentUrl = process.env.DEEPGRAM_AGENT_URL ?? "";
const apiKey = process.env.DEEPGRAM_API_KEY ?? "";
if (!agentUrl || !apiKey) throw new Error("set DEEPGRAM_AGENT_URL and DEEPGRAM_API_KEY");

/** mu-law 8 kHz: 100 ms of audio between marks. */
const MARK_EVERY_BYTES = 800;

interface Stream {
  agent: WebSocket | undefined;
  /** True once the agent socket is open and has its Settings. */
  agentOpen: boolean;
  streamSid: string;
  unmarkedBytes: number;
  marks: number;
}

/** What became of the caller's frames; nothing is held back by design here. */
const callerAudio = { received: 0, forwarded: 0, dropped_before_agent_open: 0 };

/** Settings the Voice Agent accepts, the least of them; the prompt names the caller (the bench maps calls by it). */
function settings(from: string): string {
  return JSON.stringify({
    type: "Settings",
    audio: {
      input: { encoding: "mulaw", sample_rate: 8000 },
      output: { encoding: "mulaw", sample_rate: 8000, container: "none" },
    },
    agent: {
      listen: { provider: { type: "deepgram", model: "flux-general-en" } },
      think: {
        provider: { type: "open_ai", model: "gpt-4o-mini" },
        prompt: `You answer the phone. The caller's number is ${from}.`,
      },
      speak: { provider: { type: "deepgram", model: "aura-2-thalia-en" } },
      greeting: "Hello!",
    },
  });
}

function openAgent(phone: ServerWebSocket<Stream>, from: string): void {
  const stream = phone.data;
  const agent = new WebSocket(agentUrl, { headers: { Authorization: `Token ${apiKey}` } });
  agent.binaryType = "nodebuffer";
  stream.agent = agent;
  agent.onopen = () => {
    agent.send(settings(from));
    stream.agentOpen = true;
  };
  agent.onmessage = (event) => {
    if (typeof event.data !== "string") {
      const audio = event.data as Buffer;
      const media = `{"event":"media","streamSid":"${stream.streamSid}","media":{"payload":"${audio.toString("base64")}"}}`;
      stream.unmarkedBytes += audio.byteLength;
      if (stream.unmarkedBytes < MARK_EVERY_BYTES) {
        phone.send(media);
        return;
      }
      stream.unmarkedBytes = 0;
      const mark = `{"event":"mark","streamSid":"${stream.streamSid}","mark":{"name":"m${++stream.marks}"}}`;
      phone.cork(() => {
        phone.send(media);
        phone.send(mark);
      });
      return;
    }
    if ((JSON.parse(event.data) as { type?: string }).type === "UserStartedSpeaking")
      phone.send(`{"event":"clear","streamSid":"${stream.streamSid}"}`);
  };
  agent.onclose = () => {
    stream.agentOpen = false;
    phone.close();
  };
}

function closeAgent(stream: Stream): void {
  stream.agentOpen = false;
  stream.agent?.close();
}

const server = Bun.serve<Stream>({
  hostname: process.env.SERVER_HOST ?? "127.0.0.1",
  port: Number(process.env.SERVER_PORT ?? 0),
  fetch(request, server) {
    const path = new URL(request.url).pathname;
    if (path === "/caller-audio") return Response.json(callerAudio);
    if (path !== "/twilio") return new Response("not found", { status: 404 });
    const data: Stream = {
      agent: undefined,
      agentOpen: false,
      streamSid: "",
      unmarkedBytes: 0,
      marks: 0,
    };
    return server.upgrade(request, { data })
      ? undefined
      : new Response("expected a websocket", { status: 400 });
  },
  websocket: {
    message(phone, text) {
      const message = JSON.parse(String(text));
      const stream = phone.data;
      if (message.event === "media") {
        callerAudio.received += 1;
        if (!stream.agentOpen) {
          callerAudio.dropped_before_agent_open += 1;
          return;
        }
        stream.agent?.send(Buffer.from(message.media.payload, "base64"));
        callerAudio.forwarded += 1;
      } else if (message.event === "start") {
        stream.streamSid = message.start.streamSid;
        openAgent(phone, message.start.customParameters?.from ?? "unknown");
      } else if (message.event === "stop") {
        closeAgent(stream);
        phone.close();
      }
    },
    close(phone) {
      closeAgent(phone.data);
    },
  },
});

console.log(JSON.stringify({ msg: "listening", url: `http://${server.hostname}:${server.port}` }));
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
