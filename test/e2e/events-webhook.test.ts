/**
 * The events webhook end to end: a call ends, the service POSTs it to a local receiver, signed;
 * a 500 is retried; a delivery still pending when the service stops is made by the next start.
 */
import { afterEach, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "bun";
import { openStream } from "../fakes/twilio-webhooks.ts";
import { eventually } from "../helpers/eventually.ts";
import { json } from "../helpers/http.ts";
import { type SignedService, startSignedService } from "../helpers/signed-service.ts";

const SECRET = "events-webhook-secret-0123456789";

interface Delivery {
  signature: string;
  body: string;
}

/** A CRM's endpoint: answers the statuses it is given in turn (then 200), keeps what it got. */
function receiver(statuses: number[] = []) {
  const got: Delivery[] = [];
  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      got.push({
        signature: request.headers.get("x-voice-agent-signature") ?? "",
        body: await request.text(),
      });
      return new Response(null, { status: statuses.shift() ?? 200 });
    },
  });
  return { got, url: `http://127.0.0.1:${server.port}/hooks/calls`, stop: () => server.stop(true) };
}

/** Checks the signature as a receiver should (docs/OPERATIONS.md): HMAC-SHA256 of "<t>.<body>". */
function verify({ signature, body }: Delivery): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(signature);
  if (!match) return false;
  const [, t = "", mac = ""] = match;
  if (Math.abs(Date.now() / 1000 - Number(t)) > 300) return false;
  const expected = createHmac("sha256", SECRET).update(`${t}.${body}`).digest("hex");
  return expected === mac;
}

let running: SignedService | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await running?.stop();
  running = undefined;
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function start(url: string, databasePath: string) {
  running = await startSignedService(
    {
      EVENTS_WEBHOOK_URL: url,
      EVENTS_WEBHOOK_SECRET: SECRET,
      EVENTS_WEBHOOK_RETRY_MS: "50",
      DATABASE_PATH: databasePath,
    },
    { endings: { pollMs: 10, settleMs: 0 } },
  );
  return running;
}

/** A whole inbound call: greeting, one lookup, goodbye. */
async function call(service: SignedService, sid: string) {
  const xml = await (await service.incoming(sid)).text();
  const phone = await openStream(xml, sid);
  const agent = await service.agent.nextSession();
  await phone.waitFor(() => phone.heardBytes === 100 * 8, "greeting heard");
  agent.userSays("Anything on Tuesday?");
  await agent.callFunction("check_available_slots", {});
  await agent.callFunction("end_call", { reason: "done" });
  agent.say("Goodbye!", 100);
  await phone.closed;
}

function tempDatabase(): string {
  const dir = mkdtempSync(join(tmpdir(), "events-webhook-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "voice-agent.db");
}

test("a call's end is POSTed, signed; a 500 is retried; the record shows the delivery", async () => {
  const crm = receiver([500]);
  cleanups.push(crm.stop);
  const service = await start(crm.url, tempDatabase());
  const sid = "CAevents000000000000000000000000001";
  await call(service, sid);

  await eventually(() => crm.got.length === 2, "the retry after the 500", 5_000);
  for (const delivery of crm.got) expect(verify(delivery)).toBe(true);
  expect(verify({ ...crm.got[1], body: `${crm.got[1]?.body} ` } as Delivery)).toBe(false);
  const sent = JSON.parse(crm.got[1]?.body ?? "{}");
  expect(sent.event).toBe("call.ended");
  expect(sent.call.call).toMatchObject({
    sid,
    direction: "inbound",
    end_reason: "agent_ended_call",
    outcome: "no_decision",
  });
  const kinds = sent.call.timeline.map((event: { kind: string }) => event.kind);
  expect(kinds).toContain("transcript");
  expect(kinds).toContain("function_call");
  expect(sent.call.delivery).toBeUndefined();

  const { delivery } = await eventually(async () => {
    const detail = await json(await service.authed(`/calls/${sid}`));
    return detail.delivery?.state === "delivered" ? detail : undefined;
  }, "the delivery on the record");
  expect(delivery).toMatchObject({ state: "delivered", attempts: 2, last_status: 200 });
  // Recorded as delivered once the receiver took it: a delivered row is never claimed again
  // (the storage contract's outbox test).
  expect(crm.got).toHaveLength(2);
});

test("a delivery pending when the service stops is made after the restart", async () => {
  const databasePath = tempDatabase();
  const down = receiver();
  down.stop();
  const first = await start(down.url, databasePath);
  const sid = "CAevents000000000000000000000000002";
  await call(first, sid);
  const pending = await eventually(async () => {
    const detail = await json(await first.authed(`/calls/${sid}`));
    return detail.delivery?.state === "pending" ? detail.delivery : undefined;
  }, "a failed attempt");
  expect(pending.last_error).toBeString();
  await first.stop();
  running = undefined;

  const crm = receiver();
  cleanups.push(crm.stop);
  await start(crm.url, databasePath);
  await eventually(() => crm.got.length === 1, "the delivery after the restart", 5_000);
  expect(verify(crm.got[0] as Delivery)).toBe(true);
  expect(JSON.parse(crm.got[0]?.body ?? "{}").call.call.sid).toBe(sid);
});

test("EVENTS_WEBHOOK_URL without a secret is refused at start-up", async () => {
  const { configError } = await import("../helpers/context.ts");
  expect(configError({ EVENTS_WEBHOOK_URL: "https://crm.example/hooks" }).problems).toEqual([
    "EVENTS_WEBHOOK_SECRET: required with EVENTS_WEBHOOK_URL, so the receiver can tell the service's posts from anyone's; make one with: openssl rand -hex 32",
  ]);
});
