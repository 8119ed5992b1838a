/** The recording writer on its own: channels, alignment, barge-in, append after a transfer, repair, expiry. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Recordings, wavHeader } from "../../src/call/recording.ts";
import { createLogger } from "../../src/log.ts";
import type { RecordingInfo } from "../../src/store/calls.ts";
import { eventually } from "../helpers/eventually.ts";

const logger = createLogger({ level: "error", write: () => {} });
let dir: string;
let recordings: Recordings;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "recordings-"));
  recordings = new Recordings(join(dir, "nested", "recordings"), logger);
  await recordings.prepare();
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** A recording of `sid`; `close` resolves with what it reported to the record. */
function start(sid: string, maxMs = 600_000) {
  let reported: RecordingInfo | undefined;
  const recording = recordings.open(sid, {
    logger,
    maxMs,
    recorded: async (info) => {
      reported = info;
    },
  });
  if (!recording) throw new Error(`no recording for ${sid}`);
  return Object.assign(recording, {
    finished: async () => {
      await recording.close();
      return reported;
    },
  });
}

/** A 20 ms caller frame whose bytes say which frame it is. */
const frame = (n: number) => new Uint8Array(160).fill(n % 200);

/** The two channels of a 2-channel 8-bit WAV, checked to be one. */
async function channels(file: string) {
  const wav = await readFile(join(recordings.dir, file));
  expect(wav.toString("ascii", 0, 4)).toBe("RIFF");
  expect(wav.readUInt16LE(20)).toBe(7);
  expect(wav.readUInt16LE(22)).toBe(2);
  expect(wav.readUInt32LE(24)).toBe(8000);
  const size = wav.readUInt32LE(40);
  expect(size).toBe(wav.length - 44);
  expect(wav.readUInt32LE(4)).toBe(36 + size);
  const data = wav.subarray(44);
  const left = Buffer.alloc(size / 2);
  const right = Buffer.alloc(size / 2);
  for (let i = 0; i < size / 2; i++) {
    left[i] = data[i * 2] as number;
    right[i] = data[i * 2 + 1] as number;
  }
  return { left, right };
}

test("the directory is private to the service", async () => {
  expect((await stat(recordings.dir)).mode & 0o777).toBe(0o700);
});

test("left the caller byte for byte, right the agent where the phone played it; a clear takes back the unplayed", async () => {
  const recording = start("CA01");
  const agentTurn = new Uint8Array(800).fill(0x11);
  recording.agent(agentTurn);
  // 1 s of caller audio: the greeting (100 ms) plays from the start.
  for (let n = 0; n < 50; n++) recording.caller(frame(n));
  // 3 s of agent audio at 1 s, of which 0.5 s is played before the caller barges in.
  recording.agent(new Uint8Array(24_000).fill(0x22));
  for (let n = 50; n < 75; n++) recording.caller(frame(n));
  recording.cleared();
  for (let n = 75; n < 100; n++) recording.caller(frame(n));
  // Sent at the very end, never heard.
  recording.agent(new Uint8Array(8000).fill(0x33));
  const info = await recording.finished();
  expect(info).toEqual({ file: "CA01.wav", duration_ms: 2000, bytes: 44 + 32_000 });

  const { left, right } = await channels("CA01.wav");
  expect(left).toEqual(Buffer.concat(Array.from({ length: 100 }, (_, n) => frame(n))));
  expect(right.subarray(0, 800)).toEqual(Buffer.alloc(800, 0x11));
  expect(right.subarray(800, 8000)).toEqual(Buffer.alloc(7200, 0xff));
  expect(right.subarray(8000, 12_000)).toEqual(Buffer.alloc(4000, 0x22));
  expect(right.subarray(12_000)).toEqual(Buffer.alloc(4000, 0xff));
});

test("agent audio sent in a burst is laid end to end, as the phone plays it", async () => {
  const recording = start("CA02");
  for (let chunk = 0; chunk < 4; chunk++) recording.agent(new Uint8Array(400).fill(chunk + 1));
  for (let n = 0; n < 20; n++) recording.caller(frame(n));
  await recording.finished();
  const { right } = await channels("CA02.wav");
  for (let chunk = 0; chunk < 4; chunk++)
    expect(right.subarray(chunk * 400, chunk * 400 + 400)).toEqual(Buffer.alloc(400, chunk + 1));
  expect(right.subarray(1600)).toEqual(Buffer.alloc(1600, 0xff));
});

test("while it grows the header says 'size unknown'; the stream after a transfer appends", async () => {
  const first = start("CA03");
  for (let n = 0; n < 30; n++) first.caller(frame(n));
  // The first 500 ms are written while the call goes on, under a header a player reads to the end.
  const path = join(recordings.dir, "CA03.wav");
  await eventually(
    async () => (await stat(path).catch(() => undefined))?.size === 44 + 4000 * 2,
    "the first write",
  );
  expect(Buffer.from(await Bun.file(path).arrayBuffer()).readUInt32LE(40)).toBe(0xffffffff);
  await first.finished();
  const second = start("CA03");
  for (let n = 30; n < 40; n++) second.caller(frame(n));
  const info = await second.finished();
  expect(info).toEqual({ file: "CA03.wav", duration_ms: 800, bytes: 44 + 12_800 });
  expect((await stat(path)).mode & 0o777).toBe(0o600);
  const { left } = await channels("CA03.wav");
  expect(left).toEqual(Buffer.concat(Array.from({ length: 40 }, (_, n) => frame(n))));
});

test("a file a crash left growing is repaired at start-up once nothing writes it", async () => {
  const path = join(recordings.dir, "CA04.wav");
  await writeFile(path, Buffer.concat([wavHeader(undefined), Buffer.alloc(3201, 0x7f)]));
  expect(await recordings.repair(Date.now())).toEqual([]);
  const old = new Date(Date.now() - 120_000);
  await utimes(path, old, old);
  expect(await recordings.repair(Date.now())).toEqual([
    { callSid: "CA04", info: { file: "CA04.wav", duration_ms: 200, bytes: 44 + 3200 } },
  ]);
  const wav = await readFile(path);
  expect(wav.readUInt32LE(40)).toBe(3200);
  // Already whole: left alone.
  expect(await recordings.repair(Date.now())).toEqual([]);
});

test("expiry deletes recordings last written before the cut-off, and only call recordings", async () => {
  const old = new Date(Date.now() - 3 * 86_400_000);
  for (const name of ["CA05.wav", "CA06.wav", "notes.txt"]) {
    await writeFile(join(recordings.dir, name), "x");
    if (name !== "CA06.wav") await utimes(join(recordings.dir, name), old, old);
  }
  expect(await recordings.deleteOlderThan(Date.now() - 86_400_000)).toEqual(["CA05"]);
  expect(await Bun.file(join(recordings.dir, "CA06.wav")).exists()).toBe(true);
  expect(await Bun.file(join(recordings.dir, "notes.txt")).exists()).toBe(true);
});

describe("a recording that cannot be written", () => {
  test("fails alone: the call goes on, it takes nothing more and claims nothing", async () => {
    const broken = new Recordings(join(dir, "missing", "deeper"), logger);
    let reported = false;
    const recording = broken.open("CA07", {
      logger,
      maxMs: 600_000,
      recorded: async () => {
        reported = true;
      },
    });
    for (let n = 0; n < 300; n++) recording?.caller(frame(n));
    await recording?.close();
    expect(reported).toBe(false);
  });

  test("a planted symbolic link is not followed", async () => {
    const target = join(dir, "victim.wav");
    await writeFile(target, "precious");
    await symlink(target, join(recordings.dir, "CA08.wav"));
    const recording = start("CA08");
    for (let n = 0; n < 30; n++) recording.caller(frame(n));
    expect(await recording.finished()).toBeUndefined();
    expect(await readFile(target, "utf8")).toBe("precious");
  });
});

test("only a SID Twilio could have issued names a file", () => {
  const options = { logger, maxMs: 1000, recorded: async () => {} };
  for (const sid of ["../escaped", "CA1", "CA01/../../x", "dev-call"])
    expect(recordings.open(sid, options)).toBeUndefined();
});

test("before the disclosure only time is kept; past the limit nothing more", async () => {
  const recording = start("CA09", 500);
  recording.silence(160);
  for (let n = 1; n < 40; n++) recording.caller(frame(n));
  const info = await recording.finished();
  expect(info?.duration_ms).toBe(500);
  const { left } = await channels("CA09.wav");
  expect(left.subarray(0, 160)).toEqual(Buffer.alloc(160, 0xff));
  expect(left.subarray(160, 320)).toEqual(Buffer.from(frame(1)));
});
