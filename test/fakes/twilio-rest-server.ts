/**
 * A fake Twilio REST API and call network on loopback. Speaks the 2010-04-01 Accounts, Calls,
 * IncomingPhoneNumbers and AvailablePhoneNumbers resources as the real SDK uses them (HTTP Basic auth, form-encoded bodies with repeated keys, snake_case JSON, Twilio's
 * error shape), refuses answering-machine settings outside Twilio's documented ranges as Twilio does
 * (21234), records every request (its form fields as received), and plays Twilio's part of a call on demand: signed status
 * callbacks, the media stream opened from the call's inline TwiML, the stream's own status reports
 * (to its `<Stream statusCallback>`, including the stream-error of a stream that could not be opened),
 * and the async AMD callback, in whatever order a test asks for. Inbound calls too (`ring`: the
 * number's signed voice webhook, then the stream its TwiML names). A call redirected with `Twiml`
 * (a transfer's `<Dial>`) has its stream stopped as Twilio stops it; the test then plays the dial:
 * the whisper for the person who answers (`whisper`) and the `<Dial action>` result (`dialResult`),
 * whose `<Connect><Stream>`, if it answers one, is opened as the call's next stream. Used by tests
 * and the demo.
 */
import type { Server } from "bun";
import twilio from "twilio";
import { type Clock, systemClock } from "../../src/clock.ts";
import { Conditions } from "./conditions.ts";
import type { FakeCallOptions, FakeTwilioCall } from "./twilio-media-client.ts";
import { openStream, postStreamStatus, readTwiml, type StreamEvent } from "./twilio-webhooks.ts";

export interface RecordedRequest {
  method: string;
  path: string;
  /** Form fields; repeated keys become arrays. */
  form: Record<string, string | string[]>;
  authorized: boolean;
}

export interface FakeCall {
  sid: string;
  to: string;
  from: string;
  status: string;
  twiml: string;
  statusCallback?: string;
  asyncAmdStatusCallback?: string;
  machineDetection?: string;
  /** The AMD tuning parameters the create request carried, as sent (form values). */
  machineDetectionTuning: Partial<Record<AmdTuningParameter, string>>;
  sequence: number;
  direction: "outbound-api" | "inbound";
  /** The call's media stream now, once one is open. */
  stream?: FakeTwilioCall;
  /** The TwiML of each REST redirect (`Twiml=`), in order. */
  redirects: string[];
  /** When the create was answered, by the fake's clock (ms since the epoch). */
  createdAt: number;
  /** When a final status (completed, busy, no-answer, failed, canceled) was sent, by its clock. */
  endedAt?: number;
}

/** A `<Dial>` as Twilio reads it: its attributes and the `<Number>` it rings. */
export interface DialInstruction {
  to: string;
  callerId: string;
  timeout: string;
  action: string;
  /** `<Number url>`: the whisper run for the person who answers. */
  whisper: string;
}

/** The `<Dial>` of a TwiML document, or undefined when it has none. */
export function readDial(xml: string): DialInstruction | undefined {
  const attributes = (tag: string) =>
    Object.fromEntries(
      [
        ...(new RegExp(`<${tag}\\s([^>]*)>`).exec(xml)?.[1] ?? "").matchAll(/([\w]+)="([^"]*)"/g),
      ].map((match) => [match[1] ?? "", decodeXml(match[2] ?? "")]),
    );
  if (!xml.includes("<Dial")) return undefined;
  const dial = attributes("Dial");
  const number = attributes("Number");
  return {
    to: /<Number[^>]*>([^<]*)<\/Number>/.exec(xml)?.[1] ?? "",
    callerId: dial.callerId ?? "",
    timeout: dial.timeout ?? "30",
    action: dial.action ?? "",
    whisper: number.url ?? "",
  };
}

const decodeXml = (value: string) => value.replaceAll("&amp;", "&").replaceAll("&quot;", '"');

/**
 * Twilio's AMD tuning parameters and their documented ranges (Calls API; error 21234 "Invalid
 * Machine Detection configuration value"). MachineDetectionTimeout is in seconds, the rest in ms.
 */
export const AMD_TUNING_RANGES = {
  MachineDetectionTimeout: [3, 59],
  MachineDetectionSpeechThreshold: [1000, 6000],
  MachineDetectionSpeechEndThreshold: [500, 5000],
  MachineDetectionSilenceTimeout: [2000, 10000],
} as const;
export type AmdTuningParameter = keyof typeof AMD_TUNING_RANGES;

export interface FakeNumber {
  sid: string;
  phone_number: string;
  friendly_name: string;
  voice_url: string;
  voice_method: string;
  status_callback: string;
  status_callback_method: string;
}

export interface TwilioErrorReply {
  status: number;
  code: number;
  message: string;
}

function twilioError({ status, code, message }: TwilioErrorReply): Response {
  return Response.json(
    { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
    { status },
  );
}

function formOf(body: string): Record<string, string | string[]> {
  const form: Record<string, string | string[]> = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const existing = form[key];
    if (existing === undefined) form[key] = value;
    else form[key] = Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return form;
}

const FINAL_STATUSES = ["completed", "busy", "failed", "no-answer", "canceled"];

export class FakeTwilioRest {
  readonly requests: RecordedRequest[] = [];
  /** The time on the call log (`createdAt`, `endedAt`, `date_created`): a test's clock may replace it. */
  clock: Clock = systemClock;
  readonly calls = new Map<string, FakeCall>();
  /** Replies the next create with this error instead of placing the call. */
  failNextCreate: TwilioErrorReply | undefined;
  /** Replies the next redirect (a call update with `Twiml`) with this error. */
  failNextRedirect: TwilioErrorReply | undefined;
  /** Replies the next number purchase with this error (e.g. an address requirement). */
  failNextPurchase: TwilioErrorReply | undefined;
  /** The account's phone numbers. */
  readonly numbers = new Map<string, FakeNumber>();
  /** Numbers for sale: country → numbers (area code = digits 2–4 of a +1 number). */
  readonly forSale = new Map<string, string[]>([
    ["US", ["+14155550101", "+14155550102", "+12125550103"]],
  ]);
  readonly #server: Server<undefined>;
  readonly #conditions = new Conditions("fake Twilio REST");

  private constructor(
    readonly accountSid: string,
    readonly authToken: string,
  ) {
    this.#server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request) => this.#handle(request),
    });
  }

  static start(accountSid: string, authToken: string): FakeTwilioRest {
    return new FakeTwilioRest(accountSid, authToken);
  }

  /** The value for TWILIO_API_URL. */
  get url(): string {
    return `http://127.0.0.1:${this.#server.port}`;
  }

  stop(): void {
    this.#server.stop(true);
  }

  /** Resolves with the first recorded request matching `predicate`, waiting for it if need be. */
  async waitForRequest(
    predicate: (request: RecordedRequest) => boolean,
    what = "request",
  ): Promise<RecordedRequest> {
    await this.#conditions.waitFor(() => this.requests.some(predicate), what, 5_000);
    return this.requests.find(predicate) as RecordedRequest;
  }

  /** Adds a number to the account, as if bought earlier, with its current webhook. */
  addNumber(phoneNumber: string, voiceUrl = "https://demo.twilio.com/welcome/voice/"): FakeNumber {
    const number: FakeNumber = {
      sid: `PN${crypto.randomUUID().replaceAll("-", "")}`,
      phone_number: phoneNumber,
      friendly_name: phoneNumber,
      voice_url: voiceUrl,
      voice_method: "POST",
      status_callback: "",
      status_callback_method: "POST",
    };
    this.numbers.set(number.sid, number);
    return number;
  }

  /** The most recently placed call. */
  lastCall(): FakeCall {
    const call = [...this.calls.values()].at(-1);
    if (!call) throw new Error("fake Twilio: no call was placed");
    return call;
  }

  /** Sends a status callback as Twilio does (signed, form-encoded). */
  async sendStatus(
    callSid: string,
    status: string,
    extra: Record<string, string> = {},
  ): Promise<Response | undefined> {
    const call = this.#call(callSid);
    call.status = status;
    if (FINAL_STATUSES.includes(status)) call.endedAt ??= this.clock.now().getTime();
    if (!call.statusCallback) return undefined;
    call.sequence += 1;
    return this.#postSigned(call.statusCallback, {
      CallSid: call.sid,
      AccountSid: this.accountSid,
      From: call.from,
      To: call.to,
      Direction: "outbound-api",
      CallStatus: status,
      SequenceNumber: String(call.sequence),
      Timestamp: this.clock.now().toUTCString(),
      ...extra,
    });
  }

  /**
   * An inbound call: Twilio posts the number's voice webhook (signed) and opens the stream its
   * TwiML names. Returns the webhook's response and, when it opened one, the stream.
   */
  async ring({
    voiceUrl,
    from,
    to,
    options = {},
  }: {
    voiceUrl: string;
    from: string;
    to: string;
    options?: Partial<FakeCallOptions>;
  }): Promise<{ response: Response; xml: string; stream: FakeTwilioCall | undefined }> {
    const call: FakeCall = {
      sid: `CA${crypto.randomUUID().replaceAll("-", "")}`,
      to,
      from,
      status: "ringing",
      twiml: "",
      sequence: 0,
      machineDetectionTuning: {},
      direction: "inbound",
      redirects: [],
      createdAt: this.clock.now().getTime(),
    };
    this.calls.set(call.sid, call);
    const response = await this.#postSigned(voiceUrl, {
      CallSid: call.sid,
      AccountSid: this.accountSid,
      From: from,
      To: to,
      CallStatus: "ringing",
      Direction: "inbound",
    });
    const xml = await response.clone().text();
    call.twiml = xml;
    if (!response.ok || !readTwiml(xml).url) return { response, xml, stream: undefined };
    call.status = "in-progress";
    return { response, xml, stream: await this.#openStream(call, options) };
  }

  /** The `<Dial>` of the call's latest redirect; throws when it was not redirected to one. */
  dialOf(callSid: string): DialInstruction {
    const dial = readDial(this.#call(callSid).redirects.at(-1) ?? "");
    if (!dial) throw new Error(`fake Twilio: call ${callSid} was not redirected to a <Dial>`);
    return dial;
  }

  /**
   * The person answers the transfer: Twilio runs the `<Number url>` TwiML for them (a signed POST
   * about the dialled leg, whose parent is the caller's call). Returns the TwiML.
   */
  async whisper(callSid: string): Promise<Response> {
    const dial = this.dialOf(callSid);
    return this.#postSigned(dial.whisper, {
      CallSid: `CA${crypto.randomUUID().replaceAll("-", "")}`,
      ParentCallSid: callSid,
      AccountSid: this.accountSid,
      From: dial.callerId,
      To: dial.to,
      CallStatus: "in-progress",
      Direction: "outbound-dial",
    });
  }

  /**
   * The dialled leg is over: Twilio posts the `<Dial action>` (signed) with DialCallStatus and, for
   * a leg that was answered, DialCallDuration. `callStatus` is the caller's own call (completed when
   * they hung up meanwhile). A `<Connect><Stream>` answer is opened as the call's next stream.
   */
  async dialResult(
    callSid: string,
    dialCallStatus: string,
    {
      duration,
      callStatus = "in-progress",
      options = {},
    }: { duration?: number; callStatus?: string; options?: Partial<FakeCallOptions> } = {},
  ): Promise<{ response: Response; xml: string; stream: FakeTwilioCall | undefined }> {
    const call = this.#call(callSid);
    const dial = this.dialOf(callSid);
    const response = await this.#postSigned(dial.action, {
      CallSid: callSid,
      AccountSid: this.accountSid,
      From: call.from,
      To: call.to,
      CallStatus: callStatus,
      DialCallSid: `CA${crypto.randomUUID().replaceAll("-", "")}`,
      DialCallStatus: dialCallStatus,
      ...(duration === undefined ? {} : { DialCallDuration: String(duration) }),
    });
    const xml = await response.clone().text();
    if (!response.ok || !readTwiml(xml).url) return { response, xml, stream: undefined };
    call.twiml = xml;
    return { response, xml, stream: await this.#openStream(call, options) };
  }

  /** Opens the stream of the call's TwiML as Twilio does, its upgrade signed; it is the call's now. */
  async #openStream(call: FakeCall, options: Partial<FakeCallOptions>): Promise<FakeTwilioCall> {
    const url = readTwiml(call.twiml).url;
    const signature = twilio.getExpectedTwilioSignature(this.authToken, url, {});
    call.stream = await openStream(call.twiml, call.sid, {
      ...options,
      headers: { "x-twilio-signature": signature, ...options.headers },
    });
    return call.stream;
  }

  /** Sends the async AMD result (signed). */
  async sendAmd(callSid: string, answeredBy: string, detectionMs = 2400): Promise<Response> {
    const call = this.#call(callSid);
    if (!call.asyncAmdStatusCallback)
      throw new Error("fake Twilio: the call asked for no AMD callback");
    return this.#postSigned(call.asyncAmdStatusCallback, {
      CallSid: call.sid,
      AccountSid: this.accountSid,
      AnsweredBy: answeredBy,
      MachineDetectionDuration: String(detectionMs),
    });
  }

  /**
   * The callee picks up: "in-progress" callback, then the `<Connect><Stream>` of the call's TwiML
   * opens, its upgrade signed as Twilio signs it (over the wss:// URL, no parameters).
   */
  async answer(callSid: string, options: Partial<FakeCallOptions> = {}): Promise<FakeTwilioCall> {
    await this.sendStatus(callSid, "in-progress");
    return this.#openStream(this.#call(callSid), options);
  }

  /**
   * Reports on the call's stream as Twilio does: a signed POST to the `<Stream statusCallback>` of
   * the call's TwiML, with StreamError for a stream-error.
   */
  sendStreamStatus(
    callSid: string,
    event: StreamEvent,
    options: { streamSid?: string; error?: string } = {},
  ): Promise<Response> {
    const call = this.#call(callSid);
    return postStreamStatus({
      xml: call.twiml,
      callSid: call.sid,
      accountSid: this.accountSid,
      authToken: this.authToken,
      event,
      ...options,
    });
  }

  /**
   * The callee picks up but Twilio cannot open the call's stream (e.g. the WebSocket server cannot be
   * reached): "in-progress", then stream-error. Twilio then ends the call (nothing follows the
   * `<Connect>`); a test sends that "completed" with `sendStatus` when it wants it.
   */
  async failStream(callSid: string, error: string): Promise<Response> {
    await this.sendStatus(callSid, "in-progress");
    return this.sendStreamStatus(callSid, "stream-error", { error });
  }

  #call(callSid: string): FakeCall {
    const call = this.calls.get(callSid);
    if (!call) throw new Error(`fake Twilio: no call ${callSid}`);
    return call;
  }

  #postSigned(url: string, params: Record<string, string>): Promise<Response> {
    return fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio.getExpectedTwilioSignature(this.authToken, url, params),
      },
      body: new URLSearchParams(params).toString(),
    });
  }

  async #handle(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url);
    const expected = `Basic ${Buffer.from(`${this.accountSid}:${this.authToken}`).toString("base64")}`;
    const authorized = request.headers.get("authorization") === expected;
    const form = formOf(await request.text());
    this.requests.push({ method: request.method, path: pathname, form, authorized });
    this.#conditions.changed();
    if (!authorized) return twilioError({ status: 401, code: 20003, message: "Authenticate" });

    const base = `/2010-04-01/Accounts/${this.accountSid}`;
    if (request.method === "GET" && pathname === `${base}.json`) {
      return Response.json({
        sid: this.accountSid,
        friendly_name: "Fake account",
        status: "active",
        type: "Full",
      });
    }
    if (request.method === "POST" && pathname === `${base}/Calls.json`) return this.#create(form);
    if (pathname === `${base}/IncomingPhoneNumbers.json`) {
      return request.method === "GET"
        ? this.#page("incoming_phone_numbers", [...this.numbers.values()])
        : this.#buy(form);
    }
    const numberUpdate = new RegExp(`^${base}/IncomingPhoneNumbers/(PN[0-9a-f]+)\\.json$`).exec(
      pathname,
    );
    if (request.method === "POST" && numberUpdate?.[1])
      return this.#configure(numberUpdate[1], form);
    const search = new RegExp(`^${base}/AvailablePhoneNumbers/([A-Z]{2})/Local\\.json$`).exec(
      pathname,
    );
    if (request.method === "GET" && search?.[1]) {
      const areaCode = new URL(request.url).searchParams.get("AreaCode");
      const found = (this.forSale.get(search[1]) ?? []).filter(
        (number) => !areaCode || number.slice(2, 5) === areaCode,
      );
      return this.#page(
        "available_phone_numbers",
        found.map((phone_number) => ({
          phone_number,
          friendly_name: phone_number,
          locality: "Springfield",
          iso_country: search[1],
        })),
      );
    }
    const update = new RegExp(`^${base}/Calls/(CA[0-9a-f]+)\\.json$`).exec(pathname);
    if (request.method === "POST" && update?.[1]) {
      const call = this.calls.get(update[1]);
      if (!call)
        return twilioError({
          status: 404,
          code: 20404,
          message: "The requested resource was not found",
        });
      const ended = FINAL_STATUSES.includes(call.status);
      if (form.Status === "completed" && ended) {
        return twilioError({
          status: 400,
          code: 21220,
          message: "Call is not in-progress. Cannot redirect.",
        });
      }
      const redirect = typeof form.Twiml === "string" ? form.Twiml : undefined;
      if (redirect !== undefined) {
        if (ended)
          return twilioError({
            status: 400,
            code: 21220,
            message: "Call is not in-progress. Cannot redirect.",
          });
        if (redirect.length > 4000)
          return twilioError({ status: 400, code: 13230, message: "Twiml is too long" });
        const failure = this.failNextRedirect;
        this.failNextRedirect = undefined;
        if (failure) return twilioError(failure);
        call.redirects.push(redirect);
        call.twiml = redirect;
        // The call now runs the new TwiML: its <Connect><Stream> in progress ends.
        call.stream?.hangUp("call redirected");
        call.stream = undefined;
      }
      if (typeof form.Status === "string") {
        call.status = form.Status;
        if (FINAL_STATUSES.includes(call.status)) call.endedAt ??= this.clock.now().getTime();
      }
      return Response.json(this.#json(call));
    }
    return twilioError({
      status: 404,
      code: 20404,
      message: "The requested resource was not found",
    });
  }

  #page(key: string, records: unknown[]): Response {
    return Response.json({
      [key]: records,
      first_page_uri: "/first",
      next_page_uri: null,
      previous_page_uri: null,
      page: 0,
      page_size: 100,
      start: 0,
      end: records.length,
      uri: "/this",
    });
  }

  #buy(form: Record<string, string | string[]>): Response {
    const phoneNumber = typeof form.PhoneNumber === "string" ? form.PhoneNumber : "";
    if (this.failNextPurchase) {
      const failure = this.failNextPurchase;
      this.failNextPurchase = undefined;
      return twilioError(failure);
    }
    const forSale = [...this.forSale.values()].flat();
    if (!forSale.includes(phoneNumber)) {
      return twilioError({
        status: 400,
        code: 21422,
        message: `PhoneNumber ${phoneNumber} is not available`,
      });
    }
    for (const [country, numbers] of this.forSale)
      this.forSale.set(
        country,
        numbers.filter((n) => n !== phoneNumber),
      );
    return Response.json(this.addNumber(phoneNumber, ""), { status: 201 });
  }

  #configure(sid: string, form: Record<string, string | string[]>): Response {
    const number = this.numbers.get(sid);
    if (!number)
      return twilioError({
        status: 404,
        code: 20404,
        message: "The requested resource was not found",
      });
    const fields: [string, keyof FakeNumber][] = [
      ["VoiceUrl", "voice_url"],
      ["VoiceMethod", "voice_method"],
      ["StatusCallback", "status_callback"],
      ["StatusCallbackMethod", "status_callback_method"],
    ];
    for (const [field, key] of fields) {
      const value = form[field];
      if (typeof value === "string") number[key] = value;
    }
    return Response.json(number);
  }

  #create(form: Record<string, string | string[]>): Response {
    const field = (name: string) =>
      typeof form[name] === "string" ? (form[name] as string) : undefined;
    const to = field("To");
    const from = field("From");
    if (!to)
      return twilioError({ status: 400, code: 21201, message: "No 'To' number is specified" });
    if (!/^\+[1-9]\d{1,14}$/.test(to)) {
      return twilioError({
        status: 400,
        code: 21211,
        message: `The 'To' number ${to} is not a valid phone number.`,
      });
    }
    if (!from)
      return twilioError({
        status: 400,
        code: 21603,
        message: "A 'From' phone number is required.",
      });
    const twiml = field("Twiml");
    if (!twiml && !field("Url"))
      return twilioError({ status: 400, code: 21205, message: "Url parameter is required." });
    if (twiml && twiml.length > 4000)
      return twilioError({ status: 400, code: 13230, message: "Twiml is too long" });
    const machineDetection = field("MachineDetection");
    if (
      machineDetection !== undefined &&
      !["Enable", "DetectMessageEnd"].includes(machineDetection)
    )
      return twilioError({
        status: 400,
        code: 21234,
        message: `Invalid Machine Detection configuration value: MachineDetection ${machineDetection}`,
      });
    const tuning: Partial<Record<AmdTuningParameter, string>> = {};
    for (const [name, [low, high]] of Object.entries(AMD_TUNING_RANGES)) {
      const value = field(name);
      if (value === undefined) continue;
      const number = Number(value);
      if (!/^\d+$/.test(value) || number < low || number > high) {
        // Twilio's exact wording is not documented; the code and the parameter's range are.
        return twilioError({
          status: 400,
          code: 21234,
          message: `Invalid Machine Detection configuration value: ${name} ${value} is not between ${low} and ${high}`,
        });
      }
      tuning[name as AmdTuningParameter] = value;
    }
    if (this.failNextCreate) {
      const failure = this.failNextCreate;
      this.failNextCreate = undefined;
      return twilioError(failure);
    }
    const call: FakeCall = {
      sid: `CA${crypto.randomUUID().replaceAll("-", "")}`,
      to,
      from,
      status: "queued",
      twiml: twiml ?? "",
      sequence: 0,
      ...(field("StatusCallback") ? { statusCallback: field("StatusCallback") } : {}),
      ...(field("AsyncAmdStatusCallback")
        ? { asyncAmdStatusCallback: field("AsyncAmdStatusCallback") }
        : {}),
      ...(machineDetection ? { machineDetection } : {}),
      machineDetectionTuning: tuning,
      direction: "outbound-api",
      redirects: [],
      createdAt: this.clock.now().getTime(),
    };
    this.calls.set(call.sid, call);
    return Response.json(this.#json(call), { status: 201 });
  }

  #json(call: FakeCall) {
    return {
      sid: call.sid,
      account_sid: this.accountSid,
      to: call.to,
      from: call.from,
      status: call.status,
      direction: call.direction,
      answered_by: null,
      date_created: new Date(call.createdAt).toUTCString(),
      uri: `/2010-04-01/Accounts/${this.accountSid}/Calls/${call.sid}.json`,
    };
  }
}
