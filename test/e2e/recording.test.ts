/**
 * A recorded call end to end: real sockets, the fake agent and phone; the WAV fetched over HTTP
 * with and without ranges; retention; the disclosures recording requires.
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtemp, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStream } from "../fakes/twilio-webhooks.ts";
import { configError } from "../helpers/context.ts";
import { eventually } from "../helpers/eventually.ts";
import { json } from "../helpers/http.ts";
import { type SignedService, startSignedService } from "../helpers/signed-service.ts";

let dir: string;
let running: SignedService;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "recorded-"));
  running = await startSignedService({
    RECORDING: "local",
    RECORDINGS_DIR: dir,
    RECORDING_RETENTION_DAYS: "30",
    INBOUND_DISCLOSURE: "This call is recorded.",
  });
});
afterEach(async () => {
  await running.stop();
  await rm(dir, { recursive: true, force: true });
});

const frame = (n: number) => new Uint8Array(160).fill(n % 120);

/** Left and right channels of a 2-channel 8-bit WAV. */
function channels(wav: Buffer) {
  expect(wav.readUInt16LE(22)).toBe(2);
  expect(wav.readUInt32LE(24)).toBe(8000);
  const data = wav.subarray(44, 44 + wav.readUInt32LE(40));
  const left = Buffer.alloc(data.length / 2);
  const right = Buffer.alloc(data.length / 2);
  for (let i = 0; i < left.length; i++) {
    left[i] = data[i * 2] as number;
    right[i] = data[i * 2 + 1] as number;
  }
  return { left, right };
}

test("a recorded call: two channels, its duration, the caller byte for byte, nothing after a barge-in", async () => {
  const sid = "CA7e57000000000000000000000000abcd";
  const xml = await (await running.incoming(sid)).text();
  const phone = await openStream(xml, sid);
  const agent = await running.agent.nextSession();
  await phone.waitFor(() => phone.heardBytes === 100 * 8, "greeting heard");
  const sent: Uint8Array[] = [];
  const send = (count: number) => {
    for (let n = 0; n < count; n++) {
      const audio = frame(sent.length);
      sent.push(audio);
      phone.sendMedia(audio);
    }
  };
  send(40);
  await agent.waitFor(() => agent.audioFrames === 40, "frames forwarded");
  // A long answer, then the caller talks over it once it has been sent.
  agent.say("Let me tell you all about our opening hours and our providers.", 3000);
  await phone.waitFor(() => phone.mediaReceived > 0 && phone.received.length > 10, "answer sent");
  send(10);
  await agent.waitFor(() => agent.audioFrames === 50, "frames forwarded");
  agent.userStartedSpeaking();
  await phone.waitFor(() => phone.clears === 1, "clear");
  send(30);
  await agent.waitFor(() => agent.audioFrames === 80, "frames forwarded");
  phone.hangUp();
  await running.service.calls.waitUntilEmpty(5_000);

  const recording = await eventually(
    async () => (await json(await running.authed(`/calls/${sid}`))).call.recording,
    "the recording on the record",
  );
  expect(recording).toEqual({ file: `${sid}.wav`, duration_ms: 1600, bytes: 44 + 80 * 160 * 2 });

  const response = await running.authed(`/calls/${sid}/recording`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("audio/wav");
  expect(response.headers.get("accept-ranges")).toBe("bytes");
  const wav = Buffer.from(await response.arrayBuffer());
  expect(wav.length).toBe(recording.bytes);
  const { left, right } = channels(wav);
  // Two seconds of samples? No: the call's duration, 80 frames of 20 ms, within 100 ms.
  expect(Math.abs(left.length / 8 - 1600)).toBeLessThanOrEqual(100);
  expect(left).toEqual(Buffer.concat(sent));
  // The greeting and the answer were heard up to the barge-in; nothing after the clear.
  expect(right.subarray(0, 800).some((byte) => byte !== 0xff)).toBe(true);
  const afterClear = right.subarray(50 * 160);
  expect(afterClear.every((byte) => byte === 0xff)).toBe(true);

  // Ranges, for seeking.
  const head = await running.authed(`/calls/${sid}/recording`, {
    headers: { range: "bytes=0-43" },
  });
  expect(head.status).toBe(206);
  expect(head.headers.get("content-range")).toBe(`bytes 0-43/${wav.length}`);
  expect(Buffer.from(await head.arrayBuffer())).toEqual(wav.subarray(0, 44));
  const tail = await running.authed(`/calls/${sid}/recording`, {
    headers: { range: "bytes=-100" },
  });
  expect(tail.status).toBe(206);
  expect(Buffer.from(await tail.arrayBuffer())).toEqual(wav.subarray(wav.length - 100));
  const open = await running.authed(`/calls/${sid}/recording`, {
    headers: { range: `bytes=${wav.length - 10}-` },
  });
  expect(Buffer.from(await open.arrayBuffer())).toEqual(wav.subarray(wav.length - 10));
  const beyond = await running.authed(`/calls/${sid}/recording`, {
    headers: { range: `bytes=${wav.length}-` },
  });
  expect(beyond.status).toBe(416);
  expect(beyond.headers.get("content-range")).toBe(`bytes */${wav.length}`);
  expect((await json(beyond)).code).toBe("RANGE_NOT_SATISFIABLE");
  // Not one valid range (backwards, several): ignored, the whole file (RFC 9110).
  for (const range of ["bytes=5-3", "bytes=0-1,4-5", "bytes=x-y"]) {
    const ignored = await running.authed(`/calls/${sid}/recording`, { headers: { range } });
    expect(ignored.status).toBe(200);
    expect((await ignored.arrayBuffer()).byteLength).toBe(wav.length);
  }

  // The secret guards it like the records.
  expect((await fetch(`${running.service.url}/calls/${sid}/recording`)).status).toBe(401);
  expect((await running.authed("/calls/CA0000/recording")).status).toBe(404);

  // Retention: a file past RECORDING_RETENTION_DAYS is deleted, the record keeps a note.
  expect(await running.service.expireRecordings()).toEqual([]);
  const old = new Date(Date.now() - 31 * 86_400_000);
  await utimes(join(dir, `${sid}.wav`), old, old);
  expect(await running.service.expireRecordings()).toEqual([sid]);
  expect(await Bun.file(join(dir, `${sid}.wav`)).exists()).toBe(false);
  const kept = (await json(await running.authed(`/calls/${sid}`))).call.recording;
  expect(kept).toMatchObject({ file: `${sid}.wav`, duration_ms: 1600 });
  expect(typeof kept.deleted_at).toBe("string");
  expect((await running.authed(`/calls/${sid}/recording`)).status).toBe(404);
});

test("recording needs a disclosure: start-up refuses RECORDING=local without INBOUND_DISCLOSURE", () => {
  expect(configError({ RECORDING: "local" }).problems).toEqual([
    'INBOUND_DISCLOSURE: required with RECORDING=local, so that inbound callers hear that the call is recorded (e.g. "This call may be recorded.")',
  ]);
});
