import { beforeEach, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { openStore, type Store } from "../../src/store/index.ts";
import { LeadInput } from "../../src/store/leads.ts";
import { ManualClock } from "../fakes/clock.ts";

let store: Store;
let clock: ManualClock;
beforeEach(() => {
  clock = new ManualClock();
  store = openStore(":memory:", clock);
});

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

test("a created lead reads back whole, with id and timestamps", () => {
  const lead = store.leads.create(alex);
  expect(lead.id).toMatch(/^lead_[0-9a-f-]{36}$/);
  expect(lead).toMatchObject(alex);
  expect(Object.keys(lead).sort()).toEqual(
    [...Object.keys(alex), "id", "created_at", "updated_at"].sort(),
  );
  expect(lead.created_at).toBe(clock.now().toISOString());
  expect(lead.updated_at).toBe(clock.now().toISOString());
  expect(store.leads.get(lead.id)).toEqual(lead);
});

test("optional fields left out are stored as null", () => {
  const lead = store.leads.create({ first_name: "Sam", last_name: "Roe" });
  expect(lead.email).toBeNull();
  expect(lead.year_built).toBeNull();
});

test("an unknown id is undefined", () => {
  expect(store.leads.get("lead_missing")).toBeUndefined();
});

test("the list is newest first and pages", () => {
  const first = store.leads.create({ first_name: "A", last_name: "One" });
  clock.advance(1000);
  const second = store.leads.create({ first_name: "B", last_name: "Two" });
  expect(store.leads.list(10).map((lead) => lead.id)).toEqual([second.id, first.id]);
  expect(store.leads.list(1, 1).map((lead) => lead.id)).toEqual([first.id]);
});

test("the input model rejects bad values and unknown fields", () => {
  expect(Value.Check(LeadInput, alex)).toBe(true);
  expect(Value.Check(LeadInput, { ...alex, phone: "555-1234" })).toBe(false);
  expect(Value.Check(LeadInput, { ...alex, year_built: 1400 })).toBe(false);
  expect(Value.Check(LeadInput, { ...alex, coverage_start: "April" })).toBe(false);
  expect(Value.Check(LeadInput, { ...alex, favourite_colour: "red" })).toBe(false);
  expect(Value.Check(LeadInput, { last_name: "Mitchell" })).toBe(false);
});
