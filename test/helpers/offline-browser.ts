/**
 * Debian's headless Chromium for the browser tests, with every request off this machine aborted
 * (and noted), so a page that reaches for a CDN fails visibly instead of loading from the internet.
 */
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";

export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const haveChromium = existsSync(chromiumPath);

/** The one-line note a browser test prints when it is skipped for want of Chromium. */
export function warnWithoutChromium(what: string): void {
  if (!haveChromium)
    console.warn(`SKIPPED: ${what} needs Chromium at ${chromiumPath} (apt-get install chromium).`);
}

/** A browser and a page that reaches only loopback; `blocked` lists what it tried beyond. */
export async function offlinePage(): Promise<{ browser: Browser; page: Page; blocked: string[] }> {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const blocked: string[] = [];
  const page = await browser.newPage();
  await page.route("**/*", (route) => {
    const { hostname } = new URL(route.request().url());
    if (hostname === "127.0.0.1" || hostname === "localhost") return route.continue();
    blocked.push(route.request().url());
    return route.abort();
  });
  return { browser, page, blocked };
}
