/** The sample alert rules and Grafana dashboard in docs/ops/ name only metrics the service exports. */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { Metrics } from "../src/ops/metrics.ts";
import { parseMetrics } from "./helpers/metrics.ts";

const DOCS = join(import.meta.dir, "../docs/ops");

/** Every metric family the service declares. */
async function exported(): Promise<Set<string>> {
  const metrics = new Metrics(() => []);
  return new Set(parseMetrics(await metrics.exposition()).types.keys());
}

/** The metric families an expression names (histogram series mapped to their family). */
const named = (expr: string) =>
  [...expr.matchAll(/\b(voice_agent_[a-z_]+|process_[a-z_]+|up)\b/g)].map((match) =>
    (match[1] as string).replace(/_(bucket|sum|count)$/, ""),
  );

test("the alert rules are valid YAML naming exported metrics", async () => {
  const known = await exported();
  const rules = Bun.YAML.parse(await Bun.file(join(DOCS, "prometheus-alerts.yml")).text()) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  const all = rules.groups.flatMap((group) => group.rules);
  expect(all.length).toBeGreaterThanOrEqual(6);
  for (const rule of all)
    for (const name of named(rule.expr)) if (name !== "up") expect(known).toContain(name);
});

test("the Grafana dashboard is JSON whose panels query exported metrics", async () => {
  const known = await exported();
  const dashboard = (await Bun.file(join(DOCS, "grafana-dashboard.json")).json()) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  for (const panel of dashboard.panels) {
    expect(panel.targets.length).toBeGreaterThan(0);
    for (const { expr } of panel.targets) {
      expect(named(expr).length).toBeGreaterThan(0);
      for (const name of named(expr)) expect(known).toContain(name);
    }
  }
});
