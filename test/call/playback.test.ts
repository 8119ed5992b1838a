import { expect, test } from "bun:test";
import { PlaybackTracker } from "../../src/call/playback.ts";

test("a mark is due every 100 ms of audio, and flush marks the rest", () => {
  const playback = new PlaybackTracker(100);
  expect(playback.sent(400)).toBeUndefined();
  expect(playback.idle).toBe(false);
  expect(playback.sent(400)).toBe("a1");
  expect(playback.sent(160)).toBeUndefined();
  expect(playback.flush()).toBe("a2");
  expect(playback.flush()).toBeUndefined();
  expect(playback.pendingMarks).toBe(2);
  expect(playback.queuedMs).toBe(120);
});

test("echoes move the played position in order; an echo implies the earlier marks", () => {
  const playback = new PlaybackTracker(10);
  playback.sent(80);
  playback.sent(80);
  playback.sent(160);
  expect(playback.queuedMs).toBe(40);
  expect(playback.echoed("a2")).toBe("played");
  expect(playback.pendingMarks).toBe(1);
  expect(playback.queuedMs).toBe(20);
  expect(playback.echoed("a3")).toBe("played");
  expect(playback.idle).toBe(true);
});

test("clear drops what is queued, marked or not; late echoes say dropped", () => {
  const playback = new PlaybackTracker(20);
  playback.sent(160);
  playback.sent(80);
  expect(playback.clear()).toBe(1);
  expect(playback.idle).toBe(true);
  expect(playback.queuedMs).toBe(0);
  expect(playback.echoed("a1")).toBe("dropped");
  expect(playback.sent(160)).toBe("a2");
  expect(playback.echoed("a2")).toBe("played");
});

test("names it never sent are unknown", () => {
  const playback = new PlaybackTracker(20);
  playback.sent(160);
  for (const name of ["a0", "a2", "b1", "", "a1.5", "aNaN"])
    expect(playback.echoed(name)).toBe("unknown");
  expect(playback.pendingMarks).toBe(1);
});
