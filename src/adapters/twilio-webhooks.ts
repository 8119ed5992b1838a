/**
 * Twilio's side of webhooks: checking `X-Twilio-Signature` (HMAC-SHA1, the only scheme twilio@6.2.0
 * validates) with the SDK's validator over the public URL (built from SERVER_EXTERNAL_URL, never from
 * the Host a proxy forwarded), and building TwiML with the SDK's builder. The SDK is most of the
 * binary, so it is loaded by the first request that needs it, not at start-up.
 */
import type twilio from "twilio";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";
import { once } from "../lazy.ts";
import { requestUrl } from "../request-url.ts";

/** The twilio SDK, imported on first use (once; later calls get the same module). */
export const twilioSdk: () => Promise<typeof twilio> = once(() =>
  import("twilio").then((module) => module.default),
);

export class InvalidSignatureError extends AppError {
  constructor(message: string) {
    super(403, "INVALID_SIGNATURE", message);
  }
}

/**
 * Throws 403 unless the request carries Twilio's signature for its public URL and form parameters.
 * A no-op when TWILIO_VALIDATE_SIGNATURES=false.
 */
export async function verifyTwilioSignature(
  config: Config,
  request: Request,
  params: Record<string, string>,
): Promise<void> {
  if (!config.twilio.validateSignatures) return;
  const signature = request.headers.get("x-twilio-signature");
  if (!signature) throw new InvalidSignatureError("Missing X-Twilio-Signature");
  const { pathname, search } = requestUrl(request);
  const publicUrl = `${config.server.externalUrl}${pathname}${search}`;
  const twilio = await twilioSdk();
  if (!twilio.validateRequest(config.twilio.authToken ?? "", signature, publicUrl, params)) {
    throw new InvalidSignatureError("X-Twilio-Signature does not match this request");
  }
}

/**
 * True when the media-stream upgrade carries Twilio's signature, computed over the wss:// URL exactly as
 * written in the TwiML, with no parameters.
 */
export async function streamSignatureValid(
  config: Config,
  signature: string | null,
): Promise<boolean> {
  if (!signature || !config.server.externalUrl) return false;
  const twilio = await twilioSdk();
  return twilio.validateRequest(
    config.twilio.authToken ?? "",
    signature,
    streamUrl(config.server.externalUrl),
    {},
  );
}

/** The media-stream URL Twilio should open: the public URL with ws(s) and /twilio. */
export function streamUrl(externalUrl: string): string {
  return `${externalUrl.replace(/^http/, "ws")}/twilio`;
}

/** Where Twilio reports a stream's life (started, stopped, or could not be opened): `/stream-status`. */
export function streamStatusUrl(externalUrl: string): string {
  return `${externalUrl}/stream-status`;
}

export interface StreamTwiml {
  url: string;
  parameters: Record<string, string>;
  /** The `<Stream statusCallback>`: Twilio POSTs stream-started, stream-stopped and stream-error there. */
  statusCallback: string;
  /** Said before the stream opens. */
  say?: string | undefined;
}

/**
 * `<Connect><Stream>` with one `<Parameter>` per entry and a POST status callback; nothing follows,
 * so closing the socket ends the call.
 */
export async function connectStreamTwiml({
  url,
  parameters,
  statusCallback,
  say,
}: StreamTwiml): Promise<string> {
  const twilio = await twilioSdk();
  const response = new twilio.twiml.VoiceResponse();
  if (say) response.say(say);
  const stream = response.connect().stream({ url, statusCallback, statusCallbackMethod: "POST" });
  for (const [name, value] of Object.entries(parameters)) stream.parameter({ name, value });
  return response.toString();
}

/** A polite message, then hang up. */
export async function sayAndHangUpTwiml(message: string): Promise<string> {
  const twilio = await twilioSdk();
  const response = new twilio.twiml.VoiceResponse();
  response.say(message);
  response.hangup();
  return response.toString();
}

export interface DialTwiml {
  /** The person's number. */
  to: string;
  /** The number the person sees. */
  callerId: string;
  /** How long to ring before giving up (no-answer). */
  timeoutS: number;
  /** `<Dial action>`: Twilio posts DialCallStatus there when the dialled leg ends. */
  action: string;
  /** `<Number url>`: TwiML run for the person who answers, before the caller is connected. */
  whisper: string;
}

/** Transfers the call: dial the person (whisper first); what follows comes from `action`. */
export async function dialTwiml({
  to,
  callerId,
  timeoutS,
  action,
  whisper,
}: DialTwiml): Promise<string> {
  const twilio = await twilioSdk();
  const response = new twilio.twiml.VoiceResponse();
  response
    .dial({ callerId, timeout: timeoutS, action, method: "POST" })
    .number({ url: whisper, method: "POST" }, to);
  return response.toString();
}

/** What the person who answers a transfer hears before the caller is connected. */
export async function whisperTwiml(briefing: string): Promise<string> {
  const twilio = await twilioSdk();
  const response = new twilio.twiml.VoiceResponse();
  response.say(briefing);
  return response.toString();
}

/** Ends the call. */
export async function hangUpTwiml(): Promise<string> {
  const twilio = await twilioSdk();
  const response = new twilio.twiml.VoiceResponse();
  response.hangup();
  return response.toString();
}
