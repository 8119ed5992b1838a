import { expect, test } from "bun:test";
import { PlaybackTracker } from "../../src/call/playback.ts";

test("marks are numbered and echoes move the played position in order", () => {
  const playback = new PlaybackTracker();
  expect(playback.idle).toBe(true);
  expect(playback.sent(800)).toBe("a1");
  expect(playback.sent(400)).toBe("a2");
  expect(playback.queuedMs).toBe(150);
  expect(playback.pendingMarks).toBe(2);
  expect(playback.echoed("a1")).toBe("played");
  expect(playback.queuedMs).toBe(50);
  expect(playback.echoed("a2")).toBe("played");
  expect(playback.idle).toBe(true);
});

test("an echo implies every earlier mark was heard too", () => {
  const playback = new PlaybackTracker();
  playback.sent(80);
  playback.sent(80);
  playback.sent(80);
  expect(playback.echoed("a2")).toBe("played");
  expect(playback.pendingMarks).toBe(1);
  expect(playback.queuedMs).toBe(10);
});

test("clear drops what is pending; its late echoes say dropped", () => {
  const playback = new PlaybackTracker();
  playback.sent(160);
  playback.sent(160);
  expect(playback.clear()).toBe(2);
  expect(playback.idle).toBe(true);
  expect(playback.queuedMs).toBe(0);
  expect(playback.echoed("a1")).toBe("dropped");
  expect(playback.echoed("a2")).toBe("dropped");
  expect(playback.sent(160)).toBe("a3");
  expect(playback.echoed("a3")).toBe("played");
});

test("names it never sent are unknown", () => {
  const playback = new PlaybackTracker();
  playback.sent(160);
  for (const name of ["a0", "a2", "b1", "", "a1.5", "aNaN"])
    expect(playback.echoed(name)).toBe("unknown");
  expect(playback.pendingMarks).toBe(1);
});
