/**
 * One phone call: bridges the Twilio media stream and the Deepgram agent through small ports, owns
 * the call's state machine, plays agent audio with mark tracking, handles barge-in, function calls,
 * silence prompts, the time limit, agent faults and hang-up after the last words have been heard.
 * No sockets or timers of its own: everything arrives through `SessionDeps`, so tests drive it directly.
 * Every way in is contained: an exception ends this call as `internal_error`, never the process.
 */
import type { Clock, Timer } from "../clock.ts";
import { type Logger, tryLogged } from "../log.ts";
import {
  type AgentMessage,
  type AgentServerMessage,
  type HistoryItem,
  type InjectionBehavior,
  injectAgentMessage,
  injectUserMessage,
  updatePromptMessage,
} from "../protocol/deepgram-agent.ts";
import { TwilioEncoder, type TwilioInbound } from "../protocol/twilio-media.ts";
import type { PreparedScenario } from "../scenarios/types.ts";
import type { CallEventInput, LatencyFigures } from "../store/calls.ts";
import { FunctionCalls } from "./function-calls.ts";
import { PlaybackTracker } from "./playback.ts";
import type { LiveCall } from "./registry.ts";
import { type CallState, canTransition, type EndReason } from "./state.ts";

/** The Twilio media-stream socket as the session sees it: already-encoded text frames out. */
export interface PhoneChannel {
  /** Sends one frame, or two written together (audio and its mark). */
  send(text: string, then?: string): void;
  /** Closing a `<Connect><Stream>` socket ends the phone call. */
  close(): void;
}

/** An agent socket that has been set up (Settings applied). */
export interface AgentChannel {
  /** Deepgram's id of this agent session (from Welcome), for support requests. */
  readonly requestId?: string | undefined;
  sendAudio(audio: Uint8Array): void;
  send(text: string): void;
  close(): void;
}

export interface AgentHandlers {
  message(message: AgentServerMessage): void;
  audio(audio: Buffer): void;
  /** The socket closed without the session asking. */
  closed(reason: string): void;
}

/** Opens an agent socket, sends `settings` and resolves once they are applied. */
export type AgentConnector = (settings: string, handlers: AgentHandlers) => Promise<AgentChannel>;

/** Hangs up a call through the telephony provider's API (Twilio REST). */
export interface Telephony {
  hangUp(callSid: string): Promise<void>;
}

/** Where the session writes what happened; implementations must not throw. */
export interface CallRecorder {
  event(event: CallEventInput): void;
  /** The call's business result, e.g. no_answer_voicemail_left. */
  outcome(outcome: string, detail: string): void;
  ended(reason: EndReason, detail: string): void;
}

/** Speech synthesis streamed as raw mu-law 8 kHz chunks. */
export interface TextToSpeech {
  stream(text: string): AsyncIterable<Uint8Array>;
}

/** Outbound calls wait for Twilio's answering-machine verdict before the agent is heard. */
export interface OutboundOptions {
  /** No verdict by then counts as a person. */
  verdictTimeoutMs: number;
  /** A verdict that arrived before the stream started. */
  initialVerdict?: string | null;
  /** What to say to an answering machine. */
  voicemail: string;
  tts: TextToSpeech;
}

export interface CallTimings {
  /** Quiet time after the agent's audio has been heard before "Are you still there?". */
  silencePromptMs: number;
  /** Further quiet time after that prompt before the goodbye. */
  silenceHangupMs: number;
  /** Longest call; then a polite goodbye. */
  maxCallMs: number;
  /** Longest a tool handler may run. */
  toolTimeoutMs: number;
  /** While ending: how long the line must stay quiet after the last audio before hanging up. */
  endSettleMs: number;
  /** While ending: hang up after this long whatever is still playing. */
  hangupSafetyMs: number;
  /** This long before `maxCallMs` the agent is told to wrap up by itself. */
  wrapUpMs: number;
}

export const PHRASES = {
  stillThere: "Are you still there?",
  silenceGoodbye:
    "I haven't heard anything, so I'll end the call now. Feel free to call back any time. Goodbye!",
  timeLimit:
    "I'm sorry, we've reached the time limit for this call. Thank you for your time. Goodbye!",
  wrapUp:
    "The call reaches its time limit in under a minute. Wrap up now: finish the current point, briefly say what happens next, and say goodbye. Do not start anything new.",
  shutdown: "I'm sorry, I have to end the call now. Please call back in a few minutes. Goodbye!",
} as const;

export interface SessionDeps {
  callSid: string;
  streamSid: string;
  /** Who the agent is talking to: caller for inbound, called party for outbound. */
  customerNumber: string;
  scenario: PreparedScenario;
  /** The encoded Settings message for this call. */
  settings: string;
  /**
   * Settings that resume the conversation so far on a new agent socket (no greeting). Without it
   * an agent socket that drops mid-call ends the call with the apology.
   */
  resumeSettings?: (history: readonly HistoryItem[]) => string;
  phone: PhoneChannel;
  connectAgent: AgentConnector;
  telephony?: Telephony;
  recorder: CallRecorder;
  clock: Clock;
  logger: Logger;
  timings: CallTimings;
  /** Raw mu-law 8 kHz apology played when the agent fails. */
  apologyAudio: Uint8Array;
  /** Present for outbound calls: answering-machine handling. */
  outbound?: OutboundOptions;
  /** Called once, when the call has ended. */
  onEnded(session: CallSession): void;
}

/** Twilio's AnsweredBy values that mean a machine took the call (DetectMessageEnd and Enable). */
export function isMachine(answeredBy: string): boolean {
  return answeredBy.startsWith("machine_");
}

interface Ending {
  reason: EndReason;
  detail: string;
  /** True until the agent has finished speaking words we asked it to say. */
  awaitingSpeech: boolean;
  /** The function call (`end_call`) that asked for this end, which the agent may still withdraw. */
  callId?: string;
}

/** Words the call must not end without: sent again, interrupting, if the agent refuses them once. */
interface Injection {
  words: string;
  retried: boolean;
}

export class CallSession implements LiveCall {
  readonly callSid: string;
  readonly #deps: SessionDeps;
  readonly #encoder: TwilioEncoder;
  readonly #playback = new PlaybackTracker();
  readonly #functionCalls: FunctionCalls;
  readonly #ended = Promise.withResolvers<void>();
  #state: CallState = "connecting";
  #agent: AgentChannel | undefined;
  /** Between the agent's first audio of a turn and its AgentAudioDone. */
  #agentSpeaking = false;
  #silencePrompted = false;
  #ending: Ending | undefined;
  #ignored = 0;
  #silenceTimer: Timer | undefined;
  #settleTimer: Timer | undefined;
  #safetyTimer: Timer | undefined;
  #maxDurationTimer: Timer | undefined;
  #wrapUpTimer: Timer | undefined;
  #verdictTimer: Timer | undefined;
  /** Outbound, before the verdict: the agent's greeting, held until we know a person answered. */
  #held: Buffer[] = [];
  #heldTurnDone = false;
  #heldEvents: CallEventInput[] = [];
  /** The conversation so far, for resuming it on a new agent socket. */
  readonly #history: HistoryItem[] = [];
  /** The agent socket has been replaced once already. */
  #reconnected = false;
  /** Ending words sent to the agent and not yet spoken. */
  #injection: Injection | undefined;

  constructor(deps: SessionDeps) {
    this.#deps = deps;
    this.callSid = deps.callSid;
    this.#encoder = new TwilioEncoder(deps.streamSid);
    this.#functionCalls = new FunctionCalls({
      tools: new Map(deps.scenario.tools.map((tool) => [tool.name, tool])),
      context: {
        callSid: deps.callSid,
        customerNumber: deps.customerNumber,
        get now() {
          return deps.clock.now();
        },
      },
      clock: deps.clock,
      timeoutMs: deps.timings.toolTimeoutMs,
      logger: deps.logger,
      send: (text) => this.#agent?.send(text),
      record: (event) => {
        deps.recorder.event(event);
        if (event.kind === "function_call" && !event.data.cancelled) this.#remember(event.data);
      },
      endCall: (reason, callId) =>
        this.#contained(() => this.#beginEnding("agent_ended_call", reason, false, callId))(),
      withdrawEnd: (callId) => this.#contained(() => this.#withdrawEnd(callId))(),
      ended: () => this.#state === "ended",
    });
  }

  get state(): CallState {
    return this.#state;
  }

  /** Resolves when the call has ended. */
  get ended(): Promise<void> {
    return this.#ended.promise;
  }

  /** Audio sent to the phone and not yet confirmed heard, in ms. */
  get queuedMs(): number {
    return this.#playback.queuedMs;
  }

  /**
   * Opens the agent socket; the greeting starts as soon as the settings are applied, or, on an
   * outbound call, as soon as the answering-machine verdict says a person answered.
   */
  start(): void {
    try {
      this.#start();
    } catch (error) {
      this.#fault(error);
    }
  }

  #start(): void {
    const { timings, outbound } = this.#deps;
    this.#maxDurationTimer = this.#after(timings.maxCallMs, () =>
      this.#endWithWords("max_duration", `call reached ${timings.maxCallMs} ms`, PHRASES.timeLimit),
    );
    if (timings.wrapUpMs < timings.maxCallMs) {
      this.#wrapUpTimer = this.#after(timings.maxCallMs - timings.wrapUpMs, () => {
        if (this.#state !== "live" || !this.#agent) return;
        this.#agent.send(updatePromptMessage(PHRASES.wrapUp));
        this.#deps.recorder.event({
          kind: "prompt_updated",
          data: { reason: `wrap up: ${timings.wrapUpMs} ms left` },
        });
      });
    }
    if (outbound) {
      this.#transition("awaiting_verdict");
      this.#verdictTimer = this.#after(outbound.verdictTimeoutMs, () =>
        this.verdict("unknown", `no verdict within ${outbound.verdictTimeoutMs} ms`),
      );
    }
    if (outbound?.initialVerdict) {
      this.verdict(outbound.initialVerdict, "verdict arrived before the stream");
      // A machine or a fax: no agent is needed at all.
      if (this.#state !== "live") return;
    }
    this.#deps
      .connectAgent(this.#deps.settings, this.#agentHandlers())
      .then(
        (agent) => {
          if (!["connecting", "awaiting_verdict", "live"].includes(this.#state)) {
            agent.close();
            return;
          }
          this.#agent = agent;
          this.#deps.recorder.event({
            kind: "agent_connected",
            data: { request_id: agent.requestId ?? null },
          });
          if (this.#state === "connecting") this.#transition("live");
          if (this.#state === "live" && !this.#deps.scenario.greeting) this.#playbackIdle();
        },
        (error: unknown) =>
          this.#agentFailed(
            "agent_unavailable",
            `agent connection failed: ${(error as Error).message}`,
          ),
      )
      .catch((error: unknown) => this.#fault(error));
  }

  #agentHandlers(): AgentHandlers {
    return {
      message: this.#contained((message: AgentServerMessage) => this.#onAgentMessage(message)),
      audio: this.#contained((audio: Buffer) => this.#onAgentAudio(audio)),
      closed: this.#contained((reason: string) => this.#agentDropped(reason)),
    };
  }

  /**
   * The agent socket closed without us asking. Mid-conversation, once per call, a new socket takes
   * the conversation so far over (the caller hears a short gap, not the apology); otherwise, or if
   * that fails, the apology and a hang-up.
   */
  #agentDropped(reason: string): void {
    const resume = this.#deps.resumeSettings;
    if (this.#state !== "live" || this.#reconnected || !resume) {
      this.#agentFailed("agent_error", `agent socket closed: ${reason}`);
      return;
    }
    this.#reconnected = true;
    this.#agent = undefined;
    this.#agentSpeaking = false;
    this.#deps.logger.warn("agent socket dropped, resuming the conversation", { reason });
    const history = [...this.#history];
    this.#deps
      .connectAgent(resume(history), this.#agentHandlers())
      .then(
        (agent) => {
          if (this.#state !== "live") {
            agent.close();
            return;
          }
          this.#agent = agent;
          this.#deps.recorder.event({
            kind: "agent_reconnected",
            data: { reason, history_items: history.length },
          });
          this.#deps.recorder.event({
            kind: "agent_connected",
            data: { request_id: agent.requestId ?? null },
          });
          if (this.#playback.idle) this.#playbackIdle();
        },
        (error: unknown) =>
          this.#agentFailed(
            "agent_error",
            `agent socket closed: ${reason}; resuming failed: ${(error as Error).message}`,
          ),
      )
      .catch((error: unknown) => this.#fault(error));
  }

  /**
   * Twilio's answering-machine verdict (`AnsweredBy`). A person (or "unknown") gets the agent, whose
   * held greeting plays at once; a machine gets the voicemail, also when the verdict comes late in a
   * live conversation; a fax gets a hang-up.
   */
  verdict(answeredBy: string, detail = `AnsweredBy=${answeredBy}`): void {
    try {
      this.#verdict(answeredBy, detail);
    } catch (error) {
      this.#fault(error);
    }
  }

  #verdict(answeredBy: string, detail: string): void {
    this.#deps.logger.info("answering-machine verdict", { answeredBy, state: this.#state, detail });
    if (this.#state === "awaiting_verdict") {
      this.#verdictTimer?.cancel();
      if (answeredBy === "fax") {
        this.#deps.recorder.outcome("fax", detail);
        this.#finish("fax_detected", detail);
      } else if (isMachine(answeredBy)) this.#voicemail(detail);
      else this.#goLive();
    } else if (this.#state === "live" && isMachine(answeredBy)) {
      this.#voicemail(`late verdict ${answeredBy}: the agent had already started`);
    }
  }

  /** A decoded message from this call's Twilio stream. */
  handlePhone(message: TwilioInbound): void {
    try {
      this.#handlePhone(message);
    } catch (error) {
      this.#fault(error);
    }
  }

  #handlePhone(message: TwilioInbound): void {
    switch (message.event) {
      case "media":
        if (this.#state === "live") this.#agent?.sendAudio(message.audio);
        return;
      case "mark":
        if (
          this.#playback.echoed(message.name) === "played" &&
          this.#playback.idle &&
          !this.#agentSpeaking
        ) {
          this.#playbackIdle();
        }
        return;
      case "stop":
        this.#finish("caller_hung_up", "Twilio stopped the stream");
        return;
      case "dtmf":
        // A keypad press is the caller speaking: "press 1" menus and typed-in numbers work.
        if (this.#state !== "live" || !this.#agent) return;
        this.#callerActive();
        this.#agent.send(injectUserMessage(`The caller pressed ${message.digit} on the keypad.`));
        this.#deps.recorder.event({ kind: "dtmf", data: { digit: message.digit } });
        return;
      case "ignored":
        this.#noteIgnored("twilio", message.reason);
        return;
      default:
        return;
    }
  }

  /** The Twilio socket closed. */
  phoneClosed(): void {
    this.#finish("caller_hung_up", "media stream closed");
  }

  /** Ends the call politely (used when the service shuts down); resolves when it has ended. */
  hangUp(reason: string): Promise<void> {
    try {
      this.#endWithWords("service_shutdown", reason, PHRASES.shutdown, "interrupt");
    } catch (error) {
      this.#fault(error);
    }
    return this.#ended.promise;
  }

  /** Ends the call now (the shutdown's goodbye time is over). */
  terminate(reason: string): void {
    this.#finish("service_shutdown", `${reason} (ended before the goodbye was heard)`);
  }

  #transition(to: CallState): boolean {
    if (!canTransition(this.#state, to)) return false;
    this.#deps.logger.debug("call state", { from: this.#state, to });
    this.#state = to;
    return true;
  }

  #onAgentMessage(message: AgentServerMessage): void {
    switch (message.type) {
      case "ConversationText": {
        const line: CallEventInput = {
          kind: "transcript",
          data: { role: message.role, text: message.content },
        };
        if (this.#state === "awaiting_verdict") this.#heldEvents.push(line);
        else this.#deps.recorder.event(line);
        this.#history.push({ type: "History", role: message.role, content: message.content });
        if (message.role === "user") this.#callerActive();
        return;
      }
      case "UserStartedSpeaking":
        this.#bargeIn();
        return;
      case "AgentThinking":
      case "AgentStartedSpeaking":
        this.#stopSilenceTimer();
        return;
      case "AgentAudioDone":
        this.#agentSpeaking = false;
        if (this.#state === "awaiting_verdict") {
          this.#heldTurnDone = true;
          return;
        }
        this.#markEnd();
        if (this.#ending) this.#ending.awaitingSpeech = false;
        this.#injection = undefined;
        if (this.#playback.idle) this.#playbackIdle();
        return;
      case "FunctionCallRequest":
        this.#stopSilenceTimer();
        this.#functionCalls.run(message.functions).catch((error: unknown) => this.#fault(error));
        return;
      case "FunctionCallCancelled":
        this.#functionCalls.cancel(message.functions);
        return;
      case "InjectionRefused":
        this.#injectionRefused();
        return;
      case "LatencyReport":
        this.#deps.recorder.event({ kind: "latency", data: latencyMs(message) });
        return;
      case "Error":
        this.#agentFailed(
          "agent_error",
          `agent error ${message.code ?? ""}: ${message.description ?? ""}`.trim(),
        );
        return;
      case "Warning":
        this.#deps.logger.warn("agent warning", {
          code: message.code,
          description: message.description,
        });
        return;
      case "Ignored":
        this.#noteIgnored("agent", message.reason);
        return;
      default:
        return;
    }
  }

  #onAgentAudio(audio: Buffer): void {
    if (this.#state === "awaiting_verdict") {
      this.#held.push(audio);
      return;
    }
    if (this.#state !== "live" && this.#state !== "ending") return;
    this.#agentSpeaking = true;
    this.#stopSilenceTimer();
    this.#stopSettleTimer();
    this.#play(audio);
  }

  #play(audio: Uint8Array): void {
    const mark = this.#playback.sent(audio.byteLength);
    this.#deps.phone.send(
      this.#encoder.media(audio),
      mark === undefined ? undefined : this.#encoder.mark(mark),
    );
  }

  /** Marks the end of what has been sent, so its playback can be confirmed. */
  #markEnd(): void {
    const mark = this.#playback.flush();
    if (mark !== undefined) this.#deps.phone.send(this.#encoder.mark(mark));
  }

  /** Caller speech: stop the agent's queued audio at once and restart the silence count. */
  #bargeIn(): void {
    this.#callerActive();
    this.#agentSpeaking = false;
    if (this.#state !== "live") return;
    this.#deps.phone.send(this.#encoder.clear());
    const queuedMs = this.#playback.queuedMs;
    const unplayed = this.#playback.clear();
    if (queuedMs > 0) {
      this.#deps.recorder.event({
        kind: "barge_in",
        data: { unplayed_marks: unplayed, unplayed_ms: queuedMs },
      });
    }
  }

  #stopSilenceTimer(): void {
    this.#silenceTimer?.cancel();
    this.#silenceTimer = undefined;
  }

  #stopSettleTimer(): void {
    this.#settleTimer?.cancel();
    this.#settleTimer = undefined;
  }

  #callerActive(): void {
    this.#stopSilenceTimer();
    this.#silencePrompted = false;
  }

  /** Everything the agent said has been heard and it is not speaking. */
  #playbackIdle(): void {
    if (this.#state === "live") this.#armSilence();
    else if (this.#state === "ending") this.#armSettle();
  }

  #armSilence(): void {
    const { timings } = this.#deps;
    this.#stopSilenceTimer();
    this.#silenceTimer = this.#after(
      this.#silencePrompted ? timings.silenceHangupMs : timings.silencePromptMs,
      () => {
        if (!this.#silencePrompted) {
          this.#silencePrompted = true;
          // `default`: if either side is mid-turn the agent refuses, and the line is not silent.
          this.#agent?.send(injectAgentMessage(PHRASES.stillThere, "default"));
        } else {
          this.#endWithWords(
            "silence",
            "no response after a silence prompt",
            PHRASES.silenceGoodbye,
          );
        }
      },
    );
  }

  #armSettle(): void {
    const ending = this.#ending;
    if (!ending || ending.awaitingSpeech) return;
    if (!this.#agent) {
      this.#finish(ending.reason, ending.detail);
      return;
    }
    this.#stopSettleTimer();
    this.#settleTimer = this.#after(this.#deps.timings.endSettleMs, () => {
      if (this.#playback.idle && !this.#agentSpeaking) this.#finish(ending.reason, ending.detail);
    });
  }

  /**
   * Has the agent say `words`, then hangs up once they have been heard. `queue` lets what the agent
   * is saying finish first; `interrupt` cuts it off (the shutdown's goodbye, whose wait is capped).
   */
  #endWithWords(
    reason: EndReason,
    detail: string,
    words: string,
    behavior: Exclude<InjectionBehavior, "default"> = "queue",
  ): void {
    if (this.#state !== "live" || !this.#agent) {
      this.#finish(reason, detail);
      return;
    }
    this.#agent.send(injectAgentMessage(words, behavior));
    this.#injection = { words, retried: behavior === "interrupt" };
    this.#beginEnding(reason, detail, true);
  }

  /**
   * The agent would not say what it was asked to. Ending words are sent once more, interrupting;
   * refused again, the call ends without waiting for words that will never come.
   */
  #injectionRefused(): void {
    const injection = this.#injection;
    if (this.#ending?.awaitingSpeech && injection && !injection.retried && this.#agent) {
      injection.retried = true;
      this.#agent.send(injectAgentMessage(injection.words, "interrupt"));
      return;
    }
    this.#injection = undefined;
    if (this.#ending) this.#ending.awaitingSpeech = false;
    if (this.#playback.idle && !this.#agentSpeaking) this.#playbackIdle();
  }

  #beginEnding(reason: EndReason, detail: string, awaitingSpeech: boolean, callId?: string): void {
    if (!this.#transition("ending")) return;
    this.#stopSilenceTimer();
    this.#ending = { reason, detail, awaitingSpeech, ...(callId ? { callId } : {}) };
    this.#safetyTimer = this.#after(this.#deps.timings.hangupSafetyMs, () =>
      this.#finish(reason, `${detail} (hung up by the safety limit while audio was still due)`),
    );
    if (this.#playback.idle && !this.#agentSpeaking) this.#armSettle();
  }

  /** An answered function call, as the agent's history keeps it. */
  #remember(call: { id: string; name: string; arguments: unknown; result: string }): void {
    const args =
      typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments);
    this.#history.push({
      type: "History",
      function_calls: [
        { id: call.id, name: call.name, client_side: true, arguments: args, response: call.result },
      ],
    });
  }

  /** The agent withdrew the `end_call` that began this ending: the conversation goes on. */
  #withdrawEnd(callId: string): void {
    if (this.#state !== "ending" || this.#ending?.callId !== callId) return;
    this.#safetyTimer?.cancel();
    this.#stopSettleTimer();
    this.#ending = undefined;
    this.#transition("live");
    this.#deps.logger.info("end of call withdrawn by the agent", { callId });
    if (this.#playback.idle && !this.#agentSpeaking) this.#playbackIdle();
  }

  /** The agent failed: drop what was queued, play the recorded apology, hang up once it is heard. */
  #agentFailed(reason: "agent_error" | "agent_unavailable", detail: string): void {
    if (this.#state === "ended" || this.#state === "voicemail" || this.#ending?.reason === reason)
      return;
    this.#deps.logger.warn("agent failed", { reason, detail });
    this.#deps.recorder.event({ kind: "error", data: { source: "agent", message: detail } });
    const agent = this.#agent;
    this.#agent = undefined;
    agent?.close();
    this.#agentSpeaking = false;
    this.#deps.phone.send(this.#encoder.clear());
    this.#playback.clear();
    this.#ending = undefined;
    this.#stopSettleTimer();
    this.#safetyTimer?.cancel();
    if (this.#state !== "ending" && !this.#transition("ending")) {
      this.#finish(reason, detail);
      return;
    }
    this.#play(this.#deps.apologyAudio);
    this.#markEnd();
    this.#ending = { reason, detail, awaitingSpeech: false };
    this.#safetyTimer = this.#after(this.#deps.timings.hangupSafetyMs, () =>
      this.#finish(reason, detail),
    );
  }

  /** A person answered: the held greeting plays now, then the conversation is live. */
  #goLive(): void {
    if (!this.#transition("live")) return;
    for (const event of this.#heldEvents) this.#deps.recorder.event(event);
    for (const audio of this.#held) this.#play(audio);
    if (this.#held.length > 0) this.#agentSpeaking = !this.#heldTurnDone;
    if (this.#heldTurnDone) this.#markEnd();
    this.#held = [];
    this.#heldEvents = [];
    if (this.#agent && !this.#deps.scenario.greeting) this.#playbackIdle();
  }

  #voicemail(detail: string): void {
    this.#leaveVoicemail(detail).catch((error: unknown) => this.#fault(error));
  }

  /** A machine answered: drop the agent, speak the voicemail as it is synthesised, hang up once heard. */
  async #leaveVoicemail(detail: string): Promise<void> {
    const outbound = this.#deps.outbound;
    if (!outbound || !this.#transition("voicemail")) return;
    const { recorder, phone, timings } = this.#deps;
    this.#stopSilenceTimer();
    const agent = this.#agent;
    this.#agent = undefined;
    agent?.close();
    this.#agentSpeaking = false;
    this.#held = [];
    this.#heldEvents = [];
    if (!this.#playback.idle) {
      phone.send(this.#encoder.clear());
      this.#playback.clear();
    }
    try {
      for await (const chunk of outbound.tts.stream(outbound.voicemail)) {
        if (this.#state !== "voicemail") return;
        this.#play(chunk);
      }
    } catch (error) {
      const reason = `voicemail could not be synthesised: ${(error as Error).message}`;
      recorder.event({ kind: "error", data: { source: "tts", message: reason } });
      recorder.outcome("voicemail_failed", reason);
      this.#finish("voicemail_failed", reason);
      return;
    }
    if (this.#state !== "voicemail") return;
    this.#markEnd();
    recorder.outcome("no_answer_voicemail_left", detail);
    this.#transition("ending");
    this.#ending = { reason: "voicemail_left", detail, awaitingSpeech: false };
    this.#safetyTimer?.cancel();
    this.#safetyTimer = this.#after(timings.hangupSafetyMs, () =>
      this.#finish("voicemail_left", `${detail} (hung up by the safety limit)`),
    );
    if (this.#playback.idle) this.#finish("voicemail_left", detail);
  }

  #noteIgnored(source: "twilio" | "agent", reason: string): void {
    this.#ignored += 1;
    if (this.#ignored === 1)
      this.#deps.logger.warn("ignored malformed or unknown message", { source, reason });
  }

  /**
   * Ends the call now; every path out of a call comes here, once. Synchronous by design, and it
   * never throws: each step is attempted on its own, so the call always leaves the registry.
   */
  #finish(reason: EndReason, detail: string): void {
    if (!this.#transition("ended")) return;
    for (const timer of [
      this.#silenceTimer,
      this.#settleTimer,
      this.#safetyTimer,
      this.#maxDurationTimer,
      this.#wrapUpTimer,
      this.#verdictTimer,
    ]) {
      timer?.cancel();
    }
    const { phone, telephony, recorder, logger, onEnded } = this.#deps;
    const attempt = (step: string, work: () => void) =>
      tryLogged(logger, "call end step failed", { step }, work);
    const agent = this.#agent;
    this.#agent = undefined;
    attempt("close the agent socket", () => agent?.close());
    attempt("close the media stream", () => phone.close());
    if (reason !== "caller_hung_up" && telephony) {
      attempt("hang up", () =>
        telephony.hangUp(this.callSid).catch((error: unknown) => {
          logger.warn("telephony hang-up failed", { error });
        }),
      );
    }
    if (this.#ignored > 0) logger.info("ignored messages during call", { count: this.#ignored });
    attempt("record the end", () => recorder.ended(reason, detail));
    logger.info("call ended", { reason, detail });
    attempt("leave the registry", () => onEnded(this));
    this.#ended.resolve();
  }

  /**
   * A bug while handling this call (an exception out of any of its entry points): log it, record
   * it and end this call at once, so that one call's fault never reaches the process or other calls.
   */
  #fault(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.#deps.logger.error("internal error in a call", { error, state: this.#state });
    if (this.#state === "ended") return;
    try {
      this.#deps.recorder.event({ kind: "error", data: { source: "internal", message } });
    } catch {
      // The recorder's own failure is already logged by it; ending the call matters more.
    }
    this.#finish("internal_error", message);
  }

  /**
   * `work` as a callback whose exceptions end this call instead of escaping (timers, socket events).
   * One argument, not a rest parameter: agent audio comes through here 50 times a second.
   */
  #contained<T = void>(work: (value: T) => void): (value: T) => void {
    return (value) => {
      try {
        work(value);
      } catch (error) {
        this.#fault(error);
      }
    };
  }

  /** A timer of this call whose callback is contained. */
  #after(ms: number, work: () => void): Timer {
    return this.#deps.clock.setTimeout(this.#contained(work), ms);
  }
}

/** A LatencyReport's figures in milliseconds, as the timeline keeps every duration. */
function latencyMs(report: AgentMessage<"LatencyReport">): LatencyFigures {
  const ms = (seconds: number | undefined) =>
    seconds === undefined ? undefined : Math.round(seconds * 1000);
  const figures: LatencyFigures = {};
  for (const [key, field] of LATENCY_FIELDS) {
    const value = ms(report[field]);
    if (value !== undefined) figures[key] = value;
  }
  return figures;
}

const LATENCY_FIELDS = [
  ["total_ms", "total_latency"],
  ["tts_ms", "tts_latency"],
  ["ttt_token_ms", "ttt_token_latency"],
  ["ttt_text_ms", "ttt_text_latency"],
  ["ttt_tool_ms", "ttt_tool_latency"],
  ["ttt_thinking_ms", "ttt_thinking_latency"],
] as const satisfies readonly (readonly [
  keyof LatencyFigures,
  keyof AgentMessage<"LatencyReport">,
])[];
