/**
 * The console's Campaigns view in headless Chromium against a service that dials (the fake Twilio,
 * a clock the test moves): three leads, one round placing two calls, one ending not interested and
 * one busy, a second round placing the third. The list shows the campaign and its counts; its view
 * shows the leads, their attempts and outcomes, follows the dialer on its own, and pauses, resumes
 * and cancels it (the API agrees each time). Each view is written as a screenshot to
 * test-output/console-campaigns/ (not committed) to be looked at. Without Chromium the browser part
 * is skipped; the API's refusals (no cookie, another origin, unknown ids, a move not allowed) are
 * checked either way.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import type { Campaign, CampaignLeadDetail, CampaignSummary } from "../../src/store/campaigns.ts";
import type { FakeCall } from "../fakes/twilio-rest-server.ts";
import { type CampaignHarness, startCampaignHarness } from "../helpers/campaign-harness.ts";
import { json } from "../helpers/http.ts";
import { haveChromium, offlinePage, warnWithoutChromium } from "../helpers/offline-browser.ts";
import { SECRET } from "../helpers/outbound-harness.ts";

warnWithoutChromium("the console's Campaigns view test");
setDefaultTimeout(60_000);

const SCREENSHOTS = join(import.meta.dir, "../../test-output/console-campaigns");
const NAME = "Spring renewals";
const EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LEADS = [
  { first_name: "Ada", last_name: "Lovelace", phone: "+15552000001" },
  { first_name: "Grace", last_name: "Hopper", phone: "+15552000002" },
  { first_name: "Alan", last_name: "Turing", phone: "+15552000003" },
];

let harness: CampaignHarness;
let campaignId: string;
/** The calls placed, by the lead's first name. */
const calls: Record<string, FakeCall> = {};
let browser: Browser | undefined;
let page: Page;
let blocked: string[];
const pageErrors: string[] = [];

/** The call placed to `phone` among `placed`. */
function callTo(placed: FakeCall[], phone: string): FakeCall {
  const call = placed.find((each) => each.to === phone);
  if (!call) throw new Error(`no call to ${phone} among ${placed.map((each) => each.to)}`);
  return call;
}

beforeAll(async () => {
  harness = await startCampaignHarness("2026-03-04T15:00:00.000Z");
  const imported = await json(await harness.request("POST", "/leads/import", LEADS));
  expect(imported.stored).toHaveLength(3);
  const created = await harness.request("POST", "/campaigns", {
    name: NAME,
    timezone: "America/Chicago",
    window: { days: EVERY_DAY, start: "00:00", end: "23:59" },
    lead_ids: imported.stored.map((lead: { id: string }) => lead.id),
    max_concurrent: 2,
  });
  expect(created.status).toBe(201);
  campaignId = (await json(created)).campaign.id;

  // Round one: two calls (the limit); Ada is not interested, Grace's line is busy.
  const first = await harness.round();
  expect(first).toHaveLength(2);
  calls.Ada = callTo(first, "+15552000001");
  calls.Grace = callTo(first, "+15552000002");
  harness.clock.advance(30_000);
  await harness.end(calls.Ada.sid, { outcome: "not_interested" });
  await harness.end(calls.Grace.sid, { status: "busy" });
  // Round two settles both (Ada done, Grace due again later) and rings Alan.
  harness.clock.advance(15_000);
  const second = await harness.round();
  calls.Alan = callTo(second, "+15552000003");

  if (!haveChromium) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  ({ browser, page, blocked } = await offlinePage());
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") pageErrors.push(message.text());
  });
});

afterAll(async () => {
  await browser?.close();
  await harness?.stop();
});

/** The session cookie, as a script signing in gets it. */
async function sessionCookie(): Promise<string> {
  const login = await fetch(`${harness.service.url}/console/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ secret: SECRET }),
  });
  expect(login.status).toBe(204);
  return (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
}

/** The campaign as the bearer API (`GET /campaigns/{id}`) has it. */
const viaApi = async () =>
  json(await harness.request("GET", `/campaigns/${campaignId}`)) as Promise<
    Campaign & { progress: CampaignSummary }
  >;

test("the console's campaign API: the cookie only, the console's origin only, 404, 409, 400", async () => {
  const base = `${harness.service.url}/console/api/campaigns`;
  const paths = [base, `${base}/${campaignId}`, `${base}/${campaignId}/leads`];
  // No cookie: 401, also with the bearer secret (the console's data is the cookie's).
  for (const path of paths) {
    expect((await fetch(path)).status).toBe(401);
    expect((await fetch(path, { headers: { authorization: `Bearer ${SECRET}` } })).status).toBe(
      401,
    );
  }
  for (const action of ["pause", "resume", "cancel"]) {
    const response = await fetch(`${base}/${campaignId}/${action}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(response.status).toBe(401);
    expect(await json(response)).toMatchObject({ code: "UNAUTHORIZED" });
  }

  const cookie = await sessionCookie();
  const post = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: { cookie, "content-type": "application/json", ...headers },
      body: "{}",
    });
  // Another site's page, even with the cookie: refused before anything moves.
  const foreign: Record<string, string>[] = [
    { origin: "https://evil.example" },
    { "sec-fetch-site": "cross-site" },
  ];
  for (const headers of foreign) {
    for (const action of ["pause", "cancel"]) {
      const refused = await post(`/${campaignId}/${action}`, headers);
      expect(refused.status).toBe(403);
    }
  }
  // Only JSON, as every console POST (a plain form from anywhere can send no such type).
  const plain = await fetch(`${base}/${campaignId}/pause`, {
    method: "POST",
    headers: { cookie, "content-type": "text/plain" },
    body: "{}",
  });
  expect(plain.status).toBe(415);
  expect((await viaApi()).state).toBe("active");

  // Unknown: 404 in the service's error shape; not an id: 400.
  const unknown = "cmp_00000000-0000-7000-8000-000000000000";
  for (const response of [
    await fetch(`${base}/${unknown}`, { headers: { cookie } }),
    await fetch(`${base}/${unknown}/leads`, { headers: { cookie } }),
    await post(`/${unknown}/pause`),
  ]) {
    expect(response.status).toBe(404);
    expect(await json(response)).toEqual({
      error: `No campaign ${unknown}`,
      code: "NOT_FOUND",
    });
  }
  for (const bad of [encodeURIComponent("cmp_\u0001"), "c".repeat(65)]) {
    expect((await fetch(`${base}/${bad}`, { headers: { cookie } })).status).toBe(400);
    expect((await post(`/${bad}/pause`)).status).toBe(400);
  }
  expect((await fetch(`${base}?limit=51`, { headers: { cookie } })).status).toBe(400);

  // A move not allowed from the state it is in: 409, as under /campaigns.
  const notPaused = await post(`/${campaignId}/resume`);
  expect(notPaused.status).toBe(409);
  expect(await json(notPaused)).toEqual({
    error: `Campaign ${campaignId} is active: it cannot be resumed`,
    code: "CAMPAIGN_STATE",
  });

  // What the view reads: the list with counts, the campaign with its moves, the leads.
  const listed = await json(await fetch(base, { headers: { cookie } }));
  expect(listed.campaigns[0]).toMatchObject({
    id: campaignId,
    state: "active",
    leads: { pending: 1, calling: 1, done: 1, unknown: 0, cancelled: 0 },
  });
  const detail = await json(await fetch(`${base}/${campaignId}`, { headers: { cookie } }));
  expect(detail).toMatchObject({ state: "active", actions: ["pause", "cancel"] });
  expect(detail.progress.results).toEqual({ not_interested: 1 });
  const { leads } = await json(await fetch(`${base}/${campaignId}/leads`, { headers: { cookie } }));
  expect(leads.map((lead: CampaignLeadDetail) => lead.state)).toEqual([
    "done",
    "pending",
    "calling",
  ]);
});

const shot = (name: string) =>
  page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

describe.skipIf(!haveChromium)("the Campaigns view in headless Chromium", () => {
  test("the list shows the campaign and its counts", async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${harness.service.url}/console`);
    await page.getByLabel("Endpoint secret").fill(SECRET);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: /Live calls/ }).waitFor();

    await page.getByRole("link", { name: "Campaigns" }).click();
    await page.getByRole("heading", { name: "Campaigns" }).waitFor();
    const row = page.locator(`#campaigns-table tbody tr[data-id="${campaignId}"]`);
    await row.waitFor();
    expect(await row.getByRole("link").textContent()).toBe(NAME);
    expect(await row.locator(".state").textContent()).toBe("active");
    for (const [column, count] of Object.entries({
      pending: "1",
      calling: "1",
      done: "1",
      unknown: "0",
    }))
      expect(await row.locator(`td.${column}`).textContent()).toBe(count);
    await shot("1-list");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("1-list-phone");
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test("its view: settings, counts, the leads with their attempts and outcomes, links to the calls", async () => {
    await page.getByRole("link", { name: NAME }).click();
    await page.getByRole("heading", { name: `${NAME} active` }).waitFor();
    expect(await page.locator("nav a[aria-current=page]").textContent()).toBe("Campaigns");
    const settings = await page.locator("#campaign-settings").textContent();
    expect(settings).toContain("Every day, 00:00–23:59 in each lead's zone");
    expect(settings).toContain("America/Chicago");
    expect(settings).toContain("2 at once, 10 new a minute");
    expect(settings).toContain("3 a lead");
    for (const [state, count] of Object.entries({
      pending: "1",
      calling: "1",
      done: "1",
      unknown: "0",
      cancelled: "0",
    }))
      expect(
        await page.locator(`#campaign-counts li[data-state="${state}"] strong`).textContent(),
      ).toBe(count);
    expect(await page.locator("#campaign-results").textContent()).toContain("not_interested1");
    // Grace is called again after the busy line's wait (30 minutes).
    expect(await page.locator("#campaign-next").textContent()).toContain("Grace Hopper");

    const leadRow = (name: string) =>
      page.locator("#campaign-leads tbody tr", { hasText: name }).first();
    const ada = leadRow("Ada Lovelace");
    expect(await ada.textContent()).toContain("+1••••••0001");
    expect(await ada.locator(".state").textContent()).toBe("done");
    expect(await ada.locator("ol.attempts li").textContent()).toBe(
      "Attempt 1: ended, not_interested",
    );
    expect(await ada.getByRole("link", { name: "Attempt 1" }).getAttribute("href")).toBe(
      `#call/${calls.Ada?.sid}`,
    );
    expect(await leadRow("Grace Hopper").locator("ol.attempts li").textContent()).toBe(
      "Attempt 1: ended, busy",
    );
    expect(await leadRow("Alan Turing").locator("ol.attempts li").textContent()).toStartWith(
      "Attempt 1: placed, ",
    );
    await shot("2-campaign");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("2-campaign-phone");
    await page.setViewportSize({ width: 1280, height: 800 });

    // An attempt's link opens its call; back to the campaign.
    await ada.getByRole("link", { name: "Attempt 1" }).click();
    await page.getByRole("heading", { name: `Call ${calls.Ada?.sid}` }).waitFor();
    await page.locator("#call-facts dd", { hasText: "not_interested" }).first().waitFor();
    await page.goBack();
    await page.getByRole("heading", { name: `${NAME} active` }).waitFor();
  });

  test("Pause, Resume, and the view following the dialer on its own", async () => {
    const title = page.locator("#campaign-title .state");
    await page.getByRole("button", { name: "Pause" }).click();
    await page.getByRole("heading", { name: `${NAME} paused` }).waitFor();
    expect(await title.textContent()).toBe("paused");
    expect((await viaApi()).state).toBe("paused");
    // Only the moves allowed now.
    expect(await page.locator("#campaign-actions button").allTextContents()).toEqual([
      "Resume",
      "Cancel campaign",
    ]);
    await shot("3-paused");

    await page.getByRole("button", { name: "Resume" }).click();
    await page.getByRole("heading", { name: `${NAME} active` }).waitFor();
    expect((await viaApi()).state).toBe("active");
    expect(await page.locator("#campaign-actions button").allTextContents()).toEqual([
      "Pause",
      "Cancel campaign",
    ]);

    // Alan books while the view is open: it shows without a reload.
    harness.clock.advance(30_000);
    await harness.end(calls.Alan?.sid ?? "", { outcome: "appointment_booked" });
    await harness.round();
    await page
      .locator("#campaign-leads tbody tr", { hasText: "Alan Turing" })
      .getByText("Attempt 1: ended, appointment_booked")
      .waitFor({ timeout: 8_000 });
    expect(await page.locator('#campaign-counts li[data-state="done"] strong').textContent()).toBe(
      "2",
    );
  });

  test("Cancel asks first, then the campaign is cancelled and offers no move", async () => {
    const dialogs: string[] = [];
    // Dismissed the first time: nothing changes.
    page.once("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.getByRole("button", { name: "Cancel campaign" }).click();
    expect(dialogs).toEqual([
      `Cancel the campaign "${NAME}"? Its leads not being called now will never be called.`,
    ]);
    expect((await viaApi()).state).toBe("active");

    page.once("dialog", (dialog) => void dialog.accept());
    await page.getByRole("button", { name: "Cancel campaign" }).click();
    await page.getByRole("heading", { name: `${NAME} cancelled` }).waitFor();
    const after = await viaApi();
    expect(after.state).toBe("cancelled");
    // Grace, still waiting for her retry, is never called now.
    expect(after.progress.leads).toMatchObject({ pending: 0, cancelled: 1, done: 2 });
    await page.getByText("Cancelled: nothing more is dialled.").waitFor();
    expect(await page.locator("#campaign-actions button").count()).toBe(0);
    await page
      .locator('#campaign-counts li[data-state="cancelled"] strong', { hasText: "1" })
      .waitFor();
    await shot("4-cancelled");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("4-cancelled-phone");
    await page.setViewportSize({ width: 1280, height: 800 });

    await page.getByRole("link", { name: "← All campaigns" }).click();
    await page
      .locator(`#campaigns-table tbody tr[data-id="${campaignId}"] .state`, {
        hasText: "cancelled",
      })
      .waitFor();
  });

  test("nothing the page asked for went off this machine, and no script error", () => {
    expect(blocked).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
