/**
 * Security issue point 7: a web page the operator visits cannot make the service change anything,
 * with or without ENDPOINT_SECRET (`Sec-Fetch-Site`, else `Origin`), proven with plain requests and
 * with a real cross-site form in headless Chromium.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { captureLogger, testConfig } from "../helpers/context.ts";
import { json } from "../helpers/http.ts";
import { haveChromium, offlinePage } from "../helpers/offline-browser.ts";
import { SECRET, type SignedService, startSignedService } from "../helpers/signed-service.ts";
import { startTestService } from "../helpers/test-service.ts";

let stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const stop of stops) await stop();
  stops = [];
});

async function signedService() {
  const running = await startSignedService();
  stops.push(() => running.stop());
  return running;
}

/** No secret and no Twilio: loopback clients are trusted for everything else. */
async function openService() {
  const service = await startTestService(testConfig(), captureLogger().logger);
  stops.push(() => service.shutdown("test over"));
  return service;
}

const lead = JSON.stringify({ first_name: "Mallory", last_name: "Example" });

describe("with the secret", () => {
  const post = (running: SignedService, headers: Record<string, string>) =>
    running.authed("/leads", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: lead,
    });

  test("Sec-Fetch-Site other than same-origin or none: 403, nothing stored", async () => {
    const running = await signedService();
    for (const site of ["cross-site", "same-site"]) {
      const response = await post(running, { "sec-fetch-site": site });
      expect(response.status).toBe(403);
      expect((await json(response)).code).toBe("CROSS_SITE_REQUEST");
    }
    expect(await running.service.store.leads.list(10)).toEqual([]);
  });

  test("a foreign Origin (no Sec-Fetch-Site): 403; the service's own origin and no browser at all pass", async () => {
    const running = await signedService();
    expect((await post(running, { origin: "https://evil.example" })).status).toBe(403);
    expect((await post(running, { origin: "null" })).status).toBe(403);
    const otherScheme = running.publicUrl.replace("http:", "https:");
    expect((await post(running, { origin: otherScheme })).status).toBe(403);
    expect((await post(running, { origin: running.publicUrl })).status).toBe(201);
    expect((await post(running, { "sec-fetch-site": "same-origin" })).status).toBe(201);
    expect((await post(running, {})).status).toBe(201);
  });

  test("reading stays allowed: GET is not state-changing", async () => {
    const running = await signedService();
    const response = await running.authed("/calls", {
      headers: { "sec-fetch-site": "cross-site" },
    });
    expect(response.status).toBe(200);
  });
});

describe("without a secret (Twilio not configured)", () => {
  test("a page that rebinds its own name to 127.0.0.1 (DNS rebinding) is refused: the Host must be loopback", async () => {
    const service = await openService();
    const port = service.port;
    const asAttacker = (init: RequestInit = {}) =>
      fetch(`${service.url}/leads`, {
        ...init,
        headers: {
          host: `attacker.example:${port}`,
          "sec-fetch-site": "same-origin",
          ...init.headers,
        },
      });
    expect((await asAttacker()).status).toBe(401);
    const post = await asAttacker({
      method: "POST",
      headers: { "content-type": "application/json" },
      body: lead,
    });
    expect(post.status).toBe(401);
    expect(await service.store.leads.list(10)).toEqual([]);
    expect((await fetch(`${service.url}/leads`)).status).toBe(200);
    expect((await fetch(`http://localhost:${port}/leads`)).status).toBe(200);
  });

  test("a cross-site form post to /leads or /make-call is refused and stores nothing", async () => {
    const service = await openService();
    for (const path of ["/leads", "/make-call"]) {
      const response = await fetch(`${service.url}${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          origin: "http://attacker.example",
          "sec-fetch-site": "cross-site",
        },
        body: "first_name=Mallory&last_name=Example&to=%2B19005550100",
      });
      expect(response.status).toBe(403);
    }
    expect(await service.store.leads.list(10)).toEqual([]);
  });
});

describe("in a real browser", () => {
  test.skipIf(!haveChromium)(
    "a page on another origin that auto-submits a form cannot store a lead",
    async () => {
      const service = await openService();
      const attacker = Bun.serve({
        hostname: "127.0.0.1",
        port: 0,
        fetch: () =>
          new Response(
            `<!doctype html><form method="POST" action="${service.url}/leads">
              <input name="first_name" value="Mallory"><input name="last_name" value="Example">
            </form><script>document.forms[0].submit()</script>`,
            { headers: { "content-type": "text/html" } },
          ),
      });
      stops.push(async () => attacker.stop(true));
      const { browser, page } = await offlinePage();
      stops.push(() => browser.close());
      const answered = page.waitForResponse((response) => response.url().endsWith("/leads"));
      // localhost and 127.0.0.1 are different sites to the browser.
      await page.goto(`http://localhost:${attacker.port}/`);
      expect((await answered).status()).toBe(403);
      expect(await service.store.leads.list(10)).toEqual([]);
    },
    30_000,
  );
});

test("the secret's own requests from the docs page (same origin) still work", async () => {
  const running = await signedService();
  const response = await fetch(`${running.service.url}/leads`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${SECRET}`,
      "content-type": "application/json",
      origin: running.service.url,
      "sec-fetch-site": "same-origin",
    },
    body: lead,
  });
  expect(response.status).toBe(201);
});
