/** The insurer as data: name, the AI caller, time zone, licensed agents and consultation hours. */

const H = (hour: number, minute = 0) => hour * 60 + minute;

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
    [H(9), H(12)],
    [H(13), H(17)],
  ] as [number, number][],
  licensedAgents: ["Maria Lopez", "James Carter"],
};

export type Company = typeof company;
