/**
 * Twilio's webhook behaviour for tests: posts form-encoded callbacks signed exactly as Twilio signs
 * them (HMAC-SHA1 over the public URL and sorted parameters, via the SDK), reads the TwiML answer,
 * and opens the `<Connect><Stream>` it names, as Twilio would, with its `<Parameter>`s.
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
  const url = /<Stream url="([^"]+)"/.exec(xml)?.[1];
  const parameters = Object.fromEntries(
    [...xml.matchAll(/<Parameter name="([^"]*)" value="([^"]*)"\/>/g)].map((match) => [
      decodeXmlEntities(match[1] ?? ""),
      decodeXmlEntities(match[2] ?? ""),
    ]),
  );
  return {
    url: url ? decodeXmlEntities(url) : "",
    parameters,
    say: [...xml.matchAll(/<Say>([^<]*)<\/Say>/g)].map((match) =>
      decodeXmlEntities(match[1] ?? ""),
    ),
    hangup: xml.includes("<Hangup/>"),
  };
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
