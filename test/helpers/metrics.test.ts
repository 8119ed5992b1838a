import { expect, test } from "bun:test";
import { count, parseMetrics, value } from "./metrics.ts";

test("the test's Prometheus parser reads labelled histograms and escapes, and refuses garbage", () => {
  const scrape = parseMetrics(
    [
      "# HELP h A histogram",
      "# TYPE h histogram",
      'h_bucket{le="1",source="measured"} 1',
      'h_bucket{le="+Inf",source="measured"} 2',
      'h_sum{source="measured"} 0.5',
      'h_count{source="measured"} 2',
      'h_count{source="agent"} 5',
      "# TYPE c counter",
      'c{name="a \\"quoted\\" \\\\ line\\n"} 3 1700000000000',
      "",
    ].join("\n"),
  );
  expect(count(scrape, "h", { source: "measured" })).toBe(2);
  expect(count(scrape, "h")).toBe(7);
  expect(value(scrape, "c", { name: 'a "quoted" \\ line\n' })).toBe(3);
  expect(() => parseMetrics("c{name=unquoted} 1")).toThrow("bad labels");
  expect(() => parseMetrics("not a metric line at all")).toThrow("not a Prometheus line");
});
