/** The insurer as data: name, the AI caller, time zone, licensed agents and consultation hours. */
import { at } from "../shared/slots.ts";

export const company = {
  name: "Prestige Home Insurance",
  callerName: "Sarah",
  callbackNumber: "+1 (555) 010-4477",
  timeZone: "America/Chicago",
  calendar: "insurance-consultation",
  consultationMinutes: 30,
  /** Business days ahead for which consultation slots exist. */
  bookingBusinessDays: 10,
  /** Consultation hours on business days, [start, end) minutes of the day. */
  hours: [
    [at(9), at(12)],
    [at(13), at(17)],
  ] as [number, number][],
  licensedAgents: ["Maria Lopez", "James Carter"],
};

export type Company = typeof company;
