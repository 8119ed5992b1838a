/** The lead input model (the repositories' behaviour is in storage-contract.test.ts, on both engines). */
import { expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { LeadInput } from "../../src/store/leads.ts";

const alex: LeadInput = {
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
};

test("the input model rejects bad values and unknown fields", () => {
  expect(Value.Check(LeadInput, alex)).toBe(true);
  expect(Value.Check(LeadInput, { ...alex, phone: "555-1234" })).toBe(false);
  expect(Value.Check(LeadInput, { ...alex, year_built: 1400 })).toBe(false);
  expect(Value.Check(LeadInput, { ...alex, coverage_start: "April" })).toBe(false);
  expect(Value.Check(LeadInput, { ...alex, favourite_colour: "red" })).toBe(false);
  expect(Value.Check(LeadInput, { last_name: "Mitchell" })).toBe(false);
});
