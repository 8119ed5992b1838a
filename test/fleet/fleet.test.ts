/**
 * Three instances on PostgreSQL + Redis behind a round-robin balancer: a call's `/make-call`, its
 * media stream, its answering-machine verdict and its status callbacks land on different
 * instances, and the call goes on as on one. Skipped with one line where PostgreSQL or Redis is
 * not running (never in CI).
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";

/** Several processes or instances start per test: more than the default 5 s on a loaded machine. */
setDefaultTimeout(30_000);

import { openStream, readTwiml } from "../fakes/twilio-webhooks.ts";
import { eventually } from "../helpers/eventually.ts";
import { type Fleet, startFleet } from "../helpers/fleet-harness.ts";
import { json } from "../helpers/http.ts";
import { postgresReady } from "../helpers/postgres.ts";
import { redisReady } from "../helpers/redis.ts";

const TO = "+15557654321";
const GREETING_BYTES = 300 * 8;

let fleet: Fleet | undefined;
afterEach(async () => {
  await fleet?.stop();
  fleet = undefined;
});

/** Which instances served the requests and upgrades whose path starts with `path`. */
const servedBy = (running: Fleet, path: string) =>
  running.proxy.routed.filter((route) => route.path.startsWith(path)).map((route) => route.backend);

describe.skipIf(!(postgresReady && redisReady))("a fleet of three behind a balancer", () => {
  test("outbound, a person: placed on one, streamed on another, the verdict from a third reaches it", async () => {
    fleet = await startFleet(3);
    fleet.proxy.prefer.set("/make-call", 0).set("/twilio", 1).set("/amd-result", 2);
    const placed = await json(await fleet.makeCall({ to: TO }));
    const phone = await fleet.twilio.answer(placed.call_sid);
    const agent = await fleet.agent.nextSession();
    expect((await fleet.twilio.sendAmd(placed.call_sid, "human")).status).toBe(204);
    await phone.waitFor(
      () => phone.heardBytes === GREETING_BYTES,
      "the greeting, after the verdict",
    );
    const [placedOn] = servedBy(fleet, "/make-call");
    const [streamedOn] = servedBy(fleet, "/twilio");
    const [verdictOn] = servedBy(fleet, "/amd-result");
    expect([placedOn, streamedOn, verdictOn]).toEqual([0, 1, 2]);

    const open = JSON.parse(await agent.callFunction("check_availability", {}));
    const booked = JSON.parse(
      await agent.callFunction("book_appointment", { slot_id: open.available[0].slot_id }),
    );
    expect(booked).toMatchObject({ booked: true });
    await agent.callFunction("end_call", { reason: "done" });
    agent.say("Goodbye!", 200);
    await phone.closed;
    await fleet.twilio.sendStatus(placed.call_sid, "completed", { CallDuration: "40" });
    // Every instance answers the same for the call.
    const views = await Promise.all(
      fleet.instances.map(async (service) =>
        json(
          await fetch(`${service?.url}/calls/${placed.call_sid}`, {
            headers: { authorization: `Bearer ${fleet?.env.ENDPOINT_SECRET}` },
          }),
        ),
      ),
    );
    for (const view of views) {
      expect(view.call).toMatchObject({
        answered_by: "human",
        end_reason: "agent_ended_call",
        status: "completed",
      });
      expect(view.call).toEqual(views[0]?.call);
    }
  });

  test("outbound: a verdict before any stream exists, and a machine's voicemail", async () => {
    fleet = await startFleet(3);
    const early = await json(await fleet.makeCall({ to: TO }));
    await fleet.twilio.sendAmd(early.call_sid, "human");
    const earlyPhone = await fleet.twilio.answer(early.call_sid);
    await earlyPhone.waitFor(() => earlyPhone.heardBytes === GREETING_BYTES, "greeting at once");
    earlyPhone.hangUp();

    const machine = await json(await fleet.makeCall({ to: TO }));
    const phone = await fleet.twilio.answer(machine.call_sid);
    await fleet.agent.nextSession();
    await fleet.agent.nextSession();
    await fleet.twilio.sendAmd(machine.call_sid, "machine_end_beep");
    await phone.closed;
    const record = await eventually(async () => {
      const { call } = await json((await fleet?.get(`/calls/${machine.call_sid}`)) as Response);
      return call.end_reason ? call : undefined;
    }, "the voicemail's end recorded");
    expect(record).toMatchObject({
      outcome: "no_answer_voicemail_left",
      end_reason: "voicemail_left",
    });
  });

  test("inbound: the webhook on one instance, the stream on another; barge-in and a booking", async () => {
    fleet = await startFleet(3);
    fleet.proxy.prefer.set("/incoming-call", 2).set("/twilio", 0);
    const xml = await (await fleet.incoming("CAfleet0001")).text();
    expect(readTwiml(xml).url).toBe(`${fleet.publicUrl.replace("http", "ws")}/twilio`);
    const phone = await openStream(xml, "CAfleet0001");
    const agent = await fleet.agent.nextSession();
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, "the receptionist's greeting");
    expect([servedBy(fleet, "/incoming-call"), servedBy(fleet, "/twilio")]).toEqual([[2], [0]]);
    agent.say("Our next opening is on Tuesday.", 2_000);
    await phone.waitFor(() => phone.mediaReceived > 0, "the agent speaking");
    agent.userStartedSpeaking();
    await phone.waitFor(() => phone.clears === 1, "the barge-in's clear");
    const slots = JSON.parse(await agent.callFunction("check_available_slots", {}));
    expect(slots.slots?.length ?? slots.available?.length).toBeGreaterThan(0);
    phone.hangUp();
    await eventually(async () => {
      const { call } = await json((await fleet?.get("/calls/CAfleet0001")) as Response);
      return call.end_reason === "caller_hung_up";
    }, "the end on the record");
  });

  test("the call limit holds across instances under a burst of inbound calls", async () => {
    fleet = await startFleet(3, { MAX_CONCURRENT_CALLS: "3" });
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, index) =>
        fleet
          ?.incoming(`CAburst${String(index).padStart(4, "0")}`)
          .then((response) => response?.text()),
      ),
    );
    expect(answers.filter((xml) => xml?.includes("<Stream"))).toHaveLength(3);
    expect(answers.filter((xml) => xml?.includes("lines are busy"))).toHaveLength(9);
  });

  test("kill -9 of an instance with a live call: a survivor ends its record and frees its slot", async () => {
    fleet = await startFleet(
      3,
      { INSTANCE_HEARTBEAT_MS: "100", INSTANCE_LOST_AFTER_MS: "500", MAX_CONCURRENT_CALLS: "1" },
      [2],
    );
    fleet.proxy.prefer.set("/incoming-call", 0).set("/twilio", 2);
    const xml = await (await fleet.incoming("CAkilled001")).text();
    const phone = await openStream(xml, "CAkilled001");
    await fleet.agent.nextSession();
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, "the call live on the process");
    expect(await fleet.instances[0]?.coordination.load()).toBe(1);
    expect(await (await fleet.incoming("CAturned001")).text()).toContain("lines are busy");

    fleet.proxy.set(2, undefined);
    const killedAt = performance.now();
    fleet.processes.get(2)?.kill("SIGKILL");
    const ended = await eventually(
      async () => {
        const record = await fleet?.instances[0]?.store.calls.get("CAkilled001");
        return record?.ended_at ? record : undefined;
      },
      "the killed instance's call ended by a survivor",
      10_000,
    );
    const endedAfterMs = performance.now() - killedAt;
    expect(ended).toMatchObject({ end_reason: "instance_lost", status: "completed" });
    expect(endedAfterMs).toBeLessThan(5_000);
    // Its slot is freed right after its records are ended (in the same sweep).
    const running = fleet;
    await eventually(
      async () => (await running.instances[1]?.coordination.load()) === 0,
      "the slot freed",
    );
    expect(await (await fleet.incoming("CAafter0001")).text()).toContain("<Stream");
  }, 30_000);

  test("rolling restart: SIGTERM to one instance under a steady stream of new calls refuses none", async () => {
    fleet = await startFleet(3, { SHUTDOWN_DRAIN_MS: "20000" });
    fleet.proxy.prefer.set("/twilio", 1);
    const longXml = await (await fleet.incoming("CAlong00001")).text();
    const longCall = await openStream(longXml, "CAlong00001");
    await fleet.agent.nextSession();
    await longCall.waitFor(
      () => longCall.heardBytes === GREETING_BYTES,
      "the long call, on instance 1",
    );
    fleet.proxy.prefer.clear();

    /** One new inbound call: answered with a stream, greeted, hung up. @returns what went wrong */
    let made = 0;
    const newCall = async (): Promise<string | undefined> => {
      const callSid = `CAroll${String(made++).padStart(5, "0")}`;
      const xml = await (await (fleet as Fleet).incoming(callSid)).text();
      if (!xml.includes("<Stream")) return `${callSid}: turned away`;
      const phone = await openStream(xml, callSid);
      try {
        await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, `${callSid} greeted`, 5_000);
      } catch {
        return `${callSid}: no greeting`;
      } finally {
        phone.hangUp();
      }
      return undefined;
    };
    const problems: string[] = [];
    let traffic = true;
    const callers = Array.from({ length: 3 }, async () => {
      while (traffic) {
        const problem = await newCall();
        if (problem) problems.push(problem);
      }
    });
    await Bun.sleep(200);
    const restarting = fleet.instances[1];
    const drained = restarting?.shutdown("SIGTERM");
    await Bun.sleep(300);
    expect(restarting?.calls.size).toBe(1); // still talking: its call goes on during the drain
    longCall.hangUp();
    await drained;
    await fleet.start(1);
    await Bun.sleep(300);
    traffic = false;
    await Promise.all(callers);

    expect(problems).toEqual([]);
    expect(made).toBeGreaterThan(10);
    const long = await fleet.instances[0]?.store.calls.get("CAlong00001");
    expect(long).toMatchObject({ end_reason: "caller_hung_up" });
    const refusedUpgrades = fleet.logs[1]?.filter((line) => line.msg === "media stream refused");
    expect(refusedUpgrades).toEqual([]);
  }, 30_000);

  test("50 bookings of one slot at once, spread over the three instances: exactly one wins", async () => {
    fleet = await startFleet(3);
    const instances = fleet.instances.filter((service) => service !== undefined);
    const [first] = instances;
    const [slot] =
      (await first?.store.appointments.openSlots({
        calendar: "dental",
        from: new Date().toISOString(),
        to: new Date(Date.now() + 30 * 86_400_000).toISOString(),
        limit: 1,
      })) ?? [];
    if (!slot) throw new Error("no open slot");
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        instances[index % instances.length]?.store.appointments.book({
          slot_id: slot.id,
          name: `Caller ${index}`,
        }),
      ),
    );
    expect(results.filter((result) => result?.ok)).toHaveLength(1);
    expect(
      results.filter((result) => result?.ok === false && result.reason === "slot_taken"),
    ).toHaveLength(49);
  });

  test("a transfer: the redirect from the instance holding the call, the whisper and the result on others, back on a third", async () => {
    fleet = await startFleet(3, { TRANSFER_NUMBER: "+15551230000" });
    fleet.proxy.prefer
      .set("/make-call", 0)
      .set("/twilio", 1)
      .set("/transfer-whisper", 2)
      .set("/transfer-result", 0);
    const placed = await json(await fleet.makeCall({ to: TO }));
    await fleet.twilio.sendAmd(placed.call_sid, "human");
    const phone = await fleet.twilio.answer(placed.call_sid);
    const agent = await fleet.agent.nextSession();
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, "the greeting");
    void agent.callFunction("transfer_call", {
      reason: "asked for a licensed agent",
      summary: "Jamie wants to talk about the quote.",
    });
    await phone.closed;
    expect(fleet.twilio.dialOf(placed.call_sid).to).toBe("+15551230000");
    const whisper = await fleet.twilio.whisper(placed.call_sid);
    expect(readTwiml(await whisper.text()).say[0]).toContain(
      "Jamie wants to talk about the quote.",
    );
    // No one answers: the caller is back with the agent, this time on the third instance.
    fleet.proxy.prefer.set("/twilio", 2);
    const { stream } = await fleet.twilio.dialResult(placed.call_sid, "no-answer");
    if (!stream) throw new Error("no stream back to the agent");
    const resumed = await fleet.agent.nextSession();
    await stream.waitFor(() => stream.heardBytes > 0, "the agent again");
    expect(servedBy(fleet, "/twilio")).toEqual([1, 2]);
    expect(servedBy(fleet, "/transfer-whisper")).toEqual([2]);
    expect(servedBy(fleet, "/transfer-result")).toEqual([0]);
    await resumed.callFunction("end_call", { reason: "done" });
    resumed.say("Goodbye!", 200);
    await stream.closed;
    const running = fleet;
    const call = await eventually(async () => {
      const { call: record } = await json(await running.get(`/calls/${placed.call_sid}`));
      return record.end_reason ? record : undefined;
    }, "the call's end, written by the instance that held it");
    expect(call).toMatchObject({
      end_reason: "agent_ended_call",
      transfer: { result: "no-answer", to: "+15551230000" },
    });
  });

  test("Twilio's end of a call, reported to one instance, ends its session on another", async () => {
    fleet = await startFleet(3);
    fleet.proxy.prefer
      .set("/make-call", 0)
      .set("/twilio", 1)
      .set("/amd-result", 2)
      .set("/call-status", 2);
    const placed = await json(await fleet.makeCall({ to: TO }));
    const phone = await fleet.twilio.answer(placed.call_sid);
    await fleet.agent.nextSession();
    await fleet.twilio.sendAmd(placed.call_sid, "human");
    await phone.waitFor(() => phone.heardBytes === GREETING_BYTES, "the call live on instance 1");
    // The stream's own close is lost: only the status callback says the call is over.
    expect((await fleet.twilio.sendStatus(placed.call_sid, "completed"))?.status).toBe(204);
    await phone.closed;
    const record = await eventually(async () => {
      const { timeline } = await json((await fleet?.get(`/calls/${placed.call_sid}`)) as Response);
      return timeline.find((event: { kind: string }) => event.kind === "ended");
    }, "the session's end on the record");
    expect(record.data).toMatchObject({
      reason: "caller_hung_up",
      detail: "Twilio reported the call completed",
    });
    expect(servedBy(fleet, "/call-status").at(-1)).toBe(2);
  });
});
