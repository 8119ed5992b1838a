/**
 * The think models Deepgram's Voice Agent offers per provider, as `@deepgram/sdk` 5.13 enumerates
 * them (`OpenAiThinkProvider.Model`, `Anthropic.Model`, `Google.Model`): the fake agent's model list
 * and the tests' independent record of what the live service accepts.
 */
import { Anthropic, Google, OpenAiThinkProvider } from "@deepgram/sdk";

export const SDK_THINK_MODELS = {
  open_ai: Object.values(OpenAiThinkProvider.Model),
  anthropic: Object.values(Anthropic.Model),
  google: Object.values(Google.Model),
} as const;

export type SdkThinkProvider = keyof typeof SDK_THINK_MODELS;
