/**
 * Deepgram text-to-speech over REST (`POST /v1/speak`): raw mu-law 8 kHz with no container, exactly
 * what Twilio plays, yielded chunk by chunk as it arrives so playback starts before synthesis ends.
 */
import type { TextToSpeech } from "../call/session.ts";

export interface DeepgramTtsOptions {
  apiUrl: string;
  apiKey: string;
  /** Aura voice, e.g. aura-2-thalia-en. */
  model: string;
  timeoutMs: number;
  /** Keep the text out of Deepgram's Model Improvement Program (DEEPGRAM_MIP_OPT_OUT). */
  mipOptOut: boolean;
}

/** Deepgram's documented limit on the text of one request. */
export const MAX_TTS_CHARACTERS = 2000;

export function deepgramTts(options: DeepgramTtsOptions): TextToSpeech {
  return {
    async *stream(text) {
      if (text.length > MAX_TTS_CHARACTERS)
        throw new Error(`text is ${text.length} characters; the limit is ${MAX_TTS_CHARACTERS}`);
      const query = new URLSearchParams({
        model: options.model,
        encoding: "mulaw",
        sample_rate: "8000",
        container: "none",
        mip_opt_out: String(options.mipOptOut),
      });
      const response = await fetch(`${options.apiUrl}/v1/speak?${query}`, {
        method: "POST",
        headers: { Authorization: `Token ${options.apiKey}`, "Content-Type": "application/json" },
        body: JSON.stringify({ text }),
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      if (!response.ok || !response.body) {
        const body = await response.text().catch(() => "");
        let reason = body.slice(0, 200);
        try {
          reason = (JSON.parse(body) as { err_msg?: string }).err_msg ?? reason;
        } catch {}
        throw new Error(`Deepgram TTS answered ${response.status}: ${reason}`);
      }
      for await (const chunk of response.body) yield chunk;
    },
  };
}
