/** Outbound follow-up on a homeowners-insurance quote request: verify, gather, schedule, record the outcome. */
import type { Scenario } from "../types.ts";
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
    return {
      prompt: systemPrompt(company, lead, call.startedAt),
      greeting: greeting(company, lead, call.recorded),
      voicemail: voicemail(company, lead),
      tools: followUpTools(company, lead, store, clock, logger),
      keyterms: [company.name, ...company.licensedAgents],
    };
  },
  async seed({ store, clock }) {
    await store.appointments.addSlots(consultationSlots(company, clock.now()));
  },
};
