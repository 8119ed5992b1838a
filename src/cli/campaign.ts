/**
 * `voice-agent campaign create|list|show|pause|resume|cancel`: starts and follows calling campaigns
 * on a running voice-agent (`/campaigns`), found as `call` finds it. The service checks every
 * setting; a refusal is printed as the service worded it (naming the field) with the flag that set
 * it. Exit 0 done, 1 the service refused, 2 a usage error or no service to talk to.
 */
import { type ParseArgsConfig, parseArgs } from "node:util";
import { WEEKDAYS } from "../campaigns/schedule.ts";
import { describeNetworkError } from "../network-errors.ts";
import type { Campaign, CampaignLeadDetail, CampaignSummary } from "../store/campaigns.ts";
import { type CallIo, e164Problem, type FoundService, findService } from "./call.ts";
import { SERVICE_ENV_FILE } from "./env-file.ts";

export const CAMPAIGN_USAGE = `Usage: campaign ACTION … [--env-file PATH] [--server URL] [--secret S]
  campaign create --name N --timezone ZONE (--leads all_new | --lead-ids ID,… | --lead-ids-file F)
                  [--from +E164] [--days mon,tue,…] [--start HH:MM] [--end HH:MM]
                  [--max-concurrent N] [--max-per-minute N] [--max-attempts N]
                  [--retry-no-answer MIN] [--retry-busy MIN] [--retry-failed MIN]
                  [--retry-voicemail MIN] [--retry-callback MIN] [--retry-no-decision]
  campaign create --json FILE
  campaign list
  campaign show ID [--leads]
  campaign pause|resume|cancel ID

Starts and follows campaigns on a running voice-agent: it calls the leads on its own, inside the
calling hours in each lead's own zone, within its limits, and calls again after what happened.
  create           a campaign; prints its id, how many leads it holds and each lead skipped, and why
    --name N           what to call it
    --timezone ZONE    IANA zone of leads that name none, e.g. America/Chicago
    --leads all_new    every lead with a phone number, never called and in no campaign
    --lead-ids ID,…    these stored leads; --lead-ids-file F: their ids in a file, one a line
    --from +E164       caller ID, a number of the Twilio account (default: TWILIO_PHONE_NUMBER)
    --days D,D,…       calling days, of mon tue wed thu fri sat sun (default: mon,tue,wed,thu,fri)
    --start, --end     calling hours, HH:MM in each lead's zone (default: 09:00 to 20:00)
    --max-concurrent N calls at once (default 5); --max-per-minute N: new calls a minute (10)
    --max-attempts N   calls to one lead at most (default 3)
    --retry-… MIN      minutes before calling again after no-answer (default 120), busy (30),
                       failed (60), voicemail (a message left, 1440), callback (asked for, no time
                       given, 1440)
    --retry-no-decision  call again after no_decision (by default the lead is done)
    --json FILE        the whole POST /campaigns body from a JSON file, instead of these flags
  list             every campaign, newest first: id, state, name, when created
  show ID          its settings, leads by state, results, attempts, the next attempts due;
                   --leads: each lead with its attempts (number, state, call SID, outcome)
  pause ID         no new attempts (calls under way go on); resume ID: attempts again
  cancel ID        for good: its leads not being called are never called
  --env-file PATH  the service's settings, e.g. ${SERVICE_ENV_FILE} (needs sudo)
  --server URL     the service's base URL (default: the one on this machine, else
                   SERVER_EXTERNAL_URL)
  --secret S       the endpoint secret (default: ENDPOINT_SECRET)
Exit status: 0 done, 1 the service refused (its reason, naming the field, on stderr), 2 a usage
error or no voice-agent could be reached.`;

const EXIT_REFUSED = 1;
/** A usage error, or no service to talk to. */
const EXIT_USAGE = 2;
const REQUEST_TIMEOUT_MS = 30_000;
/** The largest page the listings serve. */
const PAGE = 200;

type Options = NonNullable<ParseArgsConfig["options"]>;
type Values = Record<string, string | boolean | undefined>;

const SERVICE_OPTIONS: Options = {
  "env-file": { type: "string" },
  server: { type: "string" },
  secret: { type: "string" },
  help: { type: "boolean", short: "h" },
};

/** The whole-number flags of `create`, and the body field each sets. */
const NUMBER_FLAGS: Record<string, string> = {
  "max-concurrent": "max_concurrent",
  "max-per-minute": "max_per_minute",
  "max-attempts": "max_attempts",
  "retry-no-answer": "retry_after_minutes.no_answer",
  "retry-busy": "retry_after_minutes.busy",
  "retry-failed": "retry_after_minutes.failed",
  "retry-voicemail": "retry_after_minutes.no_answer_voicemail_left",
  "retry-callback": "retry_after_minutes.callback_requested",
};

/** The flags of `create` that make up the body (all but --json and the service's). */
const BODY_FLAGS = [
  "name",
  "timezone",
  "leads",
  "lead-ids",
  "lead-ids-file",
  "from",
  "days",
  "start",
  "end",
  "retry-no-decision",
  ...Object.keys(NUMBER_FLAGS),
];

/** The flag that sets each body field, to name it next to the service's refusal. */
const FLAG_OF: Record<string, string> = {
  "body.name": "--name",
  "body.timezone": "--timezone",
  "body.leads": "--leads",
  "body.lead_ids": "--lead-ids",
  "body.from": "--from",
  "body.window.days": "--days",
  "body.window.start": "--start",
  "body.window.end": "--end",
  "body.retry_no_decision": "--retry-no-decision",
  ...Object.fromEntries(
    Object.entries(NUMBER_FLAGS).map(([flag, field]) => [`body.${field}`, `--${flag}`]),
  ),
};

const ACTIONS: Record<string, { options: Options; ids: number }> = {
  create: {
    ids: 0,
    options: {
      ...SERVICE_OPTIONS,
      ...Object.fromEntries(
        BODY_FLAGS.map((flag) => [
          flag,
          { type: flag === "retry-no-decision" ? "boolean" : "string" } as const,
        ]),
      ),
      json: { type: "string" },
    },
  },
  list: { ids: 0, options: SERVICE_OPTIONS },
  show: { ids: 1, options: { ...SERVICE_OPTIONS, leads: { type: "boolean" } } },
  pause: { ids: 1, options: SERVICE_OPTIONS },
  resume: { ids: 1, options: SERVICE_OPTIONS },
  cancel: { ids: 1, options: SERVICE_OPTIONS },
};

export async function runCampaignCommand(
  argv: string[],
  env: Record<string, string | undefined>,
  io: CallIo,
): Promise<number> {
  const [action, ...rest] = argv;
  if (action === "--help" || action === "-h" || action === "help") {
    io.out(CAMPAIGN_USAGE);
    return 0;
  }
  const spec = action === undefined ? undefined : ACTIONS[action];
  if (!action || !spec) {
    io.err(
      `${action?.startsWith("-") ? `the action comes first, then ${action}` : action ? `unknown action: ${action}` : "campaign needs an action"} (create, list, show, pause, resume or cancel)\n\n${CAMPAIGN_USAGE}`,
    );
    return EXIT_USAGE;
  }
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: spec.options,
    }) as { values: Values; positionals: string[] });
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${CAMPAIGN_USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help) {
    io.out(CAMPAIGN_USAGE);
    return 0;
  }
  if (positionals.length !== spec.ids) {
    io.err(
      spec.ids === 0
        ? `campaign ${action} takes no argument, got ${positionals.join(" ")}`
        : `campaign ${action} needs one campaign id (campaign list shows them)${positionals.length > 1 ? `, got ${positionals.join(" ")}` : ""}`,
    );
    return EXIT_USAGE;
  }
  const id = positionals[0] ?? "";

  let body: Record<string, unknown> | undefined;
  if (action === "create") {
    const built = await createBody(values, io);
    if (typeof built === "string") {
      io.err(built);
      return EXIT_USAGE;
    }
    body = built;
  }

  const found = await findService(values, env, io);
  // findService has said why: a usage error or no service to talk to.
  if (typeof found === "number") return EXIT_USAGE;
  const flags = action === "create" && !values.json;
  const service = new Service(found, io, (field) => {
    if (!flags) return undefined;
    const flag = Object.entries(FLAG_OF).find(
      ([name]) => field === name || field.startsWith(`${name}.`),
    )?.[1];
    return flag === "--lead-ids" && values["lead-ids-file"] ? "--lead-ids-file" : flag;
  });
  const path = `/campaigns/${encodeURIComponent(id)}`;
  switch (action) {
    case "create":
      return create(service, body ?? {});
    case "list":
      return list(service);
    case "show":
      return show(service, path, values.leads === true);
    default: {
      const answer = await service.ask("POST", `${path}/${action}`);
      if (typeof answer === "number") return answer;
      const campaign = answer as Partial<Campaign>;
      io.out(`${campaign.id ?? id} is ${campaign.state ?? "in an unknown state"}`);
      return 0;
    }
  }
}

/** The POST /campaigns body the flags (or --json) ask for; a string is the usage error. */
async function createBody(values: Values, io: CallIo): Promise<Record<string, unknown> | string> {
  const given = BODY_FLAGS.filter((flag) => values[flag] !== undefined);
  if (typeof values.json === "string") {
    if (given.length > 0)
      return `--json FILE is the whole body: give no ${given.map((flag) => `--${flag}`).join(", ")} with it`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await io.readFile(values.json));
    } catch (error) {
      return `could not read the campaign from ${values.json}: ${(error as Error).message}`;
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      return `${values.json} holds no JSON object: write the body of POST /campaigns, e.g. {"name": …, "leads": "all_new", …}`;
    return parsed as Record<string, unknown>;
  }
  for (const flag of ["name", "timezone"])
    if (typeof values[flag] !== "string") return `--${flag} is required\n\n${CAMPAIGN_USAGE}`;
  const sources = ["leads", "lead-ids", "lead-ids-file"].filter((flag) => values[flag]);
  if (sources.length !== 1)
    return sources.length === 0
      ? "say which leads: --leads all_new, --lead-ids ID,ID… or --lead-ids-file FILE"
      : `give one of --leads, --lead-ids and --lead-ids-file, not ${sources.map((flag) => `--${flag}`).join(" and ")}`;
  const body: Record<string, unknown> = { name: values.name, timezone: values.timezone };
  if (typeof values.leads === "string") body.leads = values.leads;
  let ids: string | undefined;
  let from = "--lead-ids";
  if (typeof values["lead-ids"] === "string") ids = values["lead-ids"];
  if (typeof values["lead-ids-file"] === "string") {
    from = values["lead-ids-file"];
    try {
      ids = await io.readFile(values["lead-ids-file"]);
    } catch (error) {
      return `could not read ${values["lead-ids-file"]}: ${(error as Error).message}`;
    }
  }
  if (ids !== undefined) {
    const list = ids.split(/[\s,]+/).filter(Boolean);
    if (list.length === 0) return `${from} names no lead id`;
    body.lead_ids = list;
  }
  if (typeof values.from === "string") {
    const problem = e164Problem("--from", values.from);
    if (problem) return problem;
    body.from = values.from;
  }
  const days =
    typeof values.days === "string"
      ? values.days
          .split(",")
          .map((day) => day.trim().toLowerCase())
          .filter(Boolean)
      : ["mon", "tue", "wed", "thu", "fri"];
  const notDays = days.filter((day) => !(WEEKDAYS as readonly string[]).includes(day));
  if (notDays.length > 0 || days.length === 0)
    return `--days ${values.days}: write days as ${WEEKDAYS.join(",")} (any of them, comma-separated)`;
  body.window = {
    days,
    start: typeof values.start === "string" ? values.start : "09:00",
    end: typeof values.end === "string" ? values.end : "20:00",
  };
  const retry: Record<string, number> = {};
  for (const [flag, field] of Object.entries(NUMBER_FLAGS)) {
    const value = values[flag];
    if (typeof value !== "string") continue;
    if (!/^\d+$/.test(value)) return `--${flag} ${value}: expected a whole number`;
    const [head = "", sub] = field.split(".");
    if (sub) retry[sub] = Number(value);
    else body[head] = Number(value);
  }
  if (Object.keys(retry).length > 0) body.retry_after_minutes = retry;
  if (values["retry-no-decision"]) body.retry_no_decision = true;
  return body;
}

/** Requests to the service found, and what to say when one fails. */
class Service {
  constructor(
    private readonly found: FoundService,
    readonly io: CallIo,
    /** The flag that set a refused field (none when the body came from --json). */
    private readonly flagOf: (field: string) => string | undefined,
  ) {}

  /** The answer's JSON, or the exit code after saying why there is none. */
  async ask(method: "GET" | "POST", path: string, body?: unknown): Promise<unknown> {
    const { target, secret } = this.found;
    const url = `${target.url}${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        // A redirect would carry the secret on to wherever it points: reported instead.
        redirect: "manual",
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(secret ? { authorization: `Bearer ${secret}` } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      const name = (error as Error).name;
      if (method === "POST" && (name === "TimeoutError" || name === "AbortError"))
        this.io.err(
          `${url} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s: it may have been done all the same; check with campaign list or campaign show before trying again`,
        );
      else
        this.io.err(
          `no voice-agent answered: ${describeNetworkError(error, target.url, REQUEST_TIMEOUT_MS)} — is it running there, and is ${target.source} right?`,
        );
      return EXIT_USAGE;
    }
    if (response.status >= 300 && response.status < 400) {
      this.io.err(
        `${url} redirects (${response.status}) to ${response.headers.get("location") ?? "elsewhere"}: nothing was sent on; give the service's own URL`,
      );
      return EXIT_USAGE;
    }
    const text = await response.text().catch(() => "");
    let reply: unknown;
    try {
      reply = JSON.parse(text);
    } catch {
      reply = undefined;
    }
    if (response.ok) {
      if (typeof reply === "object" && reply !== null) return reply;
      this.io.err(
        `${url} answered ${response.status}, but not as a voice-agent: give the service's base URL`,
      );
      return EXIT_USAGE;
    }
    const { error, code, field } = (reply ?? {}) as Record<string, string | undefined>;
    if (code === undefined && response.status >= 500) {
      this.io.err(
        `${url} answered ${response.status} ${response.statusText}: something in front of the service answered; is voice-agent running behind ${target.url}?`,
      );
      return EXIT_USAGE;
    }
    this.io.err(`${url} refused (${response.status}): ${error ?? response.statusText}`);
    const hint = this.#hint(response.status, code, error, field);
    if (hint) this.io.err(hint);
    return EXIT_REFUSED;
  }

  #hint(
    status: number,
    code: string | undefined,
    error: string | undefined,
    field: string | undefined,
  ): string | undefined {
    const { secret, secretFrom, envFile } = this.found;
    if (status === 401) {
      if (secret)
        return `the secret was refused: check ${secretFrom} against the service's ENDPOINT_SECRET`;
      return envFile
        ? `the service wants a secret and ${envFile} sets no ENDPOINT_SECRET: pass --secret`
        : `the service wants a secret: pass --secret, set ENDPOINT_SECRET, or read the service's with --env-file ${SERVICE_ENV_FILE} (with sudo)`;
    }
    if (code === "NOT_FOUND" && error?.startsWith("No route"))
      return "this voice-agent has no campaigns (an older version?), or --server is not its base URL";
    if (code === "PAYLOAD_TOO_LARGE")
      return "too many lead ids for one request (about 1,400 fit): split them over campaigns, or use --leads all_new";
    if (code === "INTEGRATION_NOT_CONFIGURED")
      return "the service cannot place calls yet: finish its configuration (voice-agent setup)";
    const flag = field ? this.flagOf(field) : undefined;
    if (flag) return `check ${flag}`;
    return undefined;
  }

  /** Every page of a listing, up to one shorter than PAGE. */
  async all<T>(path: string, key: string): Promise<T[] | number> {
    const items: T[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const answer = await this.ask("GET", `${path}?limit=${PAGE}&offset=${offset}`);
      if (typeof answer === "number") return answer;
      const page = (answer as Record<string, unknown>)[key];
      if (!Array.isArray(page)) {
        this.io.err(
          `${this.found.target.url}${path} answered without ${key}: is it a voice-agent?`,
        );
        return EXIT_USAGE;
      }
      items.push(...(page as T[]));
      if (page.length < PAGE) return items;
    }
  }
}

async function create(service: Service, body: Record<string, unknown>): Promise<number> {
  const answer = await service.ask("POST", "/campaigns", body);
  if (typeof answer === "number") return answer;
  const {
    campaign,
    leads,
    skipped = [],
  } = answer as {
    campaign?: Partial<Campaign>;
    leads?: number;
    skipped?: { lead_id: string; reason: string }[];
  };
  const io = service.io;
  io.out(
    `created ${campaign?.id} "${campaign?.name}": ${plural(leads ?? 0, "lead")}, ${skipped.length} skipped`,
  );
  for (const { lead_id, reason } of skipped) io.out(`skipped ${lead_id}: ${reason}`);
  io.out(`follow it with: voice-agent campaign show ${campaign?.id}`);
  return 0;
}

async function list(service: Service): Promise<number> {
  const campaigns = await service.all<Campaign>("/campaigns", "campaigns");
  if (typeof campaigns === "number") return campaigns;
  if (campaigns.length === 0) {
    service.io.out("no campaigns");
    return 0;
  }
  const width = (pick: (campaign: Campaign) => string) =>
    Math.max(...campaigns.map((campaign) => pick(campaign).length));
  const ids = width((campaign) => campaign.id);
  const states = width((campaign) => campaign.state);
  const names = width((campaign) => campaign.name);
  for (const { id, state, name, created_at } of campaigns)
    service.io.out(
      `${id.padEnd(ids)}  ${state.padEnd(states)}  ${name.padEnd(names)}  ${created_at}`,
    );
  return 0;
}

async function show(service: Service, path: string, withLeads: boolean): Promise<number> {
  const answer = await service.ask("GET", path);
  if (typeof answer === "number") return answer;
  const campaign = answer as Campaign & { progress?: CampaignSummary };
  const { progress } = campaign;
  const out = (line: string) => service.io.out(line);
  const retry = Object.entries(campaign.retry_after_minutes ?? {})
    .map(([outcome, minutes]) => `${outcome} ${minutes} min`)
    .join(", ");
  out(`${campaign.id} "${campaign.name}": ${campaign.state}`);
  out(`  created ${campaign.created_at}, updated ${campaign.updated_at}`);
  out(
    `  scenario ${campaign.scenario}, caller ID ${campaign.from}, zone of leads that name none ${campaign.timezone}`,
  );
  out(
    `  calling hours ${campaign.window?.days?.join(",")} ${campaign.window?.start}–${campaign.window?.end} in each lead's zone`,
  );
  out(
    `  at most ${campaign.max_concurrent} calls at once, ${campaign.max_per_minute} new a minute, ${plural(campaign.max_attempts, "attempt")} a lead`,
  );
  out(
    `  calls again after ${retry}; no_decision ${campaign.retry_no_decision ? "called again" : "final"}`,
  );
  if (progress) {
    out(`leads: ${counts(progress.leads, true)}`);
    out(`results: ${counts(progress.results) || "none yet"}`);
    const { total = 0, ...attempts } = progress.attempts ?? {};
    out(`attempts: ${total}${total > 0 ? ` (${counts(attempts)})` : ""}`);
    out(`outcomes: ${counts(progress.outcomes) || "none yet"}`);
    const next = progress.next_attempts ?? [];
    out(next.length > 0 ? "next attempts:" : "next attempts: none");
    for (const { lead_id, at } of next) out(`  ${lead_id} at ${at}`);
  }
  if (!withLeads) return 0;
  const leads = await service.all<CampaignLeadDetail>(`${path}/leads`, "leads");
  if (typeof leads === "number") return leads;
  out(`leads (${leads.length}):`);
  for (const lead of leads) {
    const why = lead.result ? ` (${lead.result})` : "";
    const next = lead.next_attempt_at ? `, next at ${lead.next_attempt_at}` : "";
    out(
      `  ${lead.lead_id} ${lead.first_name} ${lead.last_name} ${lead.phone} (${lead.timezone}): ${lead.state}${why}, ${plural(lead.attempts, "attempt")}${next}`,
    );
    for (const attempt of lead.attempts_made ?? []) {
      const outcome = attempt.outcome ?? attempt.call?.outcome ?? "no outcome";
      const call =
        attempt.call && attempt.state === "placed" ? `, call ${attempt.call.status}` : "";
      const error = attempt.error ? ` (${attempt.error})` : "";
      out(
        `    #${attempt.number} ${attempt.state} ${attempt.call_sid ?? "no call"} ${outcome}${call}${error}`,
      );
    }
  }
  return 0;
}

/** "pending 2, calling 0, …"; only the non-zero ones unless `all`. */
function counts(record: Record<string, number> | undefined, all = false): string {
  return Object.entries(record ?? {})
    .filter(([, count]) => all || count > 0)
    .map(([key, count]) => `${key} ${count}`)
    .join(", ");
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
