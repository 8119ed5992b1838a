/**
 * Security issue points 6, 8, 9 and 13: what a replayed webhook or a stream's own parameters can do
 * to a call, how long an answered call with no stream holds a place, and inbound call status
 * without Twilio's status callback.
 */

import { afterEach, describe, expect, test } from "bun:test";
import { ManualClock } from "../fakes/clock.ts";
import { FakeTwilioCall } from "../fakes/twilio-media-client.ts";
import { openStream } from "../fakes/twilio-webhooks.ts";
import { eventually } from "../helpers/eventually.ts";
import { json } from "../helpers/http.ts";
import { CALLER, type SignedService, startSignedService } from "../helpers/signed-service.ts";
import { grantStream, testStorage } from "../helpers/test-service.ts";

let running: SignedService | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

async function start(env: Record<string, string> = {}, clock?: ManualClock) {
  running = await startSignedService(env, clock ? { clock } : {});
  return running;
}

describe("6. a replayed /incoming-call", () => {
  test("while the call waits for its stream: refused, and the token Twilio was given still works", async () => {
    const { incoming, agent } = await start();
    const first = await incoming("CA600");
    expect(first.status).toBe(200);
    const xml = await first.text();

    const replay = await incoming("CA600");
    expect(replay.status).toBe(409);
    expect((await json(replay)).code).toBe("DUPLICATE_CALL");

    const phone = await openStream(xml, "CA600");
    const session = await agent.nextSession();
    expect(session.settings).toMatchObject({ tags: ["inbound", "dental-receptionist"] });
    phone.hangUp();
  });

  test("after the call has streamed and ended: refused, no new session, the record unchanged", async () => {
    const { incoming, agent, service } = await start();
    const xml = await (await incoming("CA601")).text();
    const phone = await openStream(xml, "CA601");
    await agent.nextSession();
    phone.hangUp();
    await eventually(
      async () => (await service.store.calls.get("CA601"))?.ended_at,
      "the call's end recorded",
    );
    const ended = await service.store.calls.get("CA601");

    const replay = await incoming("CA601");
    expect(replay.status).toBe(409);
    expect(agent.sessions).toHaveLength(1);
    expect(await service.store.calls.get("CA601")).toEqual(ended);
  });
});

describe("5. a stream refused during the drain", () => {
  test("ends its call record instead of leaving it ringing", async () => {
    const { incoming, agent, service } = await start({ SHUTDOWN_DRAIN_MS: "60000" });
    const live = await openStream(await (await incoming("CA500")).text(), "CA500");
    await agent.nextSession();
    const waiting = await (await incoming("CA501")).text();
    const stopping = service.shutdown("SIGTERM");
    if (testStorage === "postgres") {
      // In a fleet (Redis) the upgrade is refused before the token is used: a balancer sends it
      // to another instance, which can still take the call.
      await expect(openStream(waiting, "CA501")).rejects.toThrow();
      expect(await service.coordination.tokenPending("CA501")).toBe(true);
      live.hangUp();
      await stopping;
      return;
    }
    const late = await openStream(waiting, "CA501");
    expect((await late.closed).code).toBe(1008);
    expect(await service.store.calls.get("CA501")).toMatchObject({
      status: "completed",
      end_reason: "service_shutdown",
    });
    expect((await service.store.calls.get("CA501"))?.ended_at).not.toBeNull();
    live.hangUp();
    await stopping;
  });
});

describe("8. a stream's parameters cannot change what the service granted", () => {
  test("a token for an inbound dental call with outbound, insurance and another lead's id gets the dental call", async () => {
    const { incoming, agent, service } = await start();
    const lead = await service.store.leads.create({
      first_name: "Secret",
      last_name: "Person",
      property_address: "1 Private Lane",
    });
    const xml = await (await incoming("CA800")).text();
    // The attacker's own start: the right token, everything else chosen by them.
    const phone = await FakeTwilioCall.connect({
      url: `${service.url.replace("http", "ws")}/twilio`,
      callSid: "CA800",
      customParameters: {
        token: /name="token" value="([^"]+)"/.exec(xml)?.[1] ?? "",
        scenario: "insurance-followup",
        direction: "outbound",
        lead_id: lead.id,
        from: "+15550009999",
      },
    });
    const session = await agent.nextSession();
    expect(session.settings).toMatchObject({ tags: ["inbound", "dental-receptionist"] });
    const settings = JSON.stringify(session.settings);
    expect(settings).not.toContain("Secret");
    expect(settings).not.toContain("Private Lane");
    expect(await service.store.calls.get("CA800")).toMatchObject({
      direction: "inbound",
      scenario: "dental-receptionist",
      lead_id: null,
      from_number: CALLER,
    });
    phone.hangUp();
  });
});

describe("9. an answered call whose stream never opens", () => {
  test("gives its place back within 30 s", async () => {
    const clock = new ManualClock(new Date().toISOString());
    const { incoming } = await start({ MAX_CONCURRENT_CALLS: "1" }, clock);
    expect((await (await incoming("CA900")).text()).includes("<Stream")).toBe(true);
    expect(await (await incoming("CA901")).text()).toContain("lines are busy");
    clock.advance(30_000);
    expect(await (await incoming("CA902")).text()).toContain("<Stream");
  });

  test("is ended on its record (not left ringing) once its token has expired", async () => {
    const clock = new ManualClock(new Date().toISOString());
    const { incoming, service } = await start({}, clock);
    await incoming("CA903");
    clock.advance(35_000);
    await eventually(async () => (await service.store.calls.get("CA903"))?.ended_at, "the end");
    expect(await service.store.calls.get("CA903")).toMatchObject({
      status: "completed",
      end_reason: "stream_never_started",
    });
    expect((await service.store.calls.events("CA903")).at(-1)).toMatchObject({ kind: "ended" });
  });

  test("a long disclosure said before the stream opens does not use up the wait", async () => {
    const clock = new ManualClock(new Date().toISOString());
    const disclosure = `This call may be recorded. ${"Please listen carefully. ".repeat(18)}`;
    const { incoming, agent } = await start({ INBOUND_DISCLOSURE: disclosure }, clock);
    const xml = await (await incoming("CA904")).text();
    clock.advance(31_000 + disclosure.length * 60);
    const phone = await openStream(xml, "CA904");
    const session = await agent.nextSession();
    expect(session.settings).toMatchObject({ tags: ["inbound", "dental-receptionist"] });
    phone.hangUp();
  });

  test("gives its place back at once when Twilio reports the call over", async () => {
    const { incoming, signed } = await start({ MAX_CONCURRENT_CALLS: "1" });
    expect(await (await incoming("CA910")).text()).toContain("<Stream");
    const status = await signed("/call-status", { CallSid: "CA910", CallStatus: "completed" });
    expect(status.status).toBe(204);
    expect(await (await incoming("CA911")).text()).toContain("<Stream");
  });

  test("a status for a call not recorded yet still frees its place", async () => {
    const { service, signed } = await start();
    const grant = {
      scenario: "insurance-followup",
      direction: "outbound" as const,
      from: "+1",
      to: "+2",
    };
    await grantStream(service, "CA930", grant, { answered: false });
    await signed("/call-status", { CallSid: "CA930", CallStatus: "busy" });
    expect(await service.coordination.load()).toBe(0);
  });

  test("an outbound call keeps its place while it rings, and 30 s once answered", async () => {
    const clock = new ManualClock(new Date().toISOString());
    const { service, signed } = await start({}, clock);
    const grant = {
      scenario: "insurance-followup",
      direction: "outbound" as const,
      from: "+1",
      to: "+2",
    };
    await grantStream(service, "CA920", grant, { answered: false });
    clock.advance(60_000);
    expect(await service.coordination.load()).toBe(1);
    await service.store.calls.create({
      sid: "CA920",
      direction: "outbound",
      from_number: "+1",
      to_number: "+2",
      scenario: "insurance-followup",
      status: "ringing",
    });
    await signed("/call-status", { CallSid: "CA920", CallStatus: "in-progress" });
    clock.advance(29_999);
    expect(await service.coordination.load()).toBe(1);
    clock.advance(1);
    expect(await service.coordination.load()).toBe(0);
  });
});

describe("13. inbound calls without Twilio's status callback", () => {
  test("are in-progress while streaming and completed after", async () => {
    const { incoming, agent, authed, service } = await start();
    const xml = await (await incoming("CA1300")).text();
    const phone = await openStream(xml, "CA1300");
    await agent.nextSession();
    const live = await json(await authed("/calls?status=in-progress"));
    expect(live.calls.map((call: { sid: string }) => call.sid)).toEqual(["CA1300"]);
    expect((await service.store.calls.get("CA1300"))?.answered_at).not.toBeNull();
    phone.hangUp();
    await eventually(
      async () => (await service.store.calls.get("CA1300"))?.ended_at,
      "the call's end recorded",
    );
    expect(await service.store.calls.get("CA1300")).toMatchObject({
      status: "completed",
      end_reason: "caller_hung_up",
    });
    expect((await json(await authed("/calls?status=in-progress"))).calls).toEqual([]);
  });
});

test("a forged token is refused before anything about the call is looked at", async () => {
  const { service, agent } = await start();
  const url = `${service.url.replace("http", "ws")}/twilio`;
  const phone = await FakeTwilioCall.connect({
    url,
    callSid: "CA1",
    customParameters: { token: "Zm9yZ2Vk", scenario: "dental-receptionist" },
  });
  expect((await phone.closed).code).toBe(1008);
  expect(agent.sessions).toHaveLength(0);
  expect(await service.store.calls.get("CA1")).toBeUndefined();
});
