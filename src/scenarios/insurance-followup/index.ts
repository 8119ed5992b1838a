/** Outbound follow-up on a homeowners-insurance quote request: verify, gather, schedule, record the outcome. */
import type { Scenario } from "../types.ts";
import { scheduleCallbackTool } from "./callback.ts";
import { company } from "./company.ts";
import { DEMO_LEAD } from "./demo-lead.ts";
import { greeting, systemPrompt, voicemail } from "./prompt.ts";
import { consultationSlots, followUpTools } from "./tools.ts";

export const insuranceFollowUp: Scenario = {
  id: "insurance-followup",
  description: `Outbound quote follow-up for ${company.name}`,
  timeZone: company.timeZone,
  async prepare(call, { store, clock, logger }) {
    const stored = call.leadId ? await store.leads.get(call.leadId) : undefined;
    const lead = stored ?? (await store.leads.create(DEMO_LEAD));
    // A campaign's call: the lead may ask to be called back, in their own zone and its hours.
    const campaign = await store.campaigns.ofCall(call.callSid);
    const callback = campaign && { timeZone: campaign.timezone, window: campaign.campaign.window };
    return {
      prompt: systemPrompt(company, lead, call.startedAt, callback?.timeZone),
      greeting: greeting(company, lead, call.recorded),
      voicemail: voicemail(company, lead),
      tools: [
        ...followUpTools(company, lead, store, clock, logger),
        ...(callback ? [scheduleCallbackTool(callback, store, clock)] : []),
      ],
      keyterms: [company.name, ...company.licensedAgents],
    };
  },
  async seed({ store, clock }) {
    await store.appointments.addSlots(consultationSlots(company, clock.now()));
  },
};
