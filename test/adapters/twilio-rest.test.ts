/** The real twilio SDK, re-based onto the fake Twilio REST server. */
import { afterAll, expect, test } from "bun:test";
import { TwilioApiError, TwilioRest } from "../../src/adapters/twilio-rest.ts";
import { FakeTwilioRest } from "../fakes/twilio-rest-server.ts";

const SID = `AC${"a".repeat(32)}`;
const fake = FakeTwilioRest.start(SID, "the-auth-token");
afterAll(() => fake.stop());

const rest = new TwilioRest({ accountSid: SID, authToken: "the-auth-token", apiUrl: fake.url });
const call = {
  to: "+15557654321",
  from: "+15550001111",
  twiml: '<Response><Connect><Stream url="wss://voice.example.com/twilio"/></Connect></Response>',
  statusCallback: "https://voice.example.com/call-status",
  asyncAmdStatusCallback: "https://voice.example.com/amd-result",
  machineDetection: {
    timeoutS: 45,
    speechThresholdMs: 3000,
    speechEndThresholdMs: 1500,
    silenceTimeoutMs: 4000,
  },
};

test("calls.create sends what Twilio expects, with Basic auth, the AMD tuning and repeated status events", async () => {
  const placed = await rest.placeCall(call);
  expect(placed.sid).toMatch(/^CA[0-9a-f]{32}$/);
  expect(placed.status).toBe("queued");
  const request = fake.requests.at(-1);
  expect(request).toMatchObject({
    method: "POST",
    path: `/2010-04-01/Accounts/${SID}/Calls.json`,
    authorized: true,
  });
  expect(request?.form).toMatchObject({
    To: call.to,
    From: call.from,
    Twiml: call.twiml,
    MachineDetection: "DetectMessageEnd",
    MachineDetectionTimeout: "45",
    MachineDetectionSpeechThreshold: "3000",
    MachineDetectionSpeechEndThreshold: "1500",
    MachineDetectionSilenceTimeout: "4000",
    AsyncAmd: "true",
    AsyncAmdStatusCallback: call.asyncAmdStatusCallback,
    AsyncAmdStatusCallbackMethod: "POST",
    StatusCallback: call.statusCallback,
    StatusCallbackEvent: ["initiated", "ringing", "answered", "completed"],
    StatusCallbackMethod: "POST",
  });
});

test("hang-up updates the call to completed", async () => {
  const placed = await rest.placeCall(call);
  await rest.hangUp(placed.sid);
  expect(fake.requests.at(-1)).toMatchObject({
    path: `/2010-04-01/Accounts/${SID}/Calls/${placed.sid}.json`,
    form: { Status: "completed" },
  });
  expect(fake.calls.get(placed.sid)?.status).toBe("completed");
  await expect(rest.hangUp(placed.sid)).resolves.toBeUndefined();
});

test("Twilio's refusals come back with its message and code", async () => {
  fake.failNextCreate = {
    status: 400,
    code: 21215,
    message: "Account not authorized to call +15557654321.",
  };
  const error = await rest.placeCall(call).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(TwilioApiError);
  expect(error).toMatchObject({
    status: 502,
    twilioCode: 21215,
    message: "Twilio refused to place the call: Account not authorized to call +15557654321.",
  });
});

test("wrong credentials are Twilio's 401, reported as such", async () => {
  const wrong = new TwilioRest({ accountSid: SID, authToken: "nope", apiUrl: fake.url });
  await expect(wrong.placeCall(call)).rejects.toThrow(
    "Twilio refused to place the call: Authenticate",
  );
});

test("an unreachable API is a 502 that says so", async () => {
  const gone = new TwilioRest({ accountSid: SID, authToken: "x", apiUrl: "http://127.0.0.1:9" });
  await expect(gone.placeCall(call)).rejects.toThrow("Could not reach Twilio to place the call");
});

test("numbers list, search, purchase and webhook update through the SDK", async () => {
  const existing = fake.addNumber("+15550009999");
  expect((await rest.listNumbers()).map((number) => number.phoneNumber)).toContain("+15550009999");
  const found = await rest.searchNumbers("US", 415);
  expect(found.map((number) => number.phoneNumber)).toEqual(["+14155550101", "+14155550102"]);
  const bought = await rest.buyNumber("+14155550101");
  expect(bought.phoneNumber).toBe("+14155550101");
  const configured = await rest.configureNumber(existing.sid, {
    voiceUrl: "https://voice.example.com/incoming-call",
    voiceMethod: "POST",
    statusCallback: "https://voice.example.com/call-status",
    statusCallbackMethod: "POST",
  });
  expect(configured).toMatchObject({
    voiceUrl: "https://voice.example.com/incoming-call",
    statusCallback: "https://voice.example.com/call-status",
  });
  fake.failNextPurchase = {
    status: 400,
    code: 21631,
    message: "Phone Number Requires an Address but the 'AddressSid' parameter was empty.",
  };
  await expect(rest.buyNumber("+14155550102")).rejects.toThrow("Requires an Address");
});
