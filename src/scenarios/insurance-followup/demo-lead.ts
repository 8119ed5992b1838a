/** The lead used when a call names none: a complete, plausible quote request for demos and trials. */
import type { LeadInput } from "../../store/leads.ts";

export const DEMO_LEAD: LeadInput = {
  first_name: "Alex",
  last_name: "Mitchell",
  email: "alex.mitchell@example.com",
  property_address: "742 Evergreen Terrace, Springfield, IL 62704",
  property_type: "single family home",
  year_built: 1992,
  square_footage: 2100,
  insurance_status: "switching from current provider",
  coverage_start: "2026-04-15",
  quote_submitted_at: "2026-03-01T18:30:00Z",
  source: "website quote form",
};
