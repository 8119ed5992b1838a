/**
 * `GET /metrics` after a scripted call over real sockets: what the call did is in the counters and
 * histograms, read back through a Prometheus text-format parser; the secret guards it.
 */
import { afterEach, expect, test } from "bun:test";
import { openStream } from "../fakes/twilio-webhooks.ts";
import { eventually } from "../helpers/eventually.ts";
import { count, declared, parseMetrics, type Scrape, value } from "../helpers/metrics.ts";
import { type SignedService, startSignedService } from "../helpers/signed-service.ts";

let running: SignedService;
afterEach(() => running.stop());

const scrape = async (): Promise<Scrape> => {
  const response = await running.authed("/metrics");
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return parseMetrics(await response.text());
};
const CALL = { direction: "inbound", scenario: "dental-receptionist" };

test("a scripted call's calls, turns, barge-in, function call, agent and webhook in the metrics", async () => {
  running = await startSignedService({}, { endings: { pollMs: 10, settleMs: 0 } });
  const sid = "CAmetrics00000000000000000000000001";
  const xml = await (await running.incoming(sid)).text();
  const phone = await openStream(xml, sid);
  const agent = await running.agent.nextSession();
  await phone.waitFor(() => phone.heardBytes === 100 * 8, "greeting heard");

  const live = await scrape();
  expect(value(live, "voice_agent_calls_active", CALL)).toBe(1);
  expect(count(live, "voice_agent_agent_connect_seconds")).toBe(1);
  expect(
    value(live, "voice_agent_webhooks_total", { route: "/incoming-call", status: "200" }),
  ).toBe(1);

  // A turn: the caller's words, then the agent's answer (and its LatencyReport).
  agent.userSays("Do you have anything on Tuesday?");
  agent.say("Let me look at Tuesday for you, we have quite a few openings that day.", 2000);
  await phone.waitFor(() => phone.mediaReceived > 0, "the answer sent");
  // The caller talks over it: a barge-in.
  agent.userStartedSpeaking();
  await phone.waitFor(() => phone.clears === 1, "clear");
  agent.userEndsTurn("Actually, just book me the first one.");
  await agent.callFunction("check_available_slots", {});
  await agent.callFunction("end_call", { reason: "done" });
  agent.say("Goodbye!", 100);
  await phone.closed;

  const ended = await eventually(async () => {
    const now = await scrape();
    return value(now, "voice_agent_calls_total") > 0 ? now : undefined;
  }, "the ended call counted");
  expect(value(ended, "voice_agent_calls_active", CALL)).toBe(0);
  expect(value(ended, "voice_agent_calls_total", { ...CALL, end_reason: "agent_ended_call" })).toBe(
    1,
  );
  expect(value(ended, "voice_agent_call_outcomes_total", { scenario: CALL.scenario })).toBe(1);
  // Two turns: the answer, and (after the caller's second turn) the goodbye.
  expect(count(ended, "voice_agent_turn_latency_seconds", { source: "measured" })).toBe(2);
  expect(count(ended, "voice_agent_turn_latency_seconds", { source: "agent" })).toBeGreaterThan(0);
  expect(value(ended, "voice_agent_barge_ins_total")).toBe(1);
  expect(
    value(ended, "voice_agent_function_calls_total", { name: "check_available_slots", ok: "true" }),
  ).toBe(1);
  expect(
    count(ended, "voice_agent_function_call_duration_seconds", { name: "check_available_slots" }),
  ).toBe(1);
  expect(value(ended, "voice_agent_agent_failures_total")).toBe(0);
  // The process's own, and the event loop's lag.
  for (const name of [
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "voice_agent_event_loop_lag_seconds",
  ])
    expect(declared(ended, name)).toBe(true);
  // The call's log line, once its record is final.
  expect(running.logs.filter((line) => line.msg === "call ended")).toEqual([
    expect.objectContaining({
      callSid: sid,
      end_reason: "agent_ended_call",
      outcome: "no_decision",
      duration_ms: expect.any(Number),
    }),
  ]);
  // Counted once: a second look changes nothing.
  expect(value(await scrape(), "voice_agent_calls_total")).toBe(1);
});

test("the secret guards it; scrapes log at debug", async () => {
  running = await startSignedService();
  expect((await fetch(`${running.service.url}/metrics`)).status).toBe(401);
  await scrape();
  // Written after each response has gone out.
  const scrapes = () =>
    running.logs.filter((line) => line.msg === "http" && line.path === "/metrics");
  await eventually(() => scrapes().length === 2, "both access-log lines");
  expect(scrapes().map((line) => [line.level, line.status])).toEqual([
    ["debug", 401],
    ["debug", 200],
  ]);
});
