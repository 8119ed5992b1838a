import { describe, expect, test } from "bun:test";
import {
  decodeTwilio,
  MAX_MEDIA_PAYLOAD_CHARS,
  TwilioEncoder,
  type TwilioInbound,
} from "../../src/protocol/twilio-media.ts";

const start = {
  event: "start",
  sequenceNumber: "1",
  streamSid: "MZ123",
  start: {
    accountSid: "AC123",
    streamSid: "MZ123",
    callSid: "CA123",
    tracks: ["inbound"],
    mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
    customParameters: { token: "abc", scenario: "dental-receptionist" },
  },
};

describe("decodeTwilio", () => {
  test("connected", () => {
    expect(decodeTwilio('{"event":"connected","protocol":"Call","version":"1.0.0"}')).toEqual({
      event: "connected",
    });
  });

  test("start, from a string or an already-parsed object", () => {
    const expected: TwilioInbound = {
      event: "start",
      start: {
        streamSid: "MZ123",
        callSid: "CA123",
        accountSid: "AC123",
        encoding: "audio/x-mulaw",
        sampleRate: 8000,
        customParameters: { token: "abc", scenario: "dental-receptionist" },
      },
    };
    expect(decodeTwilio(JSON.stringify(start))).toEqual(expected);
    expect(decodeTwilio(start)).toEqual(expected);
  });

  test("start without custom parameters gets an empty map", () => {
    const { customParameters: _, ...rest } = start.start;
    const decoded = decodeTwilio({ ...start, start: rest });
    expect(decoded.event === "start" && decoded.start.customParameters).toEqual({});
  });

  test("media decodes base64 to the raw bytes", () => {
    const audio = Buffer.from([0xff, 0x7f, 0x00, 0x80, 0x01]);
    const decoded = decodeTwilio({
      event: "media",
      sequenceNumber: "4",
      streamSid: "MZ123",
      media: { track: "inbound", chunk: "2", timestamp: "5", payload: audio.toString("base64") },
    });
    expect(decoded.event).toBe("media");
    expect(decoded.event === "media" && decoded.audio.equals(audio)).toBe(true);
  });

  test("mark, dtmf and stop", () => {
    expect(
      decodeTwilio({ event: "mark", sequenceNumber: "4", streamSid: "MZ1", mark: { name: "a7" } }),
    ).toEqual({
      event: "mark",
      name: "a7",
    });
    expect(
      decodeTwilio({
        event: "dtmf",
        streamSid: "MZ1",
        sequenceNumber: "5",
        dtmf: { track: "inbound_track", digit: "1" },
      }),
    ).toEqual({
      event: "dtmf",
      digit: "1",
    });
    expect(
      decodeTwilio({
        event: "stop",
        sequenceNumber: "5",
        streamSid: "MZ1",
        stop: { accountSid: "AC1", callSid: "CA1" },
      }),
    ).toEqual({
      event: "stop",
    });
  });

  test.each([
    ["bad JSON", "{nope", "not JSON"],
    ["a JSON array", "[1,2]", "no event"],
    ["a number", 42, "not a JSON object"],
    ["null", null, "not a JSON object"],
    ["no event", { streamSid: "MZ1" }, "no event"],
    ["an unknown event", { event: "party", streamSid: "MZ1" }, "unknown event party"],
    ["media without payload", { event: "media", streamSid: "MZ1", media: {} }, "malformed media"],
    [
      "media with bad base64",
      { event: "media", streamSid: "MZ1", media: { payload: "!!!notbase64" } },
      "not base64",
    ],
    [
      "media with a truncated payload",
      { event: "media", streamSid: "MZ1", media: { payload: "abcde" } },
      "not base64",
    ],
    [
      "oversized media",
      {
        event: "media",
        streamSid: "MZ1",
        media: { payload: "A".repeat(MAX_MEDIA_PAYLOAD_CHARS + 4) },
      },
      "malformed media",
    ],
    [
      "start missing callSid",
      { ...start, start: { ...start.start, callSid: undefined } },
      "malformed start",
    ],
    ["mark without a name", { event: "mark", streamSid: "MZ1", mark: {} }, "malformed mark"],
  ])("%s is ignored, never thrown", (_, input, reason) => {
    const decoded = decodeTwilio(input);
    expect(decoded.event).toBe("ignored");
    expect(decoded.event === "ignored" && decoded.reason).toContain(reason);
  });
});

describe("TwilioEncoder", () => {
  const encoder = new TwilioEncoder("MZ123");

  test("media carries base64 audio in Twilio's shape", () => {
    const audio = new Uint8Array([1, 2, 3, 250]);
    expect(JSON.parse(encoder.media(audio))).toEqual({
      event: "media",
      streamSid: "MZ123",
      media: { payload: Buffer.from(audio).toString("base64") },
    });
  });

  test("media encodes only the view it is given", () => {
    const backing = Buffer.from([9, 9, 1, 2, 9]);
    const view = backing.subarray(2, 4);
    expect(JSON.parse(encoder.media(view)).media.payload).toBe(
      Buffer.from([1, 2]).toString("base64"),
    );
  });

  test("mark and clear", () => {
    expect(JSON.parse(encoder.mark("a1"))).toEqual({
      event: "mark",
      streamSid: "MZ123",
      mark: { name: "a1" },
    });
    expect(JSON.parse(encoder.clear())).toEqual({ event: "clear", streamSid: "MZ123" });
  });

  test("a stream SID with quotes is escaped, not injected", () => {
    const odd = new TwilioEncoder('MZ"1');
    expect(JSON.parse(odd.clear()).streamSid).toBe('MZ"1');
    expect(JSON.parse(odd.mark('x"y')).mark.name).toBe('x"y');
  });
});
