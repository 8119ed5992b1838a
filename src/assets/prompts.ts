/** Pre-recorded prompts (raw mu-law 8 kHz), embedded in the binary; render them with scripts/render-prompts.sh. */
import apologyPath from "./apology.ulaw" with { type: "file" };

export interface Prompts {
  /** Played when the agent fails mid-call, so it cannot depend on any outside service. */
  apology: Uint8Array;
}

export async function loadPrompts(): Promise<Prompts> {
  return { apology: await Bun.file(apologyPath).bytes() };
}
