/** The scenarios this build ships, by id. Adding a use case: a new folder, one line here. */
import type { Scenario } from "./types.ts";

export const builtInScenarios: ReadonlyMap<string, Scenario> = new Map<string, Scenario>([]);
