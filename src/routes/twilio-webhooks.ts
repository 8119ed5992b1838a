/**
 * Twilio's voice webhooks. `POST /incoming-call`: checks the signature, records the call, picks the
 * scenario by the called number, and answers TwiML that opens the media stream with a one-time token
 * (or, over capacity or while draining, a polite busy message and a hang-up).
 */
import { Type } from "@sinclair/typebox";
import { Elysia, t } from "elysia";
import {
  connectStreamTwiml,
  sayAndHangUpTwiml,
  streamUrl,
  verifyTwilioSignature,
} from "../adapters/twilio-webhooks.ts";
import type { CallRegistry } from "../call/registry.ts";
import type { StreamTokens } from "../call/stream-tokens.ts";
import { type Config, requireIntegration } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Store } from "../store/index.ts";
import { validator } from "./validate.ts";

export const BUSY_MESSAGE =
  "We're sorry, all of our lines are busy right now. Please call again in a few minutes. Goodbye.";

const IncomingCall = Type.Object({
  CallSid: Type.String({ pattern: "^CA[0-9a-zA-Z]{2,64}$" }),
  From: Type.String({ minLength: 1, maxLength: 64 }),
  To: Type.String({ minLength: 1, maxLength: 64 }),
  CallStatus: Type.Optional(Type.String()),
});
const parseIncomingCall = validator(IncomingCall, "body");

export interface TwilioWebhookDeps {
  config: Config;
  store: Store;
  calls: CallRegistry;
  tokens: StreamTokens;
  logger: Logger;
}

const twiml = (xml: string) =>
  new Response(xml, { headers: { "content-type": "text/xml; charset=utf-8" } });

/** Form fields as Twilio posts them (application/x-www-form-urlencoded). */
const TwilioForm = t.Record(t.String(), t.String());

export function twilioWebhookRoutes({ config, store, calls, tokens, logger }: TwilioWebhookDeps) {
  return new Elysia({ name: "twilio-webhooks" }).post(
    "/incoming-call",
    ({ body, request }) => {
      requireIntegration(config, "twilio");
      verifyTwilioSignature(config, request, body);
      const call = parseIncomingCall(body);
      const scenario = config.calls.inboundScenarios.get(call.To) ?? config.calls.defaultScenario;
      const record = {
        sid: call.CallSid,
        direction: "inbound" as const,
        from_number: call.From,
        to_number: call.To,
        scenario,
        status: call.CallStatus ?? "ringing",
      };
      const busy = calls.draining || calls.size + tokens.outstanding >= config.calls.maxConcurrent;
      store.calls.ensure(record);
      if (busy) {
        store.calls.update(call.CallSid, {
          outcome: "rejected_busy",
          end_reason: calls.draining ? "service_shutdown" : "over_capacity",
        });
        logger.warn("inbound call turned away", {
          callSid: call.CallSid,
          draining: calls.draining,
          live: calls.size,
        });
        return twiml(sayAndHangUpTwiml(BUSY_MESSAGE));
      }
      logger.info("inbound call", { callSid: call.CallSid, scenario });
      return twiml(
        connectStreamTwiml({
          url: streamUrl(config.server.externalUrl ?? ""),
          parameters: {
            token: tokens.issue(call.CallSid),
            scenario,
            direction: "inbound",
            from: call.From,
            to: call.To,
          },
          say: config.calls.inboundDisclosure,
        }),
      );
    },
    {
      body: TwilioForm,
      detail: {
        tags: ["Twilio webhooks"],
        summary: "Twilio voice webhook for inbound calls",
        description:
          "Point a Twilio number's voice webhook here (POST). Requires a valid X-Twilio-Signature over SERVER_EXTERNAL_URL + /incoming-call. Answers TwiML.",
      },
    },
  );
}
