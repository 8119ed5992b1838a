/**
 * Twilio REST through the official SDK: places outbound calls (inline TwiML, async AMD, status
 * callbacks) and hangs calls up. The SDK's own HTTP client is kept and only re-based onto
 * TWILIO_API_URL, so a local fake can stand in for api.twilio.com with nothing else different.
 */
import twilio from "twilio";
import type RequestClient from "twilio/lib/base/RequestClient";
import type { Telephony } from "../call/session.ts";
import { AppError } from "../errors.ts";

/** Twilio refused or could not be reached: 502 with Twilio's own message. */
export class TwilioApiError extends AppError {
  constructor(
    message: string,
    /** Twilio's error code (e.g. 21211 invalid 'To'), when it gave one. */
    readonly twilioCode?: number,
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

export interface OutboundCall {
  to: string;
  from: string;
  twiml: string;
  statusCallback: string;
  asyncAmdStatusCallback: string;
}

type RequestOptions<T> = RequestClient.RequestOptions<T>;

/** The SDK's HTTP client, sending every request to `apiUrl` instead of Twilio's hosts. */
class RebasedRequestClient extends twilio.RequestClient {
  constructor(private readonly base: URL) {
    super();
  }

  override request<T>(opts: RequestOptions<T>) {
    const target = new URL(opts.uri);
    target.protocol = this.base.protocol;
    target.host = this.base.host;
    return super.request<T>({ ...opts, uri: target.href });
  }
}

function asTwilioError(error: unknown, action: string): TwilioApiError {
  if (error instanceof twilio.RestException) {
    return new TwilioApiError(`Twilio refused to ${action}: ${error.message}`, error.code);
  }
  return new TwilioApiError(`Could not reach Twilio to ${action}: ${(error as Error).message}`);
}

export class TwilioRest implements Telephony {
  readonly #client: twilio.Twilio;

  constructor(options: TwilioRestOptions) {
    this.#client = twilio(options.accountSid, options.authToken, {
      httpClient: new RebasedRequestClient(new URL(options.apiUrl)),
      autoRetry: true,
      maxRetries: 2,
    });
  }

  /** Places the call; Twilio answers at once with the call SID, the call itself proceeds asynchronously. */
  async placeCall(call: OutboundCall): Promise<{ sid: string; status: string }> {
    try {
      const created = await this.#client.calls.create({
        to: call.to,
        from: call.from,
        twiml: call.twiml,
        machineDetection: "DetectMessageEnd",
        asyncAmd: "true",
        asyncAmdStatusCallback: call.asyncAmdStatusCallback,
        asyncAmdStatusCallbackMethod: "POST",
        statusCallback: call.statusCallback,
        statusCallbackEvent: ["initiated", "ringing", "answered", "completed"],
        statusCallbackMethod: "POST",
      });
      return { sid: created.sid, status: created.status };
    } catch (error) {
      throw asTwilioError(error, "place the call");
    }
  }

  /** Ends a call in progress. */
  async hangUp(callSid: string): Promise<void> {
    try {
      await this.#client.calls(callSid).update({ status: "completed" });
    } catch (error) {
      throw asTwilioError(error, "hang up");
    }
  }
}
