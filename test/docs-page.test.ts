/**
 * The API reference page as an operator first sees it, in headless Chromium with every non-loopback
 * request aborted: the bearer scheme selected, snippets that name the host, the example picker with
 * each request shape, Twilio's webhooks without a "Test Request" button, an icon that loads, and
 * nothing the page asks for answered with an error.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { testApp } from "./helpers/context.ts";
import { haveChromium, offlinePage, warnWithoutChromium } from "./helpers/offline-browser.ts";

warnWithoutChromium("the docs page tests");

/** How long the page may take to render the reference (Scalar's bundle is 4 MB). */
const RENDERED_MS = 20_000;
/** Each test: a few waits for the page, well inside this. */
const TEST_MS = 60_000;

let app: ReturnType<typeof testApp>["app"];
let origin: string;
let browser: Browser;
let page: Page;
let blocked: string[] = [];
const failed: string[] = [];
let logged: Record<string, unknown>[];

beforeAll(async () => {
  if (!haveChromium) return;
  const built = testApp({ ENDPOINT_SECRET: "docs-page-endpoint-secret" });
  app = built.app;
  logged = built.lines;
  app.listen({ hostname: "127.0.0.1", port: 0 });
  origin = `http://127.0.0.1:${app.server?.port}`;
  ({ browser, page, blocked } = await offlinePage());
  page.on("response", (response) => {
    if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
  });
  await page.goto(`${origin}/docs`);
  await page
    .getByText("Service health")
    .first()
    .waitFor({ state: "visible", timeout: RENDERED_MS });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop(true);
});

/** Waits until the page's text content contains `text`. */
async function pageShows(text: string): Promise<void> {
  await page.waitForFunction(`document.body.textContent.includes(${JSON.stringify(text)})`, null, {
    timeout: RENDERED_MS,
  });
}

const pageText = async () => (await page.locator("body").textContent()) ?? "";

describe.skipIf(!haveChromium)("the docs page in headless Chromium", () => {
  test(
    "shows the bearer scheme selected, not 'No authentication selected'",
    async () => {
      await pageShows("Selected Auth Type: bearerAuth");
      const text = await pageText();
      expect(text).toContain("The service's ENDPOINT_SECRET");
      expect(text).not.toContain("No authentication selected");
    },
    TEST_MS,
  );

  test(
    "the snippets are curl commands with the host, e.g. for /health and /make-call",
    async () => {
      await pageShows(`curl ${origin}/health`);
      await page.goto(`${origin}/docs#tag/calls/POST/make-call`);
      await pageShows(`curl ${origin}/make-call`);
      const text = await pageText();
      expect(text).toContain("--header 'Authorization: Bearer YOUR_SECRET_TOKEN'");
      expect(text).not.toMatch(/curl \/[a-z]/);
    },
    TEST_MS,
  );

  test(
    "/make-call offers the demo, inline and stored lead examples",
    async () => {
      await page.goto(`${origin}/docs#tag/calls/POST/make-call`);
      await page.getByRole("button", { name: "Demo lead" }).first().click();
      const options = page.getByRole("option");
      await options.first().waitFor({ state: "visible", timeout: RENDERED_MS });
      expect(await options.allTextContents()).toEqual([
        "Demo lead",
        "Inline lead",
        "Stored lead (lead_id)",
      ]);
      await options.filter({ hasText: "Inline lead" }).click();
      await pageShows('"first_name": "Alex"');
      await pageShows(`curl ${origin}/make-call`);
    },
    TEST_MS,
  );

  test(
    "Twilio's webhooks are listed as webhooks, without a Test Request button",
    async () => {
      for (const path of ["amd-result", "call-status", "stream-status", "incoming-call"]) {
        await page.goto(`${origin}/docs#tag/twilio-webhooks/webhook/POST/${path}`);
        const section = page.locator(`section[id$="/webhook/POST/${path}"]`);
        await section
          .getByText("signed with X-Twilio-Signature")
          .first()
          .waitFor({ state: "visible", timeout: RENDERED_MS });
        const buttons = section.locator(".show-api-client-button");
        expect(await buttons.count()).toBe(1);
        expect(await buttons.isVisible()).toBe(false);
      }
      // The routes the page can call keep theirs.
      await page.goto(`${origin}/docs#tag/calls/POST/make-call`);
      await page
        .locator('section[id$="/POST/make-call"] .show-api-client-button')
        .waitFor({ state: "visible", timeout: RENDERED_MS });
    },
    TEST_MS,
  );

  test(
    "the page's icon loads, and nothing the page asked for failed or left the machine",
    async () => {
      const icon = await page.locator("link[rel~=icon]").first().getAttribute("href");
      expect(icon).toBeTruthy();
      const status = await page.evaluate(async (href) => (await fetch(href)).status, icon ?? "");
      expect(status).toBe(200);
      expect(blocked).toEqual([]);
      expect(failed).toEqual([]);
      const infoLines = logged.filter((line) => line.msg === "http" && line.level !== "debug");
      expect(infoLines).toEqual([]);
    },
    TEST_MS,
  );
});
