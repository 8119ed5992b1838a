/**
 * The environment of a service the benchmarks start: Twilio and Deepgram configured with made-up
 * credentials, a secret set, and every outside address a closed loopback port or the fakes'.
 */
import { NO_DEEPGRAM_REST } from "../../test/helpers/context.ts";

export const CONFIGURED_SERVICE_ENV: Record<string, string> = {
  SERVER_EXTERNAL_URL: "https://voice.example.com",
  ENDPOINT_SECRET: "bench-secret-0123456789abcdef0123456789",
  TWILIO_ACCOUNT_SID: `AC${"0".repeat(32)}`,
  TWILIO_AUTH_TOKEN: "bench-token",
  TWILIO_PHONE_NUMBER: "+15550001111",
  DEEPGRAM_API_KEY: "bench-key",
  DEEPGRAM_API_URL: NO_DEEPGRAM_REST,
  LOG_LEVEL: "info",
};
