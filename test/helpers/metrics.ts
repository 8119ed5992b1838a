/**
 * Reads `/metrics` as Prometheus does, strictly: the text exposition format 0.0.4 (`# HELP`,
 * `# TYPE`, then `name{label="value",…} value` lines, label values with `\\`, `\"` and `\n`
 * escapes). Any other line fails the parse. (The npm parser parse-prometheus-text-format 1.1.1 was
 * tried first: it merges a labelled histogram's series and drops their counts.)
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  /** Family name → its declared type. */
  types: Map<string, string>;
  samples: Sample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: -?\\d+)?$`);
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;

function labelsOf(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const match = LABEL.exec(text);
    if (!match) throw new Error(`bad labels in: ${line}`);
    const [, key = "", raw = ""] = match;
    labels[key] = raw.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
  }
  return labels;
}

export function parseMetrics(text: string): Scrape {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("# HELP ")) continue;
    const type = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(
      line,
    );
    if (type) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    const sample = SAMPLE.exec(line);
    if (!sample) throw new Error(`not a Prometheus line: ${line}`);
    const [, name = "", labels, raw = ""] = sample;
    // As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case (prom-client: "Nan").
    const special = raw.toLowerCase();
    const value =
      special === "nan"
        ? Number.NaN
        : special === "+inf" || special === "inf"
          ? Infinity
          : special === "-inf"
            ? -Infinity
            : Number(raw);
    if (Number.isNaN(value) && special !== "nan") throw new Error(`bad value in: ${line}`);
    samples.push({ name, labels: labels ? labelsOf(labels, line) : {}, value });
  }
  return { types, samples };
}

/** The sum of the samples named `name` whose labels include `labels` (0 when there are none). */
export function value(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  return scrape.samples
    .filter(
      (sample) =>
        sample.name === name &&
        Object.entries(labels).every(([key, wanted]) => sample.labels[key] === wanted),
    )
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** How many observations a histogram holds, over the series whose labels include `labels`. */
export function count(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  return value(scrape, `${name}_count`, labels);
}

/** Whether a family is declared. */
export function declared(scrape: Scrape, name: string): boolean {
  return scrape.types.has(name);
}
