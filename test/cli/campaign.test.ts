/**
 * `voice-agent campaign …` against the real service with the fake Twilio, on a clock the test
 * moves (the dialer runs a round only when asked): create from flags and from a JSON file, list,
 * show with the counts and each lead's attempts, pause/resume/cancel, and the exit statuses.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { CAMPAIGN_USAGE, runCampaignCommand } from "../../src/cli/campaign.ts";
import type { Campaign } from "../../src/store/campaigns.ts";
import { freePort } from "../fakes/twilio-webhooks.ts";
import { type CampaignHarness, startCampaignHarness } from "../helpers/campaign-harness.ts";
import { FROM, SECRET } from "../helpers/outbound-harness.ts";

/** A Monday, 09:00 in Chicago, 10:00 in New York. */
const START = "2026-03-02T15:00:00.000Z";

let h: CampaignHarness;
/** Ids of the stored leads, by first name. */
const lead: Record<string, string> = {};
/** Every line the command wrote, to check the secret never shows. */
const printed: string[] = [];

beforeAll(async () => {
  h = await startCampaignHarness(START);
  const people = [
    { first_name: "Ann", last_name: "Able", phone: "+15552000001" },
    { first_name: "Bob", last_name: "Baker", phone: "+15552000002" },
    { first_name: "Cid", last_name: "Nophone" },
    { first_name: "Dee", last_name: "Dunn", phone: "+15552000004" },
    { first_name: "Eve", last_name: "Ezra", phone: "+15552000005" },
    { first_name: "Fay", last_name: "Fox", phone: "+15552000006" },
  ];
  const response = await h.request("POST", "/leads/import", people);
  const { stored } = (await response.json()) as { stored: { row: number; id: string }[] };
  for (const { row, id } of stored) lead[people[row - 1]?.first_name ?? ""] = id;
  expect(Object.keys(lead)).toHaveLength(6);
});
afterAll(() => h.stop());

/** Runs the command; the service's address and secret are added unless `bare`. */
async function run(argv: string[], { files = {} as Record<string, string>, bare = false } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCampaignCommand(
    bare ? argv : [...argv, "--server", h.service.url, "--secret", SECRET],
    {},
    {
      out: (line) => out.push(line),
      err: (line) => err.push(line),
      readFile: async (path) => {
        const text = files[path];
        if (text === undefined)
          throw new Error(`ENOENT: no such file or directory, open '${path}'`);
        return text;
      },
    },
  );
  printed.push(...out, ...err);
  return { code, out, err };
}

const idIn = (line: string | undefined) => /\b(cmp_[\w-]+)/.exec(line ?? "")?.[1] ?? "";

async function get<T>(path: string): Promise<T> {
  const response = await h.request("GET", path);
  expect(response.status).toBe(200);
  return (await response.json()) as T;
}

let flagged = "";
let dialled = "";

describe("create", () => {
  test("from flags: the settings the service keeps are those given, skipped leads with why", async () => {
    const { code, out, err } = await run([
      "create",
      "--name",
      "Spring leads",
      "--timezone",
      "America/New_York",
      "--lead-ids",
      `${lead.Ann},${lead.Bob}, ${lead.Cid},lead_nope`,
      "--from",
      FROM,
      "--days",
      "sat,Sun",
      "--start",
      "10:00",
      "--end",
      "18:30",
      "--max-concurrent",
      "2",
      "--max-per-minute",
      "4",
      "--max-attempts",
      "5",
      "--retry-no-answer",
      "90",
      "--retry-busy",
      "15",
      "--retry-failed",
      "45",
      "--retry-voicemail",
      "600",
      "--retry-callback",
      "300",
      "--retry-no-decision",
    ]);
    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(out[0]).toBe(`via ${h.service.url} (--server)`);
    flagged = idIn(out[1]);
    expect(out[1]).toBe(`created ${flagged} "Spring leads": 2 leads, 2 skipped`);
    expect(out).toContain(`skipped ${lead.Cid}: the lead has no phone number`);
    expect(out).toContain("skipped lead_nope: no such lead");
    expect(out.at(-1)).toBe(`follow it with: voice-agent campaign show ${flagged}`);

    const campaign = await get<Campaign>(`/campaigns/${flagged}`);
    expect(campaign).toMatchObject({
      name: "Spring leads",
      state: "active",
      timezone: "America/New_York",
      from: FROM,
      window: { days: ["sat", "sun"], start: "10:00", end: "18:30" },
      max_concurrent: 2,
      max_per_minute: 4,
      max_attempts: 5,
      retry_after_minutes: {
        no_answer: 90,
        busy: 15,
        failed: 45,
        no_answer_voicemail_left: 600,
        callback_requested: 300,
      },
      retry_no_decision: true,
    });
  });

  test("the defaults: Monday to Friday, 09:00 to 20:00; leads from a file", async () => {
    const { code, out } = await run(
      ["create", "--name", "Weekday", "--timezone", "America/Chicago", "--lead-ids-file", "ids"],
      { files: { ids: `${lead.Dee}\n${lead.Eve}\n` } },
    );
    expect(code).toBe(0);
    expect(out[1]).toEndWith(`"Weekday": 2 leads, 0 skipped`);
    dialled = idIn(out[1]);
    const campaign = await get<Campaign>(`/campaigns/${dialled}`);
    expect(campaign.window).toEqual({
      days: ["mon", "tue", "wed", "thu", "fri"],
      start: "09:00",
      end: "20:00",
    });
    expect(campaign).toMatchObject({
      max_concurrent: 5,
      max_attempts: 3,
      retry_no_decision: false,
    });
  });

  test("a window that ends before it starts: exit 1, the service's words naming body.window.end", async () => {
    const { code, out, err } = await run([
      "create",
      "--name",
      "Backwards",
      "--timezone",
      "America/Chicago",
      "--leads",
      "all_new",
      "--start",
      "20:00",
      "--end",
      "09:00",
    ]);
    expect(code).toBe(1);
    expect(err).toEqual([
      `${h.service.url}/campaigns refused (400): body.window.end: must be after window.start, the same day`,
      "check --end",
    ]);
    expect(out).toEqual([`via ${h.service.url} (--server)`]);
  });

  test("an out-of-range limit: exit 1, the field and the flag named", async () => {
    const { code, err } = await run([
      "create",
      "--name",
      "Zero",
      "--timezone",
      "America/Chicago",
      "--leads",
      "all_new",
      "--max-concurrent",
      "0",
    ]);
    expect(code).toBe(1);
    expect(err[0]).toContain("refused (400): body.max_concurrent");
    expect(err[1]).toBe("check --max-concurrent");
  });

  test("no lead to call in the file: exit 1, the field and the flag named", async () => {
    const { code, err } = await run(
      ["create", "--name", "None", "--timezone", "America/Chicago", "--lead-ids-file", "ids"],
      { files: { ids: "lead_gone,lead_lost" } },
    );
    expect(code).toBe(1);
    expect(err).toEqual([
      `${h.service.url}/campaigns refused (400): body.lead_ids: no lead to call (lead_gone: no such lead)`,
      "check --lead-ids-file",
    ]);
  });

  test("--json FILE: the whole body from the file", async () => {
    const body = {
      name: "From JSON",
      leads: "all_new",
      timezone: "America/Denver",
      window: { days: ["tue"], start: "08:00", end: "12:00" },
    };
    const { code, out } = await run(["create", "--json", "body.json"], {
      files: { "body.json": JSON.stringify(body) },
    });
    expect(code).toBe(0);
    // Fay is the only lead never called and in no campaign.
    expect(out[1]).toEndWith(`"From JSON": 1 lead, 0 skipped`);
    const campaign = await get<Campaign>(`/campaigns/${idIn(out[1])}`);
    expect(campaign).toMatchObject({ timezone: "America/Denver", window: body.window });
  });

  test("--json with a refused field: the field named, no flag", async () => {
    const { code, err } = await run(["create", "--json", "body.json"], {
      files: {
        "body.json": JSON.stringify({
          name: "Bad",
          leads: "all_new",
          timezone: "America/Chicago",
          window: { days: ["mon"], start: "10:00", end: "09:00" },
        }),
      },
    });
    expect(code).toBe(1);
    expect(err).toEqual([
      `${h.service.url}/campaigns refused (400): body.window.end: must be after window.start, the same day`,
    ]);
  });
});

describe("list and show", () => {
  test("list: one line per campaign, newest first, with id, state, name and created", async () => {
    const { code, out } = await run(["list"]);
    expect(code).toBe(0);
    const lines = out.slice(1);
    expect(lines).toHaveLength(3);
    expect(lines.map((line) => line.split(/\s{2,}/))).toEqual([
      [expect.stringMatching(/^cmp_/), "active", "From JSON", START],
      [dialled, "active", "Weekday", START],
      [flagged, "active", "Spring leads", START],
    ]);
  });

  test("show: settings, leads by state, results, attempts, next attempts", async () => {
    // One round: Dee and Eve are rung (Spring leads waits for Saturday); Dee books, Eve does not answer.
    const calls = await h.round();
    const byNumber = new Map(calls.map((call) => [call.to, call.sid]));
    expect(byNumber.size).toBe(2);
    const dee = byNumber.get("+15552000004") ?? "";
    const eve = byNumber.get("+15552000005") ?? "";
    await h.end(dee, { outcome: "appointment_booked" });
    await h.end(eve, { status: "no-answer" });
    await h.round();

    const { code, out } = await run(["show", dialled]);
    expect(code).toBe(0);
    expect(out.slice(1)).toEqual([
      `${dialled} "Weekday": active`,
      `  created ${START}, updated ${START}`,
      `  scenario insurance-followup, caller ID ${FROM}, zone of leads that name none America/Chicago`,
      "  calling hours mon,tue,wed,thu,fri 09:00–20:00 in each lead's zone",
      "  at most 5 calls at once, 10 new a minute, 3 attempts a lead",
      "  calls again after no_answer 120 min, busy 30 min, failed 60 min, no_answer_voicemail_left 1440 min, callback_requested 1440 min; no_decision final",
      "leads: pending 1, calling 0, done 1, unknown 0, cancelled 0",
      "results: appointment_booked 1",
      "attempts: 2 (ended 2)",
      expect.stringMatching(
        /^outcomes: (appointment_booked 1, no_answer 1|no_answer 1, appointment_booked 1)$/,
      ),
      "next attempts:",
      `  ${lead.Eve} at 2026-03-02T17:00:00.000Z`,
    ]);

    const withLeads = await run(["show", dialled, "--leads"]);
    expect(withLeads.code).toBe(0);
    const leads = withLeads.out.slice(withLeads.out.indexOf("leads (2):"));
    const [first, second] = [lead.Dee, lead.Eve].sort();
    const lines: Record<string, string[]> = {
      [lead.Dee ?? ""]: [
        `  ${lead.Dee} Dee Dunn +15552000004 (America/Chicago): done (appointment_booked), 1 attempt`,
        `    #1 ended ${dee} appointment_booked`,
      ],
      [lead.Eve ?? ""]: [
        `  ${lead.Eve} Eve Ezra +15552000005 (America/Chicago): pending, 1 attempt, next at 2026-03-02T17:00:00.000Z`,
        `    #1 ended ${eve} no_answer`,
      ],
    };
    expect(leads).toEqual([
      "leads (2):",
      ...(lines[first ?? ""] ?? []),
      ...(lines[second ?? ""] ?? []),
    ]);
  });

  test("an unknown id: exit 1 with the service's 404", async () => {
    const { code, err } = await run(["show", "cmp_nope"]);
    expect(code).toBe(1);
    expect(err).toEqual([
      `${h.service.url}/campaigns/cmp_nope refused (404): No campaign cmp_nope`,
    ]);
    const paused = await run(["pause", "cmp_nope"]);
    expect(paused.code).toBe(1);
    expect(paused.err[0]).toContain("refused (404): No campaign cmp_nope");
  });
});

describe("pause, resume, cancel", () => {
  test("each prints the new state; a move the state forbids is a 409, exit 1", async () => {
    const pause = await run(["pause", flagged]);
    expect(pause).toMatchObject({ code: 0, err: [] });
    expect(pause.out.at(-1)).toBe(`${flagged} is paused`);
    expect((await get<Campaign>(`/campaigns/${flagged}`)).state).toBe("paused");

    const again = await run(["pause", flagged]);
    expect(again.code).toBe(1);
    expect(again.err).toEqual([
      `${h.service.url}/campaigns/${flagged}/pause refused (409): Campaign ${flagged} is paused: it cannot be paused`,
    ]);

    expect((await run(["resume", flagged])).out.at(-1)).toBe(`${flagged} is active`);
    expect((await run(["cancel", flagged])).out.at(-1)).toBe(`${flagged} is cancelled`);
    const resume = await run(["resume", flagged]);
    expect(resume.code).toBe(1);
    expect(resume.err[0]).toContain(
      `(409): Campaign ${flagged} is cancelled: it cannot be resumed`,
    );

    const shown = await run(["show", flagged]);
    expect(shown.out).toContain(`${flagged} "Spring leads": cancelled`);
    expect(shown.out).toContain("leads: pending 0, calling 0, done 0, unknown 0, cancelled 2");
  });
});

describe("exit statuses", () => {
  test("no service at the address: exit 2", async () => {
    const server = `http://127.0.0.1:${freePort()}`;
    const { code, err } = await run(["list", "--server", server, "--secret", SECRET], {
      bare: true,
    });
    expect(code).toBe(2);
    expect(err[0]).toContain("no voice-agent answered");
    expect(err[0]).toContain("refused the connection");
  });

  test("voice-agent campaign: dispatched by the entry point, with its exit status", () => {
    const server = `http://127.0.0.1:${freePort()}`;
    const result = Bun.spawnSync(
      [process.execPath, "src/main.ts", "campaign", "list", "--server", server],
      { cwd: resolve(import.meta.dir, "../.."), env: { PATH: process.env.PATH ?? "" } },
    );
    expect(result.exitCode).toBe(2);
    expect(result.stderr.toString()).toContain("no voice-agent answered");
  });

  test("a wrong secret: exit 1, where the secret came from", async () => {
    const { code, err } = await run(
      ["list", "--server", h.service.url, "--secret", "not-the-endpoint-secret"],
      { bare: true },
    );
    expect(code).toBe(1);
    expect(err[0]).toContain("refused (401)");
    expect(err[1]).toBe(
      "the secret was refused: check --secret against the service's ENDPOINT_SECRET",
    );
  });

  test.each([
    [[], "campaign needs an action"],
    [["start"], "unknown action: start"],
    [["--server", "http://127.0.0.1:1", "list"], "the action comes first, then --server"],
    [["list", "--bogus"], "Unknown option '--bogus'"],
    [["list", "extra"], "campaign list takes no argument, got extra"],
    [["show"], "campaign show needs one campaign id"],
    [
      ["pause", "a", "b"],
      "campaign pause needs one campaign id (campaign list shows them), got a b",
    ],
    [["show", "x", "--name", "y"], "Unknown option '--name'"],
    [["create", "--timezone", "UTC", "--leads", "all_new"], "--name is required"],
    [["create", "--name", "N", "--leads", "all_new"], "--timezone is required"],
    [["create", "--name", "N", "--timezone", "UTC"], "say which leads"],
    [
      ["create", "--name", "N", "--timezone", "UTC", "--leads", "all_new", "--lead-ids", "a"],
      "give one of --leads, --lead-ids and --lead-ids-file, not --leads and --lead-ids",
    ],
    [
      ["create", "--name", "N", "--timezone", "UTC", "--leads", "all_new", "--max-attempts", "3x"],
      "--max-attempts 3x: expected a whole number",
    ],
    [
      ["create", "--name", "N", "--timezone", "UTC", "--leads", "all_new", "--days", "mon,funday"],
      "--days mon,funday: write days as mon,tue,wed,thu,fri,sat,sun",
    ],
    [
      ["create", "--name", "N", "--timezone", "UTC", "--leads", "all_new", "--from", "555-1234"],
      "--from 555-1234: phone numbers are written in E.164",
    ],
    [
      ["create", "--json", "body.json", "--name", "N"],
      "--json FILE is the whole body: give no --name",
    ],
    [["create", "--json", "missing.json"], "could not read the campaign from missing.json: ENOENT"],
    [["create", "--json", "list.json"], "list.json holds no JSON object"],
    [
      ["create", "--name", "N", "--timezone", "UTC", "--lead-ids-file", "empty.txt"],
      "empty.txt names no lead id",
    ],
  ])("usage error %j: exit 2, nothing sent", async (argv, message) => {
    const before = h.twilio.calls.size;
    const { code, out, err } = await run(argv, {
      bare: true,
      files: { "body.json": "{}", "list.json": "[1]", "empty.txt": " \n" },
    });
    expect(code).toBe(2);
    expect(out).toEqual([]);
    expect(err.join("\n")).toContain(message);
    expect(h.twilio.calls.size).toBe(before);
  });

  test("--help: the usage on stdout, exit 0", async () => {
    for (const argv of [["--help"], ["show", "-h"]]) {
      const { code, out } = await run(argv, { bare: true });
      expect(code).toBe(0);
      expect(out).toEqual([CAMPAIGN_USAGE]);
    }
    expect(CAMPAIGN_USAGE).toContain("Exit status: 0 done, 1 the service refused");
    for (const line of CAMPAIGN_USAGE.split("\n")) expect(line.length).toBeLessThanOrEqual(100);
  });

  test("the secret is never printed", () => {
    expect(printed.length).toBeGreaterThan(20);
    for (const line of printed) expect(line).not.toContain(SECRET);
  });
});
