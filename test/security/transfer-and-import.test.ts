/**
 * Who can reach the new entry points, and with what: the transfer webhooks answer only Twilio's
 * signature over their own URL (a whisper signed for another call's URL is refused), a forged or
 * replayed result issues no stream token, and the leads import reads nothing without the secret.
 */
import { afterEach, expect, test } from "bun:test";
import twilio from "twilio";
import { json } from "../helpers/http.ts";
import { AUTH_TOKEN, type SignedService, startSignedService } from "../helpers/signed-service.ts";

let running: SignedService;
afterEach(() => running.stop());

const CALL = "CA5ec0000000000000000000000000001";
const OTHER = "CA5ec0000000000000000000000000002";

async function withPendingTransfer() {
  running = await startSignedService({ TRANSFER_NUMBER: "+15551230000" });
  await running.incoming(CALL);
  await running.service.store.calls.update(CALL, {
    transfer: {
      requested_at: new Date().toISOString(),
      to: "+15551230000",
      reason: "asked",
      summary: "Private summary of what the caller said.",
      result: "pending",
    },
  });
}

test("unsigned or wrongly signed transfer webhooks: 403, nothing learnt, no token issued", async () => {
  await withPendingTransfer();
  const post = (path: string, params: Record<string, string>, signature?: string) =>
    fetch(`${running.service.url}${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        ...(signature ? { "x-twilio-signature": signature } : {}),
      },
      body: new URLSearchParams(params).toString(),
    });
  const result = { CallSid: CALL, DialCallStatus: "no-answer", CallStatus: "in-progress" };
  expect((await post("/transfer-result", result)).status).toBe(403);
  expect((await post(`/transfer-whisper?call=${CALL}`, { CallSid: OTHER })).status).toBe(403);
  // Signed for the whisper of another call: the query is part of what is signed.
  const forOther = twilio.getExpectedTwilioSignature(
    AUTH_TOKEN,
    `${running.publicUrl}/transfer-whisper?call=${OTHER}`,
    { CallSid: OTHER },
  );
  const swapped = await post(`/transfer-whisper?call=${CALL}`, { CallSid: OTHER }, forOther);
  expect(swapped.status).toBe(403);
  expect(await swapped.text()).not.toContain("Private summary");
  expect((await running.service.store.calls.get(CALL))?.transfer?.result).toBe("pending");
});

test("a signed result for a call with no transfer hangs up and issues nothing; a replay is refused", async () => {
  await withPendingTransfer();
  const noTransfer = await running.signed("/transfer-result", {
    CallSid: OTHER,
    DialCallStatus: "no-answer",
    CallStatus: "in-progress",
  });
  expect(await noTransfer.text()).toContain("<Hangup/>");
  expect(await running.service.coordination.tokenPending(OTHER)).toBe(false);
  const first = await running.signed("/transfer-result", {
    CallSid: CALL,
    DialCallStatus: "busy",
    CallStatus: "in-progress",
  });
  expect(await first.text()).toContain("<Stream");
  const replay = await running.signed("/transfer-result", {
    CallSid: CALL,
    DialCallStatus: "no-answer",
    CallStatus: "in-progress",
  });
  expect(replay.status).toBe(409);
  expect((await json(replay)).code).toBe("TRANSFER_ALREADY_REPORTED");
});

test("POST /leads/import without the secret: 401 before the body is read, nothing stored", async () => {
  running = await startSignedService();
  const response = await fetch(`${running.service.url}/leads/import`, {
    method: "POST",
    headers: { "content-type": "text/csv" },
    body: "first_name,last_name\nMallory,Intruder\n",
  });
  expect(response.status).toBe(401);
  expect(await running.service.store.leads.list(10)).toEqual([]);
});
