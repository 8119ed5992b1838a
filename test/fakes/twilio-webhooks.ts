/**
 * Twilio's webhook behaviour for tests: posts form-encoded callbacks signed exactly as Twilio signs
 * them (HMAC-SHA1 over the public URL and sorted parameters, via the SDK), reads the TwiML answer,
 * opens the `<Connect><Stream>` it names, as Twilio would, with its `<Parameter>`s, and posts the
 * stream's status reports to the `<Stream statusCallback>` it names.
 */
import twilio from "twilio";
import { type FakeCallOptions, FakeTwilioCall } from "./twilio-media-client.ts";

export interface SignedPostOptions {
  /** Where the request really goes (the local server). */
  serverUrl: string;
  /** The public base URL Twilio signs (SERVER_EXTERNAL_URL). */
  publicUrl: string;
  path: string;
  params: Record<string, string>;
  authToken: string;
  /** Override or drop the signature (undefined = correct signature, null = none). */
  signature?: string | null;
}

export function postSigned({
  serverUrl,
  publicUrl,
  path,
  params,
  authToken,
  signature,
}: SignedPostOptions): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
  const computed = twilio.getExpectedTwilioSignature(authToken, `${publicUrl}${path}`, params);
  if (signature !== null) headers["x-twilio-signature"] = signature ?? computed;
  return fetch(`${serverUrl}${path}`, {
    method: "POST",
    headers,
    body: new URLSearchParams(params).toString(),
  });
}

export interface StreamInstruction {
  url: string;
  /** Every attribute of the `<Stream>` (url, statusCallback, statusCallbackMethod, name, …). */
  stream: Record<string, string>;
  parameters: Record<string, string>;
  say: string[];
  hangup: boolean;
}

const decodeXmlEntities = (value: string) =>
  value
    .replaceAll("&quot;", '"')
    .replaceAll("&apos;", "'")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&");

/** What Twilio would do with a TwiML answer: what it says, which stream it opens, whether it hangs up. */
export function readTwiml(xml: string): StreamInstruction {
  const attributes = /<Stream\s([^>]*?)\/?>/.exec(xml)?.[1] ?? "";
  const stream = Object.fromEntries(
    [...attributes.matchAll(/([\w:-]+)="([^"]*)"/g)].map((match) => [
      match[1] ?? "",
      decodeXmlEntities(match[2] ?? ""),
    ]),
  );
  const parameters = Object.fromEntries(
    [...xml.matchAll(/<Parameter name="([^"]*)" value="([^"]*)"\/>/g)].map((match) => [
      decodeXmlEntities(match[1] ?? ""),
      decodeXmlEntities(match[2] ?? ""),
    ]),
  );
  return {
    url: stream.url ?? "",
    stream,
    parameters,
    say: [...xml.matchAll(/<Say>([^<]*)<\/Say>/g)].map((match) =>
      decodeXmlEntities(match[1] ?? ""),
    ),
    hangup: xml.includes("<Hangup/>"),
  };
}

export type StreamEvent = "stream-started" | "stream-stopped" | "stream-error";

export interface StreamStatusOptions {
  /** The TwiML whose `<Stream statusCallback>` Twilio reports to. */
  xml: string;
  callSid: string;
  accountSid: string;
  authToken: string;
  event: StreamEvent;
  /** Twilio names the stream (MZ…) even when it could not open it. */
  streamSid?: string;
  /** StreamError, sent with stream-error only. */
  error?: string;
  /** Override or drop the signature (undefined = correct signature, null = none). */
  signature?: string | null;
}

/**
 * Twilio's `<Stream statusCallback>` report: form-encoded, signed over the callback URL as written in
 * the TwiML, with the method it names (POST by default). Throws when the TwiML asks for none.
 */
export function postStreamStatus({
  xml,
  callSid,
  accountSid,
  authToken,
  event,
  streamSid = `MZ${"0".repeat(32)}`,
  error,
  signature,
}: StreamStatusOptions): Promise<Response> {
  const { stream } = readTwiml(xml);
  const url = stream.statusCallback;
  if (!url) throw new Error(`TwiML asks for no stream status callback: ${xml}`);
  const method = stream.statusCallbackMethod ?? "POST";
  if (method !== "POST") throw new Error(`fake Twilio: stream status by ${method} is not played`);
  const params: Record<string, string> = {
    AccountSid: accountSid,
    CallSid: callSid,
    StreamSid: streamSid,
    StreamName: stream.name ?? streamSid,
    StreamEvent: event,
    Timestamp: new Date().toISOString(),
    ...(event === "stream-error" && error !== undefined ? { StreamError: error } : {}),
  };
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
  if (signature !== null)
    headers["x-twilio-signature"] =
      signature ?? twilio.getExpectedTwilioSignature(authToken, url, params);
  return fetch(url, { method, headers, body: new URLSearchParams(params).toString() });
}

/** Opens the media stream a TwiML answer names, with its parameters, for the given call. */
export function openStream(
  xml: string,
  callSid: string,
  options: Partial<FakeCallOptions> = {},
): Promise<FakeTwilioCall> {
  const { url, parameters } = readTwiml(xml);
  if (!url) throw new Error(`TwiML opens no stream: ${xml}`);
  return FakeTwilioCall.connect({
    speed: 20,
    ...options,
    url,
    callSid,
    customParameters: parameters,
  });
}

/** A free loopback port, so a test can give the server its public URL before it starts. */
export function freePort(): number {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = probe.port ?? 0;
  probe.stop(true);
  return port;
}
