/** The scenarios this build ships, by id. Adding a use case: a new folder, one line here. */
import { dentalReceptionist } from "./dental-receptionist/index.ts";
import { insuranceFollowUp } from "./insurance-followup/index.ts";
import type { Scenario } from "./types.ts";

export const builtInScenarios: ReadonlyMap<string, Scenario> = new Map(
  [dentalReceptionist, insuranceFollowUp].map((scenario) => [scenario.id, scenario]),
);
