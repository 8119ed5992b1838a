/**
 * Twilio REST through the official SDK: places outbound calls (inline TwiML, async AMD with its
 * tuning, status callbacks), hangs calls up, and manages the account's phone numbers for the setup wizard. The SDK's own HTTP client is kept and only re-based onto
 * TWILIO_API_URL, so a local fake can stand in for api.twilio.com with nothing else different.
 * The SDK and its client are made on the first request, not at start-up.
 */
import type twilio from "twilio";
import type RequestClient from "twilio/lib/base/RequestClient";
import type { Telephony } from "../call/session.ts";
import { AppError } from "../errors.ts";
import { once } from "../lazy.ts";
import { twilioSdk } from "./twilio-webhooks.ts";

/** Twilio refused or could not be reached: 502 with Twilio's own message. */
export class TwilioApiError extends AppError {
  /** Twilio answered that it will not do it (a 4xx): nothing happened, unlike a timeout. */
  get refused(): boolean {
    return this.twilioStatus !== undefined && this.twilioStatus >= 400 && this.twilioStatus < 500;
  }

  constructor(
    message: string,
    /** Twilio's error code (e.g. 21211 invalid 'To'), when it gave one. */
    readonly twilioCode?: number,
    /** The HTTP status Twilio answered with; undefined when it could not be reached. */
    readonly twilioStatus?: number,
    /** No connection to Twilio was made (refused, no such host): the request never left. */
    readonly notSent = false,
  ) {
    super(502, "TWILIO_ERROR", message);
  }
}

export interface TwilioRestOptions {
  accountSid: string;
  authToken: string;
  /** Base URL replacing https://api.twilio.com (scheme, host and port). */
  apiUrl: string;
}

/**
 * Twilio's answering-machine tuning, in its own units (MachineDetectionTimeout in seconds, 3–59;
 * the others in milliseconds: SpeechThreshold 1000–6000, SpeechEndThreshold 500–5000,
 * SilenceTimeout 2000–10000). Twilio refuses values outside these ranges (error 21234).
 */
export interface MachineDetectionTuning {
  timeoutS: number;
  speechThresholdMs: number;
  speechEndThresholdMs: number;
  silenceTimeoutMs: number;
}

export interface OutboundCall {
  to: string;
  from: string;
  twiml: string;
  statusCallback: string;
  asyncAmdStatusCallback: string;
  machineDetection: MachineDetectionTuning;
}

type RequestOptions<T> = RequestClient.RequestOptions<T>;

/** Twilio's error when updating a call that has already ended (e.g. closing the stream hung it up). */
const CALL_NOT_IN_PROGRESS = 21220;

/** The SDK's HTTP client, sending every request to `base` instead of Twilio's hosts. */
function rebasedRequestClient(sdk: typeof twilio, base: URL): RequestClient {
  return new (class extends sdk.RequestClient {
    override request<T>(opts: RequestOptions<T>) {
      const target = new URL(opts.uri);
      target.protocol = base.protocol;
      target.host = base.host;
      return super.request<T>({ ...opts, uri: target.href });
    }
  })();
}

/** The fields we keep of an SDK phone-number instance (Twilio sends null for unset webhooks). */
function owned(number: OwnedNumber): OwnedNumber {
  return {
    sid: number.sid,
    phoneNumber: number.phoneNumber,
    friendlyName: number.friendlyName,
    voiceUrl: number.voiceUrl ?? "",
    voiceMethod: number.voiceMethod ?? "POST",
    statusCallback: number.statusCallback ?? "",
    statusCallbackMethod: number.statusCallbackMethod ?? "POST",
  };
}

/** Errors of a connection that was never made: nothing reached Twilio. */
const NOT_CONNECTED = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ConnectionRefused",
  "FailedToOpenSocket",
]);

function asTwilioError(sdk: typeof twilio, error: unknown, action: string): TwilioApiError {
  if (error instanceof sdk.RestException) {
    return new TwilioApiError(
      `Twilio refused to ${action}: ${error.message}`,
      error.code,
      error.status,
    );
  }
  const code = (error as { code?: unknown }).code;
  return new TwilioApiError(
    `Could not reach Twilio to ${action}: ${(error as Error).message}`,
    undefined,
    undefined,
    typeof code === "string" && NOT_CONNECTED.has(code),
  );
}

/** A phone number of the account and where its calls go. */
export interface OwnedNumber {
  sid: string;
  phoneNumber: string;
  friendlyName: string;
  voiceUrl: string;
  voiceMethod: string;
  statusCallback: string;
  statusCallbackMethod: string;
}

/** Where a number sends its calls: what the wizard sets and what teardown restores. */
export type NumberWebhooks = Pick<
  OwnedNumber,
  "voiceUrl" | "voiceMethod" | "statusCallback" | "statusCallbackMethod"
>;

export class TwilioRest implements Telephony {
  readonly #options: TwilioRestOptions;
  /** The SDK and its client, made on first use. */
  readonly #client = once(() =>
    twilioSdk().then((sdk) => {
      const { accountSid, authToken, apiUrl } = this.#options;
      const client = sdk(accountSid, authToken, {
        httpClient: rebasedRequestClient(sdk, new URL(apiUrl)),
        autoRetry: true,
        maxRetries: 2,
      });
      return { sdk, client };
    }),
  );

  constructor(options: TwilioRestOptions) {
    this.#options = options;
  }

  /** Runs one SDK request; the SDK's errors become TwilioApiError. */
  async #send<T>(action: string, request: (client: twilio.Twilio) => Promise<T>): Promise<T> {
    const { sdk, client } = await this.#client();
    try {
      return await request(client);
    } catch (error) {
      throw asTwilioError(sdk, error, action);
    }
  }

  /** Places the call; Twilio answers at once with the call SID, the call itself proceeds asynchronously. */
  async placeCall(call: OutboundCall): Promise<{ sid: string; status: string }> {
    const created = await this.#send("place the call", (client) =>
      client.calls.create({
        to: call.to,
        from: call.from,
        twiml: call.twiml,
        machineDetection: "DetectMessageEnd",
        machineDetectionTimeout: call.machineDetection.timeoutS,
        machineDetectionSpeechThreshold: call.machineDetection.speechThresholdMs,
        machineDetectionSpeechEndThreshold: call.machineDetection.speechEndThresholdMs,
        machineDetectionSilenceTimeout: call.machineDetection.silenceTimeoutMs,
        asyncAmd: "true",
        asyncAmdStatusCallback: call.asyncAmdStatusCallback,
        asyncAmdStatusCallbackMethod: "POST",
        statusCallback: call.statusCallback,
        statusCallbackEvent: ["initiated", "ringing", "answered", "completed"],
        statusCallbackMethod: "POST",
      }),
    );
    return { sid: created.sid, status: created.status };
  }

  async listNumbers(): Promise<OwnedNumber[]> {
    const numbers = await this.#send("list the account's numbers", (client) =>
      client.incomingPhoneNumbers.list({ limit: 100 }),
    );
    return numbers.map(owned);
  }

  /** Local numbers for sale, e.g. ("US", 415). */
  async searchNumbers(
    country: string,
    areaCode?: number,
  ): Promise<{ phoneNumber: string; locality: string }[]> {
    const found = await this.#send("search for numbers", (client) =>
      client
        .availablePhoneNumbers(country)
        .local.list({ limit: 10, voiceEnabled: true, ...(areaCode ? { areaCode } : {}) }),
    );
    return found.map((number) => ({ phoneNumber: number.phoneNumber, locality: number.locality }));
  }

  async buyNumber(phoneNumber: string): Promise<OwnedNumber> {
    return owned(
      await this.#send(`buy ${phoneNumber}`, (client) =>
        client.incomingPhoneNumbers.create({ phoneNumber }),
      ),
    );
  }

  async configureNumber(sid: string, webhooks: NumberWebhooks): Promise<OwnedNumber> {
    return owned(
      await this.#send("configure the number", (client) =>
        client.incomingPhoneNumbers(sid).update(webhooks),
      ),
    );
  }

  /** Replaces what a live call is doing with `twiml` (a `<Connect><Stream>` in progress stops). */
  async redirect(callSid: string, twiml: string): Promise<void> {
    await this.#send("transfer the call", (client) => client.calls(callSid).update({ twiml }));
  }

  /** Ends a call in progress; a call that has already ended is not an error. */
  async hangUp(callSid: string): Promise<void> {
    try {
      await this.#send("hang up", (client) =>
        client.calls(callSid).update({ status: "completed" }),
      );
    } catch (error) {
      if (error instanceof TwilioApiError && error.twilioCode === CALL_NOT_IN_PROGRESS) return;
      throw error;
    }
  }
}
