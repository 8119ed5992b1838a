/** The lead input model (the repositories' behaviour is in storage-contract.test.ts, on both engines). */
import { expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { LeadInput } from "../../src/store/leads.ts";
import { alex } from "./fixtures.ts";

test("the input model rejects bad values and unknown fields", () => {
  expect(Value.Check(LeadInput, alex)).toBe(true);
  expect(Value.Check(LeadInput, { ...alex, phone: "555-1234" })).toBe(false);
  expect(Value.Check(LeadInput, { ...alex, year_built: 1400 })).toBe(false);
  expect(Value.Check(LeadInput, { ...alex, coverage_start: "April" })).toBe(false);
  expect(Value.Check(LeadInput, { ...alex, favourite_colour: "red" })).toBe(false);
  expect(Value.Check(LeadInput, { last_name: "Mitchell" })).toBe(false);
});
