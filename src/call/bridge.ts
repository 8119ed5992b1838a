/**
 * Turns a Twilio stream's `start` into a running CallSession: authenticates the stream (one-time
 * token, or the explicit development switch), refuses duplicates and streams during shutdown, takes
 * the scenario, direction, numbers and lead from what the service granted (never from the stream),
 * marks the call in progress, builds the agent settings and registers the session. The token is
 * used up before anything waits on the store, so a stream is admitted once whatever arrives meanwhile.
 */

import type { Clock } from "../clock.ts";
import { type Config, integrationStatus } from "../config.ts";
import type { CallMessage, Coordination } from "../fleet/coordination.ts";
import type { Logger } from "../log.ts";
import { type Metrics, meteredRecorder } from "../ops/metrics.ts";
import {
  type AgentSettings,
  type HistoryItem,
  settingsMessage,
  updateThinkMessage,
} from "../protocol/deepgram-agent.ts";
import type { StreamStart } from "../protocol/twilio-media.ts";
import type { Scenario } from "../scenarios/types.ts";
import type { CallEvent, CallRecord, TransferResult } from "../store/calls.ts";
import type { Storage } from "../store/port.ts";
import { storeRecorder } from "./recorder.ts";
import type { Recordings } from "./recording.ts";
import type { CallRegistry } from "./registry.ts";
import {
  type AgentConnector,
  CallSession,
  PHRASES,
  type PhoneChannel,
  type Telephony,
  type TextToSpeech,
} from "./session.ts";
import type { StreamGrant } from "./stream-tokens.ts";
import {
  type CallRedirect,
  DEFAULT_TRANSFER_KEY,
  TRANSFER_TOOL,
  transferCallTool,
  transferTarget,
  twilioTransfer,
} from "./transfer.ts";

export interface BridgeDeps {
  config: Config;
  store: Storage;
  calls: CallRegistry;
  /** Tokens, and which instance holds each live call, shared by every instance of the service. */
  coordination: Coordination;
  scenarios: ReadonlyMap<string, Scenario>;
  connectAgent: AgentConnector;
  telephony?: Telephony & CallRedirect;
  /** Speech for voicemail on outbound calls. */
  tts: TextToSpeech;
  apologyAudio: Uint8Array;
  /** Present with RECORDING=local. */
  recordings?: Recordings;
  /** Counts what calls record, for `/metrics`. */
  metrics?: Metrics;
  clock: Clock;
  logger: Logger;
}

/** How long before the time limit the agent is told to wrap up (at most a quarter of the call). */
const WRAP_UP_MS = 60_000;

/** What the caller hears when a transfer did not connect and they are back with the agent. */
export const TRANSFER_UNANSWERED =
  "I'm sorry, no one was able to take your call just now. Would you like me to take a message so someone can call you back?";

/** Added to the prompt when the caller can be handed to a person. */
const TRANSFER_NOTE =
  "\n\nIf the caller asks for a person, or you cannot help them, transfer the call with transfer_call (the caller can also press a key for that).";

/** Added to the prompt of the conversation that goes on after a transfer did not connect. */
const afterTransferNote = (result: TransferResult) =>
  `\n\nThe caller was just transferred to a person, and it did not connect (${result}). You have told them so and offered to take a message: take one with take_message if they want, and do not try to transfer again.`;

/** The conversation so far, from the call's timeline, for an agent that takes it over. */
function historyOf(events: readonly CallEvent[]): HistoryItem[] {
  return events.flatMap((event) =>
    event.kind === "transcript"
      ? [{ type: "History" as const, role: event.data.role, content: event.data.text }]
      : [],
  );
}

/** A recording may run this much past MAX_CALL_DURATION_MS (the goodbye, the hang-up). */
const RECORDING_SLACK_MS = 60_000;

const GENERIC_VOICEMAIL =
  "Hello, we called about your recent request and will try you again soon. Thank you!";

export type OpenResult =
  | { ok: true; session: CallSession }
  /** `internal`: the stream was acceptable but setting the call up failed (a bug or the database). */
  | { ok: false; reason: string; internal?: boolean };

/** Whether a stream may be bridged; a refusal with a grant ends the call's record. */
type Admission =
  | { ok: true; grant: StreamGrant; scenario: Scenario }
  | { ok: false; reason: string; grant?: StreamGrant };

export class CallBridge {
  /** Streams closed without an agent connection (bad token, duplicate, shutdown, …). */
  refusedStreams = 0;

  constructor(private readonly deps: BridgeDeps) {}

  async open(start: StreamStart, phone: PhoneChannel): Promise<OpenResult> {
    const opened = this.deps.calls.opening();
    try {
      return await this.#setUp(start, phone);
    } finally {
      opened();
    }
  }

  async #setUp(start: StreamStart, phone: PhoneChannel): Promise<OpenResult> {
    let admitted: Admission;
    try {
      admitted = await this.#admit(start);
    } catch (error) {
      // The store or the coordination failed (Redis unreachable, …): whatever this instance
      // may have taken is let go; the call's record ends with the reason.
      this.deps.logger.error("could not admit a stream", { callSid: start.callSid, error });
      await this.deps.coordination.releaseCall(start.callSid).catch(() => {});
      await this.#endRefused(start.callSid, "the service could not admit the stream");
      this.refusedStreams += 1;
      return { ok: false, reason: "internal error while admitting the stream", internal: true };
    }
    if (!admitted.ok) {
      if (admitted.grant) await this.#endRefused(start.callSid, admitted.reason);
      return this.#refuse(start, admitted.reason);
    }
    const { coordination } = this.deps;
    try {
      const session = await this.#open(start, admitted.grant, admitted.scenario, phone);
      if (session) return { ok: true, session };
      await coordination.releaseCall(start.callSid);
      await this.#endRefused(start.callSid, "service is shutting down");
      return this.#refuse(start, "service is shutting down");
    } catch (error) {
      await coordination.releaseCall(start.callSid).catch(() => {});
      const { store, clock, logger } = this.deps;
      logger.error("could not set up the call", { callSid: start.callSid, error });
      try {
        if (await store.calls.get(start.callSid)) {
          const message = error instanceof Error ? error.message : String(error);
          const recorder = storeRecorder(store.calls, start.callSid, clock, logger);
          recorder.event({ kind: "error", data: { source: "internal", message } });
          recorder.ended("internal_error", message);
        }
      } catch (failure) {
        logger.error("could not record the failed set-up", { error: failure });
      }
      this.refusedStreams += 1;
      return { ok: false, reason: "internal error while setting up the call", internal: true };
    }
  }

  /** @returns the running session, or undefined when the service began shutting down meanwhile */
  async #open(
    start: StreamStart,
    grant: StreamGrant,
    scenario: Scenario,
    phone: PhoneChannel,
  ): Promise<CallSession | undefined> {
    const { config, store, clock, calls } = this.deps;
    const { direction } = grant;
    await store.calls.ensure({
      sid: start.callSid,
      direction,
      lead_id: grant.leadId ?? null,
      from_number: grant.from,
      to_number: grant.to,
      scenario: scenario.id,
      status: "in-progress",
    });
    const record = await store.calls.started(start.callSid);
    if (!record) throw new Error("the call's record is already ended");
    const logger = this.deps.logger.child({ callSid: start.callSid, scenario: scenario.id });
    const prepared = await scenario.prepare(
      {
        callSid: start.callSid,
        direction,
        from: record.from_number,
        to: record.to_number,
        startedAt: clock.now(),
        recorded: this.deps.recordings !== undefined,
        ...(grant.leadId ? { leadId: grant.leadId } : {}),
      },
      { store, clock, logger },
    );
    const resumed = grant.afterTransfer;
    const transfer = this.#transfer(start.callSid, scenario, record);
    if (transfer && !resumed) {
      prepared.tools = [...prepared.tools, transferCallTool(transfer.target, scenario.timeZone)];
      prepared.transferKey = scenario.transferKey ?? DEFAULT_TRANSFER_KEY;
      prepared.prompt += TRANSFER_NOTE;
    }
    if (resumed) {
      prepared.tools = prepared.tools.filter((tool) => tool.name !== TRANSFER_TOOL);
      prepared.prompt += afterTransferNote(resumed);
      prepared.greeting = TRANSFER_UNANSWERED;
    }
    const agentSettings: AgentSettings = {
      tags: [direction, scenario.id],
      mipOptOut: config.deepgram.mipOptOut,
      listenModel: config.agent.sttModel,
      keyterms: prepared.keyterms,
      thinkProvider: config.agent.llmProvider,
      thinkModel: config.agent.llmModel,
      prompt: prepared.prompt,
      functions: prepared.tools,
      speakProvider: config.agent.ttsProvider,
      voice: config.agent.voiceModel,
      greeting: prepared.greeting,
      ...(resumed ? { history: historyOf(await store.calls.events(start.callSid)) } : {}),
    };
    // Checked again after the store answered: a shutdown that began meanwhile drains only the
    // sessions registered by then (and nothing is opened for a call that will not run).
    if (calls.draining) return undefined;
    const recording = this.deps.recordings?.open(start.callSid, {
      logger,
      maxMs: config.calls.maxCallMs + RECORDING_SLACK_MS,
      recorded: (info) => store.calls.update(start.callSid, { recording: info }),
    });
    const recorder = storeRecorder(store.calls, start.callSid, clock, logger);
    const session = new CallSession({
      callSid: start.callSid,
      streamSid: start.streamSid,
      labels: { direction, scenario: scenario.id },
      customerNumber: direction === "inbound" ? record.from_number : record.to_number,
      scenario: prepared,
      settings: () => settingsMessage(agentSettings),
      wrapUpMessage: () => updateThinkMessage(agentSettings, PHRASES.wrapUp),
      resumeSettings: (history) =>
        settingsMessage({ ...agentSettings, greeting: undefined, history }),
      phone,
      connectAgent: this.deps.connectAgent,
      ...(this.deps.telephony ? { telephony: this.deps.telephony } : {}),
      recorder: this.deps.metrics
        ? meteredRecorder(
            recorder,
            this.deps.metrics,
            new Set(prepared.tools.map((tool) => tool.name)),
          )
        : recorder,
      clock,
      logger,
      timings: {
        silencePromptMs: config.calls.silencePromptMs,
        silenceHangupMs: config.calls.silenceHangupMs,
        maxCallMs: config.calls.maxCallMs,
        toolTimeoutMs: config.calls.toolTimeoutMs,
        endSettleMs: config.calls.endSettleMs,
        hangupSafetyMs: config.calls.hangupSafetyMs,
        wrapUpMs: Math.min(WRAP_UP_MS, Math.floor(config.calls.maxCallMs / 4)),
      },
      apologyAudio: this.deps.apologyAudio,
      ...(transfer && !resumed ? { transfer: transfer.port } : {}),
      ...(recording ? { recording } : {}),
      ...(resumed && record.caller_audio ? { callerAudioSoFar: record.caller_audio } : {}),
      ...(direction === "outbound"
        ? {
            outbound: {
              verdictTimeoutMs: config.calls.amdVerdictTimeoutMs,
              initialVerdict: record.answered_by,
              voicemail: prepared.voicemail ?? GENERIC_VOICEMAIL,
              tts: this.deps.tts,
            },
          }
        : {}),
      onEnded: (ended) => {
        calls.unregister(ended.callSid);
        this.deps.coordination
          .releaseCall(ended.callSid)
          .catch((error: unknown) => logger.error("could not release the call's slot", { error }));
      },
    });
    calls.register(session);
    logger.info("call started", { direction, streamSid: start.streamSid });
    session.start();
    return session;
  }

  /**
   * How this call would be handed to a person, when its scenario has a transfer target and Twilio
   * can be asked to (configured, with a public URL for the result).
   */
  #transfer(callSid: string, scenario: Scenario, record: CallRecord) {
    const { config, telephony, store, clock } = this.deps;
    const target = transferTarget(config.transfer, scenario.id);
    const externalUrl = config.server.externalUrl;
    if (!target || !telephony || !externalUrl) return undefined;
    const port = twilioTransfer({
      callSid,
      target,
      callerId: record.direction === "inbound" ? record.to_number : record.from_number,
      externalUrl,
      ringTimeoutS: config.transfer.ringTimeoutS,
      telephony,
      calls: store.calls,
      clock,
    });
    return { target, port };
  }

  /** Counts and logs a stream that will not be bridged. */
  #refuse(start: StreamStart, reason: string): OpenResult {
    this.refusedStreams += 1;
    this.deps.logger.warn("media stream refused", { callSid: start.callSid, reason });
    return { ok: false, reason };
  }

  /**
   * Ends the records of calls whose stream never came (their token expired unused), so an answered
   * call that never streamed does not stay "ringing" forever. Called periodically by the service.
   */
  async endStreamlessCalls(): Promise<void> {
    const { coordination, calls, store, logger } = this.deps;
    let expired: string[];
    try {
      expired = await coordination.takeExpiredTokens();
    } catch (error) {
      logger.error("could not look for calls whose stream never came", { error });
      return;
    }
    for (const callSid of expired) {
      if (calls.get(callSid)) continue;
      try {
        const ended = await store.calls.endIfOpen(
          callSid,
          "stream_never_started",
          "no media stream arrived before the call's token expired",
        );
        if (ended) logger.warn("call ended: its media stream never arrived", { callSid });
      } catch (error) {
        logger.error("could not end a call whose stream never came", { callSid, error });
      }
    }
  }

  /** Hands Twilio's answering-machine verdict to the live session of that call on this instance. */
  verdict(callSid: string, answeredBy: string): void {
    const live = this.deps.calls.get(callSid);
    if (live instanceof CallSession) live.verdict(answeredBy);
  }

  /** Twilio's terminal status for a call live on this instance: its session ends. */
  callEnded(callSid: string, status: string): void {
    const live = this.deps.calls.get(callSid);
    if (live instanceof CallSession) live.telephonyEnded(status);
  }

  /** A message for a call this instance holds, from whichever instance Twilio's callback reached. */
  deliver(message: CallMessage): void {
    if (message.kind === "verdict") this.verdict(message.callSid, message.answeredBy);
    else this.callEnded(message.callSid, message.status);
  }

  /**
   * Decides whether a stream may be bridged. The token is checked (and used up) before anything
   * else about the call, so nothing the stream says is trusted unless the service issued it; in the
   * same step this instance takes the call (its slot passes from the token to the live call),
   * unless another instance already holds it. A stream refused after that lets the call go again.
   */
  async #admit(start: StreamStart): Promise<Admission> {
    const { config, calls, coordination, scenarios } = this.deps;
    if (start.encoding !== "audio/x-mulaw" || start.sampleRate !== 8000) {
      return {
        ok: false,
        reason: `unsupported media format ${start.encoding}/${start.sampleRate}`,
      };
    }
    const redeemed = await coordination.redeemToken(start.callSid, start.customParameters.token);
    const dev =
      !redeemed && config.calls.allowDevStreams
        ? this.#devGrant(start.customParameters)
        : undefined;
    const grant = redeemed?.grant ?? dev;
    if (!grant) return { ok: false, reason: "missing, used or wrong stream token" };
    const held = redeemed ? redeemed.held : await coordination.holdCall(start.callSid);
    // Live on another instance (or here): its record is that stream's, not to be ended here.
    if (!held || calls.get(start.callSid))
      return { ok: false, reason: "a stream for this call is already live" };
    const refused = async (reason: string) => {
      await coordination.releaseCall(start.callSid);
      return { ok: false as const, reason, grant };
    };
    if (calls.draining) return refused("service is shutting down");
    const deepgram = integrationStatus(config).deepgram;
    if (!deepgram.configured)
      return refused(`Deepgram is not configured: set ${deepgram.missing.join(", ")}`);
    const scenario = scenarios.get(grant.scenario);
    if (!scenario) return refused(`unknown scenario ${grant.scenario}`);
    return { ok: true, grant, scenario };
  }

  /**
   * ALLOW_DEV_STREAMS only: a stream without a token describes itself (scripts/dev-client.ts), and
   * is always an inbound call.
   */
  #devGrant(parameters: Record<string, string>): StreamGrant {
    return {
      scenario: parameters.scenario ?? this.deps.config.calls.defaultScenario,
      direction: "inbound",
      from: parameters.from ?? "unknown",
      to: parameters.to ?? "unknown",
    };
  }

  /** A stream the service had issued a token for was refused: its record must not stay open. */
  async #endRefused(callSid: string, reason: string): Promise<void> {
    const { store, calls, clock, logger } = this.deps;
    try {
      if (calls.get(callSid) || !(await store.calls.get(callSid))) return;
      const endReason = calls.draining ? "service_shutdown" : "stream_refused";
      storeRecorder(store.calls, callSid, clock, logger).ended(endReason, reason);
    } catch (error) {
      logger.error("could not end a refused stream's call", { callSid, error });
    }
  }
}
