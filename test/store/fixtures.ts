/** Rows the store tests share: a lead with every field, an outbound call, dental slots, a week, a campaign. */
import { DEFAULT_RETRY } from "../../src/campaigns/schedule.ts";
import type { NewSlot } from "../../src/store/appointments.ts";
import type { NewCall } from "../../src/store/calls.ts";
import type { NewCampaign } from "../../src/store/campaigns.ts";
import type { LeadInput } from "../../src/store/leads.ts";

export const alex: LeadInput = {
  first_name: "Alex",
  last_name: "Mitchell",
  phone: "+15551234567",
  email: "alex@example.com",
  property_address: "742 Evergreen Terrace, Springfield IL 62704",
  property_type: "single family",
  year_built: 1992,
  square_footage: 2100,
  insurance_status: "switching",
  coverage_start: "2026-04-15",
  quote_submitted_at: "2026-03-01T18:30:00Z",
  source: "website",
  timezone: "America/Chicago",
};

export const outbound = (sid: string): NewCall => ({
  sid,
  direction: "outbound",
  from_number: "+15550001111",
  to_number: "+15551234567",
  scenario: "insurance-followup",
  status: "queued",
});

export const slot = (provider: string, startsAt: string, minutes = 30): NewSlot => ({
  calendar: "dental",
  provider,
  starts_at: startsAt,
  ends_at: new Date(Date.parse(startsAt) + minutes * 60_000).toISOString(),
});

/** The open-slot query for the first week of March 2026 in the dental diary. */
export const week = {
  calendar: "dental",
  from: "2026-03-02T00:00:00.000Z",
  to: "2026-03-09T00:00:00.000Z",
  limit: 50,
};

/** A campaign that may call every day, at any hour, in America/Chicago by default. */
export const everyHourCampaign: NewCampaign = {
  name: "c",
  scenario: "insurance-followup",
  from: "+15005550006",
  timezone: "America/Chicago",
  window: { days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], start: "00:00", end: "23:59" },
  max_concurrent: 8,
  max_per_minute: 100,
  max_attempts: 3,
  retry_after_minutes: DEFAULT_RETRY,
  retry_no_decision: false,
};
