/**
 * The live console in headless Chromium against the real service, its fakes on loopback: only the
 * sign-in without a session; a simulated call appears on Live within a second, its transcript
 * streams into the Call view, it moves to History when it ends; a call placed from the form. Each
 * view is written as a screenshot to test-output/console/ (not committed) to be looked at.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { FakeTwilioRest } from "../fakes/twilio-rest-server.ts";
import { openStream } from "../fakes/twilio-webhooks.ts";
import { json } from "../helpers/http.ts";
import { haveChromium, offlinePage, warnWithoutChromium } from "../helpers/offline-browser.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  SECRET,
  type SignedService,
  startSignedService,
} from "../helpers/signed-service.ts";

warnWithoutChromium("the console tests");
setDefaultTimeout(60_000);

const SCREENSHOTS = join(import.meta.dir, "../../test-output/console");

let running: SignedService;
let twilio: FakeTwilioRest;
let browser: Browser;
let page: Page;
let blocked: string[];
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!haveChromium) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  twilio = FakeTwilioRest.start(ACCOUNT_SID, AUTH_TOKEN);
  running = await startSignedService(
    { TWILIO_API_URL: twilio.url },
    { endings: { pollMs: 20, settleMs: 0 } },
  );
  ({ browser, page, blocked } = await offlinePage());
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") pageErrors.push(message.text());
  });
});

afterAll(async () => {
  await browser?.close();
  await running?.stop();
  twilio?.stop();
});

/** Signs in as a script would: the session cookie, and the header that set it. */
async function signIn(): Promise<{ cookie: string; setCookie: string }> {
  const login = await fetch(`${running.publicUrl}/console/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ secret: SECRET }),
  });
  const setCookie = login.headers.get("set-cookie") ?? "";
  return { cookie: setCookie.split(";")[0] ?? "", setCookie };
}

const shot = (name: string) =>
  page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

describe.skipIf(!haveChromium)("the console in headless Chromium", () => {
  test("without a session: only the sign-in; a wrong secret is refused, the right one signs in", async () => {
    await page.goto(`${running.publicUrl}/console`);
    await page.getByLabel("Endpoint secret").waitFor();
    expect(await page.locator("#live").count()).toBe(0);
    for (const path of ["/console/api/calls", "/console/stream", "/console/api/calls.csv"])
      expect((await fetch(`${running.publicUrl}${path}`)).status).toBe(401);
    await shot("1-sign-in");

    await page.getByLabel("Endpoint secret").fill("not the secret");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").getByText("Wrong endpoint secret").waitFor();

    await page.getByLabel("Endpoint secret").fill(SECRET);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: /Live calls/ }).waitFor();
    await page.getByText("No call is live.").waitFor();
    const cookie = (await page.context().cookies()).find((each) => each.name === "va_session");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", secure: false });
    // The secret is nowhere the page can read it back.
    expect(await page.evaluate("JSON.stringify(localStorage) + document.cookie")).not.toContain(
      SECRET,
    );
  });

  test("a call appears on Live within a second, its transcript streams into the Call view, it moves to History", async () => {
    const sid = "CAconsole0000000000000000000000001";
    const xml = await (await running.incoming(sid)).text();
    const phone = await openStream(xml, sid);
    const streamedAt = performance.now();
    const agent = await running.agent.nextSession();
    const row = page.locator(`#live-table tbody tr[data-sid="${sid}"]`);
    await row.waitFor({ timeout: 1_000 });
    expect(performance.now() - streamedAt).toBeLessThan(1_000);
    expect(await row.textContent()).toContain("+1••••••4321");
    await phone.waitFor(() => phone.heardBytes === 100 * 8, "greeting heard");
    await shot("2-live");
    // On a phone's screen too.
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("2-live-phone");
    await page.setViewportSize({ width: 1280, height: 720 });

    await row.getByRole("link").click();
    await page.getByRole("heading", { name: `Call ${sid}` }).waitFor();
    agent.userSays("Can I book a cleaning next week?");
    agent.say("Of course. Tuesday at nine is open. Shall I book it?", 300);
    await page
      .locator("#timeline")
      .getByText("Can I book a cleaning next week?")
      .waitFor({ timeout: 2_000 });
    await page
      .locator("#timeline")
      .getByText("Tuesday at nine is open")
      .waitFor({ timeout: 2_000 });
    await agent.callFunction("check_available_slots", {});
    await page.locator("#timeline").getByText("Function check_available_slots").waitFor();
    await page.locator("#latency").waitFor();
    await shot("3-call");

    phone.hangUp();
    await page.getByText("No call is live.").waitFor({ state: "attached" });
    // It ended: the view shows the record's end reason (and the outcome it implies).
    await page.locator("#call-facts dd", { hasText: "caller_hung_up" }).first().waitFor({
      timeout: 5_000,
    });

    await page.getByRole("link", { name: "History" }).click();
    await page.locator(`#history-table a[href="#call/${sid}"]`).waitFor();
    await page.getByLabel("Direction").selectOption("outbound");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.getByText("No calls match.").waitFor();
    await page.getByLabel("Direction").selectOption("inbound");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.locator(`#history-table a[href="#call/${sid}"]`).waitFor();
    const csv = (await page.evaluate(
      'fetch(document.getElementById("export").href).then((response) => response.text())',
    )) as string;
    expect(csv.split("\r\n")[0]).toStartWith("sid,created_at,direction,scenario,from_number");
    expect(csv).toContain(`"${sid}"`);
    // A number stays a number; a text that a spreadsheet would run is neutralised.
    expect(csv).toContain(`"+15557654321"`);
    await shot("4-history");
  });

  test("a call placed from the form, then followed", async () => {
    await page.getByRole("link", { name: "Place a call" }).click();
    await page.getByLabel("Number to call (E.164)").fill("+15551112222");
    await page.getByRole("button", { name: "Place call" }).click();
    const follow = page.getByRole("link", { name: /Follow call CA/ });
    await follow.waitFor();
    const placed = twilio.lastCall();
    expect(placed.to).toBe("+15551112222");
    await shot("5-place");
    await follow.click();
    await page.getByRole("heading", { name: `Call ${placed.sid}` }).waitFor();

    // Not from another site: the console's own requests must come from its origin.
    const foreign = await fetch(`${running.publicUrl}/console/api/make-call`, {
      method: "POST",
      headers: { origin: "https://evil.example", "content-type": "application/json" },
      body: JSON.stringify({ to: "+15551112222" }),
    });
    expect(foreign.status).toBe(403);
  });

  test("signing out ends the session everywhere, also for a copy of its cookie", async () => {
    const cookie = (await page.context().cookies()).find((each) => each.name === "va_session");
    const copied = { cookie: `va_session=${cookie?.value}` };
    expect(
      (await fetch(`${running.publicUrl}/console/api/calls`, { headers: copied })).status,
    ).toBe(200);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Endpoint secret").waitFor();
    expect(
      (await fetch(`${running.publicUrl}/console/api/calls`, { headers: copied })).status,
    ).toBe(401);
  });

  test("nothing the page asked for went off this machine, and no script error", () => {
    expect(blocked).toEqual([]);
    // The one failed request the page made on purpose: the wrong secret's sign-in (401).
    expect(pageErrors).toEqual([
      "Failed to load resource: the server responded with a status of 401 (Unauthorized)",
    ]);
  });
});

test("the recording is served to the console's cookie (an audio element sends no header)", async () => {
  if (!haveChromium) return;
  const { cookie, setCookie } = await signIn();
  expect(setCookie).toContain("HttpOnly; SameSite=Strict; Max-Age=43200");
  // No recording for this call: 404, not 401 (the cookie was accepted).
  const response = await fetch(
    `${running.publicUrl}/calls/CAconsole0000000000000000000000001/recording`,
    {
      headers: { cookie },
    },
  );
  expect(response.status).toBe(404);
  expect(await json(response)).toMatchObject({ code: "NOT_FOUND" });
});

test("a stream that comes back (Last-Event-ID) gets what it missed, with ids", async () => {
  if (!haveChromium) return;
  const { cookie } = await signIn();
  const stream = await fetch(`${running.publicUrl}/console/stream`, {
    headers: { cookie, "last-event-id": "1" },
  });
  expect(stream.headers.get("content-type")).toBe("text/event-stream");
  const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
  let text = "";
  while (!text.includes("id: 3\n")) text += new TextDecoder().decode((await reader.read()).value);
  await reader.cancel();
  // The entries after 1, in order, each with its id (what EventSource sends back when it returns).
  expect(text.indexOf("id: 2\n")).toBeLessThan(text.indexOf("id: 3\n"));
  expect(text).not.toContain("id: 1\n");
});
