/**
 * Fidelity: Twilio's `<Stream statusCallback>`. Every `<Connect><Stream>` the service issues asks
 * Twilio to POST stream-started, stream-stopped and stream-error to `/stream-status`; a stream-error is
 * the only report of a stream Twilio could not open, so a call waiting for that stream is ended and
 * its capacity slot freed at once instead of when its token expires. The route is a Twilio webhook
 * like the others: signed, 16 KB, every field validated.
 */
import { afterEach, describe, expect, test } from "bun:test";
import {
  openStream,
  postStreamStatus,
  readTwiml,
  type StreamEvent,
} from "../fakes/twilio-webhooks.ts";
import { eventually } from "../helpers/eventually.ts";
import { json } from "../helpers/http.ts";
import { type OutboundHarness, startOutboundHarness } from "../helpers/outbound-harness.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  type SignedService,
  startSignedService,
} from "../helpers/signed-service.ts";

/** Twilio's wording for a stream whose WebSocket could not be opened (error 31920's family). */
const HANDSHAKE_ERROR = "Stream - WebSocket - Handshake Error";
const STREAM_SID = `MZ${"a".repeat(32)}`;

let running: SignedService | undefined;
let outbound: OutboundHarness | undefined;
afterEach(async () => {
  await running?.stop();
  await outbound?.stop();
  running = undefined;
  outbound = undefined;
});

async function start(env: Record<string, string> = {}) {
  running = await startSignedService(env);
  return running;
}

/** Twilio's report on the stream of the call `xml` answered, as Twilio posts it. */
function report(
  xml: string,
  callSid: string,
  event: StreamEvent,
  extra: { error?: string; signature?: string | null } = {},
) {
  return postStreamStatus({
    xml,
    callSid,
    accountSid: ACCOUNT_SID,
    authToken: AUTH_TOKEN,
    event,
    streamSid: STREAM_SID,
    ...extra,
  });
}

async function timeline(service: SignedService["service"], callSid: string) {
  return (await service.store.calls.events(callSid)).map(({ kind, data }) => ({ kind, data }));
}

describe("the stream TwiML", () => {
  test("inbound and outbound streams both report to POST /stream-status", async () => {
    const { incoming, publicUrl } = await start();
    const inbound = readTwiml(await (await incoming("CA100")).text());
    expect(inbound.stream).toMatchObject({
      url: `${publicUrl.replace("http", "ws")}/twilio`,
      statusCallback: `${publicUrl}/stream-status`,
      statusCallbackMethod: "POST",
    });

    outbound = await startOutboundHarness();
    const placed = await json(await outbound.makeCall({ to: "+15557654321" }));
    const dialled = readTwiml(outbound.twilio.calls.get(placed.call_sid)?.twiml ?? "");
    expect(dialled.stream).toMatchObject({
      statusCallback: `${outbound.service.url}/stream-status`,
      statusCallbackMethod: "POST",
    });
  });
});

describe("a stream Twilio could not open", () => {
  test("inbound, waiting for its stream: the record ends with Twilio's error and the slot is freed", async () => {
    const { incoming, service } = await start({ MAX_CONCURRENT_CALLS: "1" });
    const xml = await (await incoming("CA200")).text();
    expect(await service.coordination.load()).toBe(1);
    // The slot is held: a second caller would be turned away now.
    expect(readTwiml(await (await incoming("CA201")).text()).hangup).toBe(true);

    const response = await report(xml, "CA200", "stream-error", { error: HANDSHAKE_ERROR });
    expect(response.status).toBe(204);
    expect(await service.store.calls.get("CA200")).toMatchObject({
      status: "completed",
      end_reason: "stream_failed",
    });
    expect((await service.store.calls.get("CA200"))?.ended_at).not.toBeNull();
    expect(await timeline(service, "CA200")).toEqual([
      {
        kind: "stream",
        data: { event: "stream-error", stream_sid: STREAM_SID, error: HANDSHAKE_ERROR },
      },
      { kind: "error", data: { source: "twilio", message: HANDSHAKE_ERROR } },
      { kind: "ended", data: { reason: "stream_failed", detail: HANDSHAKE_ERROR } },
    ]);

    // The slot is free at once, not when the token would have expired.
    expect(await service.coordination.load()).toBe(0);
    expect(readTwiml(await (await incoming("CA202")).text()).url).not.toBe("");
    // The token was revoked: the failed stream cannot turn up later and reopen the call.
    const late = await openStream(xml, "CA200");
    expect((await late.closed).code).toBe(1008);
    expect((await service.store.calls.get("CA200"))?.end_reason).toBe("stream_failed");
  });

  test("outbound, answered, stream never opened: the record ends and /make-call has its slot back", async () => {
    outbound = await startOutboundHarness({ MAX_CONCURRENT_CALLS: "1" });
    const { twilio, service } = outbound;
    const placed = await json(await outbound.makeCall({ to: "+15557654321" }));
    expect((await outbound.makeCall({ to: "+15557654322" })).status).toBe(429);

    expect((await twilio.failStream(placed.call_sid, HANDSHAKE_ERROR)).status).toBe(204);
    expect(await service.store.calls.get(placed.call_sid)).toMatchObject({
      status: "completed",
      end_reason: "stream_failed",
    });
    const events = await service.store.calls.events(placed.call_sid);
    expect(events.map((event) => event.kind)).toEqual(["status", "stream", "error", "ended"]);
    expect(await service.coordination.load()).toBe(0);
    expect((await outbound.makeCall({ to: "+15557654322" })).status).toBe(200);

    // Twilio's own "completed" afterwards changes nothing.
    await twilio.sendStatus(placed.call_sid, "completed", { CallDuration: "1" });
    expect((await service.store.calls.get(placed.call_sid))?.end_reason).toBe("stream_failed");
  });

  test("a stream-error for a live call is recorded; the session, not the webhook, ends the call", async () => {
    const { incoming, service, agent } = await start();
    const xml = await (await incoming("CA300")).text();
    const phone = await openStream(xml, "CA300");
    await agent.nextSession();
    expect((await report(xml, "CA300", "stream-error", { error: "Stream - Error" })).status).toBe(
      204,
    );
    expect(service.calls.get("CA300")).toBeDefined();
    expect((await service.store.calls.get("CA300"))?.ended_at).toBeNull();
    expect(await timeline(service, "CA300")).toContainEqual({
      kind: "error",
      data: { source: "twilio", message: "Stream - Error" },
    });
    phone.hangUp();
    await eventually(
      async () => (await service.store.calls.get("CA300"))?.ended_at,
      "the call's end recorded",
    );
    expect((await service.store.calls.get("CA300"))?.end_reason).toBe("caller_hung_up");
  });

  test("a stream-error without StreamError still ends the waiting call, with a reason", async () => {
    const { incoming, service } = await start();
    const xml = await (await incoming("CA310")).text();
    expect((await report(xml, "CA310", "stream-error")).status).toBe(204);
    expect(await service.store.calls.get("CA310")).toMatchObject({ end_reason: "stream_failed" });
    expect((await service.store.calls.get("CA310"))?.ended_at).not.toBeNull();
    expect(await service.coordination.load()).toBe(0);
  });
});

describe("stream-started and stream-stopped", () => {
  test("are recorded on the call's timeline and change nothing else", async () => {
    const { incoming, service, agent } = await start();
    const xml = await (await incoming("CA400")).text();
    const phone = await openStream(xml, "CA400");
    await agent.nextSession();
    expect((await report(xml, "CA400", "stream-started")).status).toBe(204);
    expect(service.calls.get("CA400")).toBeDefined();
    phone.hangUp();
    await eventually(
      async () => (await service.store.calls.get("CA400"))?.ended_at,
      "the call's end recorded",
    );
    const ended = await service.store.calls.get("CA400");
    expect((await report(xml, "CA400", "stream-stopped")).status).toBe(204);
    expect(await service.store.calls.get("CA400")).toEqual(ended);
    const streamEvents = (await timeline(service, "CA400")).filter(
      (event) => event.kind === "stream",
    );
    expect(streamEvents).toEqual([
      { kind: "stream", data: { event: "stream-started", stream_sid: STREAM_SID } },
      { kind: "stream", data: { event: "stream-stopped", stream_sid: STREAM_SID } },
    ]);
    expect(ended?.end_reason).toBe("caller_hung_up");
  });

  test("for a call the service does not know: 204, a warning, nothing recorded", async () => {
    const { incoming, service, logs } = await start();
    const xml = await (await incoming("CA500")).text();
    expect((await report(xml, "CA599", "stream-started")).status).toBe(204);
    expect(await service.store.calls.get("CA599")).toBeUndefined();
    expect(await service.store.calls.events("CA599")).toEqual([]);
    expect(
      logs.some(
        (line) => line.msg === "stream status for an unknown call" && line.callSid === "CA599",
      ),
    ).toBe(true);
  });
});

describe("POST /stream-status is a Twilio webhook like the others", () => {
  test("unsigned or wrongly signed: 403, and the waiting call is left alone", async () => {
    const { incoming, service } = await start();
    const xml = await (await incoming("CA600")).text();
    const unsigned = await report(xml, "CA600", "stream-error", {
      error: HANDSHAKE_ERROR,
      signature: null,
    });
    expect(unsigned.status).toBe(403);
    expect((await json(unsigned)).code).toBe("INVALID_SIGNATURE");
    const forged = await report(xml, "CA600", "stream-error", {
      error: HANDSHAKE_ERROR,
      signature: "bm90LXRoZS1zaWduYXR1cmU=",
    });
    expect(forged.status).toBe(403);
    expect((await service.store.calls.get("CA600"))?.ended_at).toBeNull();
    expect(await service.store.calls.events("CA600")).toEqual([]);
    expect(await service.coordination.tokenPending("CA600")).toBe(true);
  });

  test("a signed post with a bad field: 400 naming it", async () => {
    const { signed } = await start();
    const valid = {
      AccountSid: ACCOUNT_SID,
      CallSid: "CA700",
      StreamSid: STREAM_SID,
      StreamEvent: "stream-started",
      Timestamp: new Date().toISOString(),
    };
    const cases: [Record<string, string>, string][] = [
      [{ ...valid, StreamEvent: "stream-paused" }, "body.StreamEvent"],
      [{ ...valid, CallSid: "not-a-call" }, "body.CallSid"],
      [{ ...valid, StreamSid: "CA123" }, "body.StreamSid"],
      [{ ...valid, StreamError: "x".repeat(5000) }, "body.StreamError"],
    ];
    for (const [params, field] of cases) {
      const response = await signed("/stream-status", params);
      expect(response.status).toBe(400);
      expect((await json(response)).field).toBe(field);
    }
    const { StreamEvent: _, ...missing } = valid;
    const response = await signed("/stream-status", missing);
    expect(response.status).toBe(400);
    expect((await json(response)).field).toBe("body.StreamEvent");
  });

  test("a body over 16 KB: 413 before anything is read", async () => {
    const { signed } = await start();
    const response = await signed("/stream-status", {
      CallSid: "CA800",
      StreamSid: STREAM_SID,
      StreamEvent: "stream-error",
      StreamError: "x".repeat(17 * 1024),
    });
    expect(response.status).toBe(413);
    expect((await json(response)).code).toBe("PAYLOAD_TOO_LARGE");
  });
});
