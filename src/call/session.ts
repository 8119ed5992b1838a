/**
 * One phone call: bridges the Twilio media stream and the Deepgram agent through small ports, owns
 * the call's state machine, plays agent audio with mark tracking, handles barge-in, function calls,
 * silence prompts, the time limit, agent faults and hang-up after the last words have been heard.
 * It coordinates; each capability with state of its own lives beside it (agent-link, pacing,
 * answering-machine, phone-playback, function-calls). No sockets or timers of its own: everything
 * arrives through `SessionDeps`, so tests drive it directly. Every way in is contained: an
 * exception ends this call as `internal_error`, never the process.
 */
import type { Clock, Timer } from "../clock.ts";
import { type Logger, tryLogged } from "../log.ts";
import type { CallLabels } from "../ops/metrics.ts";
import {
  type AgentServerMessage,
  type HistoryItem,
  type InjectionBehavior,
  injectUserMessage,
} from "../protocol/deepgram-agent.ts";
import type { TwilioInbound } from "../protocol/twilio-media.ts";
import type { PreparedScenario } from "../scenarios/types.ts";
import type { CallEventInput, CallerAudioCounts } from "../store/calls.ts";
import { type AgentConnector, AgentLink } from "./agent-link.ts";
import { AnsweringMachine, type HeldGreeting, type OutboundOptions } from "./answering-machine.ts";
import { CallerAudio } from "./caller-audio.ts";
import { FunctionCalls } from "./function-calls.ts";
import { latencyMs } from "./latency.ts";
import { Pacing, PHRASES } from "./pacing.ts";
import { PhonePlayback } from "./phone-playback.ts";
import type { CallRecording } from "./recording.ts";
import type { LiveCall } from "./registry.ts";
import { type CallState, canTransition, type EndReason } from "./state.ts";
import type { CallTransfer, TransferRequest } from "./transfer.ts";

/** The Twilio media-stream socket as the session sees it: already-encoded text frames out. */
export interface PhoneChannel {
  /** Sends one frame, or two written together (audio and its mark). */
  send(text: string, then?: string): void;
  /** Closing a `<Connect><Stream>` socket ends the phone call. */
  close(): void;
}

export type { AgentChannel, AgentConnector, AgentHandlers } from "./agent-link.ts";
export { isMachine, type OutboundOptions, type TextToSpeech } from "./answering-machine.ts";
export { PHRASES } from "./pacing.ts";

/** Hangs up a call through the telephony provider's API (Twilio REST). */
export interface Telephony {
  hangUp(callSid: string): Promise<void>;
}

/** Where the session writes what happened; implementations must not throw. */
export interface CallRecorder {
  event(event: CallEventInput): void;
  /** The call's business result, e.g. no_answer_voicemail_left. */
  outcome(outcome: string, detail: string): void;
  /** `callerAudio`: what became of the caller's frames (absent when no stream was bridged). */
  ended(reason: EndReason, detail: string, callerAudio?: CallerAudioCounts): void;
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
  /**
   * While ending: how long to wait for the agent's goodbye to start when it asked to end the call
   * before saying one.
   */
  endSettleMs: number;
  /** While ending: hang up after this long whatever is still playing. */
  hangupSafetyMs: number;
  /** This long before `maxCallMs` the agent is told to wrap up by itself. */
  wrapUpMs: number;
}

export interface SessionDeps {
  callSid: string;
  streamSid: string;
  /** What the call is, for the metrics of live calls. */
  labels: CallLabels;
  /** Who the agent is talking to: caller for inbound, called party for outbound. */
  customerNumber: string;
  scenario: PreparedScenario;
  /**
   * Encodes the Settings message for this call, when the agent socket asks for it (not kept for
   * the call's life: with the prompt and the functions it is the largest thing a call would hold).
   */
  settings: () => string;
  /**
   * Settings that resume the conversation so far on a new agent socket (no greeting). Without it
   * an agent socket that drops mid-call ends the call with the apology.
   */
  resumeSettings?: (history: readonly HistoryItem[]) => string;
  /** Encodes what is sent `wrapUpMs` before the time limit: the agent's instructions plus `PHRASES.wrapUp`. */
  wrapUpMessage: () => string;
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
  /** Present when the scenario may hand the caller to a person (`transfer_call`). */
  transfer?: CallTransfer;
  /** Present when calls are recorded: what the caller said and heard goes to it. */
  recording?: CallRecording;
  /** What became of the caller's frames on this call's earlier streams (before a transfer). */
  callerAudioSoFar?: CallerAudioCounts;
  /** Called once, when the call has ended. */
  onEnded(session: CallSession): void;
}

/**
 * What the hang-up of an ending call still waits for, besides every sent word being heard:
 * - `due`: words are coming: the AgentAudioDone of their turn (with `words`, of the turn that said
 *   them, not of a reply the agent was already giving);
 * - `maybe`: words may come (the agent asked to end before saying goodbye): up to `endSettleMs`
 *   for them to start, then their AgentAudioDone;
 * - `heard`: nothing; hang up as soon as the phone has played everything.
 */
type EndingSpeech = "due" | "maybe" | "heard";

interface Ending {
  reason: EndReason;
  detail: string;
  speech: EndingSpeech;
  /** The function call (`end_call`) that asked for this end, which the agent may still withdraw. */
  callId?: string;
  /** The words we asked the agent to say (a goodbye of ours), normalised; undefined once said. */
  words?: string;
  /** Instead of hanging up once the words are heard, hand the caller to a person. */
  transfer?: TransferRequest;
  /** Twilio has been asked to redirect the call: its stream's end is the handoff. */
  handingOff?: boolean;
}

/**
 * After answering `end_call`, how long a FunctionCallCancelled sent before our answer arrived may
 * still take the end back: the hang-up waits at least this long after the request.
 */
export const END_WITHDRAW_GRACE_MS = 150;

/**
 * Once Twilio took a transfer's redirect, how long its `stop` of this stream may take before the
 * leg ends anyway (it comes within milliseconds; a stream that came back must not find it held).
 */
export const HANDOFF_STOP_WAIT_MS = 3_000;

/** Words compared as the agent reports them: case and spacing aside. */
const normalised = (text: string) => text.toLowerCase().replace(/\s+/g, " ").trim();

/** The keys of a phone keypad, as Twilio reports a `dtmf` digit. */
const KEYPAD = /^[0-9*#]$/;

export class CallSession implements LiveCall {
  readonly callSid: string;
  readonly #deps: SessionDeps;
  readonly #playback: PhonePlayback;
  readonly #functionCalls: FunctionCalls;
  readonly #ended = Promise.withResolvers<void>();
  readonly #agent: AgentLink;
  readonly #pacing: Pacing;
  /** Present for outbound calls. */
  readonly #machine: AnsweringMachine | undefined;
  #state: CallState = "connecting";
  /** Between the agent's first audio of a turn and its AgentAudioDone. */
  #agentSpeaking = false;
  /** The agent has spoken since the caller last did, or since it last asked for a function. */
  #spokeThisTurn = false;
  /** Function calls the agent made after speaking in the same turn (a goodbye, then `end_call`). */
  readonly #requestedAfterWords = new Set<string>();
  /** `end_call` requests answered and not withdrawn, by function call id (their reason). */
  readonly #endRequests = new Map<string, string>();
  readonly #callerAudio: CallerAudio;
  /** When the caller's last turn ended (their transcript line), until the agent's first audio. */
  #turnEndedAt: number | undefined;
  #ending: Ending | undefined;
  #ignored = 0;
  /** While ending with speech `maybe`: the wait for the agent's words to start. */
  #settleTimer: Timer | undefined;
  /**
   * Pending while an `end_call` just answered may still be withdrawn (a FunctionCallCancelled that
   * crossed our answer on the wire); no hang-up until it has run.
   */
  #withdrawTimer: Timer | undefined;
  #safetyTimer: Timer | undefined;

  constructor(deps: SessionDeps) {
    this.#deps = deps;
    this.callSid = deps.callSid;
    this.#callerAudio = new CallerAudio(deps.callerAudioSoFar);
    this.#playback = new PhonePlayback(deps.phone, deps.streamSid, deps.recording);
    this.#agent = new AgentLink({
      connect: (settings, handlers) => deps.connectAgent(settings, handlers),
      settings: deps.settings,
      resumeSettings: deps.resumeSettings,
      handlers: {
        message: this.#contained((message: AgentServerMessage) => this.#onAgentMessage(message)),
        audio: this.#contained((audio: Buffer) => this.#onAgentAudio(audio)),
        closed: this.#contained((reason: string) => this.#agentDropped(reason)),
      },
      record: (event) => deps.recorder.event(event),
      now: () => deps.clock.now().getTime(),
      logger: deps.logger,
      state: () => this.#state,
      opened: () => {
        if (this.#state === "connecting") this.#transition("live");
        if (this.#state === "live" && !deps.scenario.greeting) this.#playbackIdle();
      },
      resumed: () => {
        if (this.#playback.idle) this.#playbackIdle();
      },
      failed: (reason, detail) => this.#agentFailed(reason, detail),
    });
    this.#pacing = new Pacing({
      timings: deps.timings,
      after: (ms, work) => this.#after(ms, work),
      send: (text) => this.#agent.send(text),
      record: (event) => deps.recorder.event(event),
      live: () => this.#state === "live" && this.#agent.connected,
      wrapUpMessage: deps.wrapUpMessage,
      endWithWords: (reason, detail, words) => this.#endWithWords(reason, detail, words),
    });
    this.#machine = deps.outbound
      ? new AnsweringMachine({
          options: deps.outbound,
          after: (ms, work) => this.#after(ms, work),
          verdict: (answeredBy, detail) => this.verdict(answeredBy, detail),
          person: (held) => this.#goLive(held),
          machine: (detail) => this.#voicemail(detail),
          fax: (detail) => {
            deps.recorder.outcome("fax", detail);
            this.#finish("fax_detected", detail);
          },
        })
      : undefined;
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
      send: (text) => this.#agent.send(text),
      record: (event) => {
        deps.recorder.event(event);
        if (event.kind === "function_call" && !event.data.cancelled)
          this.#agent.answered(event.data);
      },
      endCall: (reason, callId) =>
        this.#contained(() => {
          this.#endRequests.set(callId, reason);
          this.#beginEnding(
            "agent_ended_call",
            reason,
            this.#requestedAfterWords.has(callId) ? "heard" : "maybe",
            callId,
          );
        })(),
      withdrawEnd: (callId) => this.#contained(() => this.#withdrawEnd(callId))(),
      transfer: (request, callId) => this.#contained(() => this.#beginTransfer(request, callId))(),
      ended: () => this.#state === "ended",
    });
  }

  get state(): CallState {
    return this.#state;
  }

  get labels(): CallLabels {
    return this.#deps.labels;
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
    const { outbound } = this.#deps;
    this.#pacing.start();
    if (this.#machine) {
      this.#transition("awaiting_verdict");
      this.#machine.awaitVerdict();
    }
    if (outbound?.initialVerdict) {
      this.verdict(outbound.initialVerdict, "verdict arrived before the stream");
      // A machine or a fax: no agent is needed at all.
      if (this.#state !== "live") return;
    }
    this.#agent.open().catch((error: unknown) => this.#fault(error));
  }

  /**
   * The agent socket closed without us asking. Mid-conversation, once per call, a new socket takes
   * the conversation so far over (the caller hears a short gap, not the apology); otherwise, or if
   * that fails, the apology and a hang-up.
   */
  #agentDropped(reason: string): void {
    if (this.#state === "ending" && !this.#agentSpeaking && this.#ending?.words === undefined) {
      // Everything it had to say has arrived: that plays out, then the hang-up; no apology.
      this.#deps.logger.info("agent socket closed while ending", { reason });
      this.#hangUpIfHeard();
      return;
    }
    const resuming = this.#state === "live" ? this.#agent.resume(reason) : undefined;
    if (!resuming) {
      this.#agentFailed("agent_error", `agent socket closed: ${reason}`);
      return;
    }
    this.#agentSpeaking = false;
    resuming.catch((error: unknown) => this.#fault(error));
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
    this.#machine?.verdict(answeredBy, detail, this.#state);
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
        // Outbound, before the verdict, the callee has not heard the recording disclosure (in
        // the greeting): their time is kept, their words are not.
        if (this.#state === "awaiting_verdict") this.#deps.recording?.silence(message.audio.length);
        else this.#deps.recording?.caller(message.audio);
        if (this.#state === "live" && this.#agent.sendAudio(message.audio))
          this.#callerAudio.forwarded();
        else this.#callerAudio.heldBack(this.#state, this.#agent.wasUp);
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
        if (this.#ending?.handingOff)
          this.#finish("transferred", "Twilio took the call to the person");
        else this.#finish("caller_hung_up", "Twilio stopped the stream");
        return;
      case "dtmf":
        // A keypad press is the caller speaking: "press 1" menus and typed-in numbers work. Only a
        // key goes into the agent's words, never whatever text a stream put in the field.
        if (!KEYPAD.test(message.digit)) {
          this.#noteIgnored("twilio", "dtmf digit is not a keypad key");
          return;
        }
        if (this.#state !== "live" || !this.#agent.connected) return;
        this.#spokeThisTurn = false;
        this.#pacing.callerActive();
        this.#agent.send(
          injectUserMessage(
            message.digit === this.#deps.scenario.transferKey
              ? `The caller pressed ${message.digit} on the keypad to speak with a person: transfer the call.`
              : `The caller pressed ${message.digit} on the keypad.`,
          ),
        );
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
    if (this.#ending?.handingOff) this.#finish("transferred", "Twilio took the call to the person");
    else this.#finish("caller_hung_up", "media stream closed");
  }

  /**
   * Twilio reported the call over (a terminal status callback) while its stream is still open here,
   * e.g. the stream's close was lost: the call ends now instead of waiting for silence.
   */
  telephonyEnded(status: string): void {
    this.#finish("caller_hung_up", `Twilio reported the call ${status}`);
  }

  /**
   * Ends the call politely (used when the service shuts down); resolves when it has ended. A call
   * being handed to a person is not hung up: the handoff goes ahead now, and its stream's end ends it.
   */
  hangUp(reason: string): Promise<void> {
    try {
      const ending = this.#ending;
      if (ending?.transfer) this.#handOff(ending, ending.transfer);
      else this.#endWithWords("service_shutdown", reason, PHRASES.shutdown, "interrupt");
    } catch (error) {
      this.#fault(error);
    }
    return this.#ended.promise;
  }

  /** Ends the call now (the shutdown's goodbye time is over). */
  terminate(reason: string): void {
    if (this.#ending?.handingOff) this.#finish("transferred", `${reason} (during the handoff)`);
    else this.#finish("service_shutdown", `${reason} (ended before the goodbye was heard)`);
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
        if (this.#state === "awaiting_verdict") this.#machine?.holdEvent(line);
        else this.#deps.recorder.event(line);
        this.#agent.heard(message.role, message.content);
        if (message.role === "user") {
          this.#spokeThisTurn = false;
          this.#pacing.callerActive();
          if (this.#state === "live") this.#turnEndedAt = this.#deps.clock.now().getTime();
        } else if (this.#ending?.words === undefined) {
          this.#wordsComing();
        } else {
          if (normalised(message.content).includes(this.#ending.words))
            this.#ending.words = undefined;
        }
        return;
      }
      case "UserStartedSpeaking":
        this.#spokeThisTurn = false;
        this.#bargeIn();
        if (this.#ending?.speech === "due" && this.#ending.words === undefined) {
          // The agent stops for the caller and sends no AgentAudioDone: what it sent is all there
          // is (the phone keeps playing it while ending).
          this.#ending.speech = "heard";
          this.#playback.markEnd();
          this.#hangUpIfHeard();
        }
        return;
      case "AgentThinking":
        this.#pacing.stopSilence();
        return;
      case "AgentStartedSpeaking":
        this.#pacing.stopSilence();
        this.#wordsComing();
        return;
      case "AgentAudioDone":
        this.#agentSpeaking = false;
        if (this.#state === "awaiting_verdict") {
          this.#machine?.holdTurnDone();
          return;
        }
        this.#playback.markEnd();
        this.#pacing.said();
        if (this.#ending) this.#turnSpoken(this.#ending);
        if (this.#playback.idle) this.#playbackIdle();
        return;
      case "FunctionCallRequest":
        if (this.#spokeThisTurn)
          for (const { id } of message.functions) this.#requestedAfterWords.add(id);
        // Words before an earlier request ("one moment…") are not a goodbye for a later one.
        this.#spokeThisTurn = false;
        this.#pacing.stopSilence();
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

  /** While waiting to see whether the agent says goodbye (`maybe`): it is about to, so wait for it. */
  #wordsComing(): void {
    if (this.#ending?.speech !== "maybe") return;
    this.#stopSettleTimer();
    this.#ending.speech = "due";
  }

  #onAgentAudio(audio: Buffer): void {
    if (this.#state === "awaiting_verdict") {
      this.#machine?.hold(audio);
      return;
    }
    if (this.#state !== "live" && this.#state !== "ending") return;
    // The silence count is only ever armed while the agent is not speaking: stopped at its first chunk.
    if (!this.#agentSpeaking) {
      this.#pacing.stopSilence();
      if (this.#turnEndedAt !== undefined) {
        const latencyMs = this.#deps.clock.now().getTime() - this.#turnEndedAt;
        this.#turnEndedAt = undefined;
        this.#deps.recorder.event({ kind: "turn", data: { latency_ms: latencyMs } });
      }
    }
    this.#agentSpeaking = true;
    this.#spokeThisTurn = true;
    this.#wordsComing();
    this.#playback.play(audio);
  }

  /** Caller speech: stop the agent's queued audio at once and restart the silence count. */
  #bargeIn(): void {
    this.#pacing.callerActive();
    this.#agentSpeaking = false;
    if (this.#state !== "live") return;
    const queuedMs = this.#playback.queuedMs;
    const unplayed = this.#playback.clear();
    if (queuedMs > 0) {
      this.#deps.recorder.event({
        kind: "barge_in",
        data: { unplayed_marks: unplayed, unplayed_ms: queuedMs },
      });
    }
  }

  #stopSettleTimer(): void {
    this.#settleTimer?.cancel();
    this.#settleTimer = undefined;
  }

  /** Everything the agent said has been heard and it is not speaking. */
  #playbackIdle(): void {
    if (this.#state === "live") this.#pacing.armSilence();
    else if (this.#state === "ending") this.#hangUpIfHeard();
  }

  /** Ending: hangs up now if no more words are awaited and the phone has played all it was sent. */
  #hangUpIfHeard(): void {
    const ending = this.#ending;
    if (!ending) return;
    // Without an agent no more words can come.
    if (!this.#agent.connected) ending.speech = "heard";
    if (ending.speech !== "heard" || !this.#playback.idle || this.#agentSpeaking) return;
    if (this.#withdrawTimer) return;
    if (ending.transfer) this.#handOff(ending, ending.transfer);
    else this.#finish(ending.reason, ending.detail);
  }

  /**
   * The agent asked to hand the caller to a person (`transfer_call`, answered): the handoff line
   * unless the agent said words of its own before asking, then the redirect once they are heard.
   */
  #beginTransfer(request: TransferRequest, callId: string): void {
    if (this.#state !== "live" || !this.#deps.transfer) return;
    const spoken = this.#requestedAfterWords.has(callId);
    if (!spoken) this.#pacing.say(PHRASES.handoff, "queue");
    this.#beginEnding("transferred", request.reason, spoken ? "heard" : "due", callId, request);
    if (this.#ending && !spoken) this.#ending.words = normalised(PHRASES.handoff);
  }

  /** The handoff line has been heard: Twilio is asked to dial the person. */
  #handOff(ending: Ending, request: TransferRequest): void {
    const transfer = this.#deps.transfer;
    if (ending.handingOff || !transfer) return;
    ending.handingOff = true;
    this.#safetyTimer?.cancel();
    this.#deps.logger.info("transferring the call");
    transfer
      .start(request, () => this.#state !== "ended")
      .then(
        this.#contained(() => {
          // Twilio took the redirect, which stops this stream; should that stop never come, the
          // leg ends anyway (closing its socket now cannot end a call that Twilio has moved on).
          if (this.#state === "ended") return;
          this.#safetyTimer = this.#after(HANDOFF_STOP_WAIT_MS, () =>
            this.#finish("transferred", "Twilio took the transfer; its stream did not stop"),
          );
        }),
        this.#contained((error: unknown) => this.#transferNotStarted(error)),
      );
  }

  /** Twilio refused the redirect: the conversation goes on, and the agent offers a message. */
  #transferNotStarted(error: unknown): void {
    if (this.#state !== "ending") return;
    const message = error instanceof Error ? error.message : String(error);
    this.#deps.logger.warn("transfer could not be started", { error: message });
    this.#safetyTimer?.cancel();
    this.#stopSettleTimer();
    this.#ending = undefined;
    this.#transition("live");
    if (this.#agent.connected) this.#pacing.say(PHRASES.transferNotStarted, "queue");
    else this.#agentFailed("agent_error", "transfer failed with no agent to go on");
  }

  /** An agent turn ended (AgentAudioDone) while the call is ending. */
  #turnSpoken(ending: Ending): void {
    // A reply the agent was giving when we asked for our words is not them.
    if (ending.speech === "due" && ending.words === undefined) ending.speech = "heard";
  }

  /** Waits up to `endSettleMs` for the agent's words to start; none by then, none at all. */
  #awaitWords(ending: Ending): void {
    ending.speech = "maybe";
    this.#stopSettleTimer();
    this.#settleTimer = this.#after(this.#deps.timings.endSettleMs, () => {
      this.#settleTimer = undefined;
      if (ending.speech !== "maybe") return;
      ending.speech = "heard";
      this.#hangUpIfHeard();
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
    if (this.#state !== "live" || !this.#agent.connected) {
      this.#finish(reason, detail);
      return;
    }
    this.#pacing.say(words, behavior);
    this.#beginEnding(reason, detail, "due");
    if (this.#ending) this.#ending.words = normalised(words);
  }

  /**
   * The agent would not say what it was asked to. Ending words are sent once more, interrupting;
   * refused again, the call ends without waiting for words that will never come.
   */
  #injectionRefused(): void {
    const ending = this.#ending;
    const awaited = ending !== undefined && ending.speech !== "heard";
    if (awaited && this.#agent.connected && this.#pacing.sayAgain()) {
      // Sent again, interrupting: they come next.
      ending.speech = "due";
      this.#stopSettleTimer();
      return;
    }
    this.#pacing.said();
    if (ending) ending.speech = "heard";
    if (this.#playback.idle && !this.#agentSpeaking) this.#playbackIdle();
  }

  #beginEnding(
    reason: EndReason,
    detail: string,
    speech: EndingSpeech,
    callId?: string,
    transfer?: TransferRequest,
  ): void {
    if (!this.#transition("ending")) return;
    this.#pacing.stopSilence();
    const ending: Ending = { reason, detail, speech, ...(transfer ? { transfer } : {}) };
    if (callId) {
      ending.callId = callId;
      this.#withdrawTimer = this.#after(END_WITHDRAW_GRACE_MS, () => {
        this.#withdrawTimer = undefined;
        this.#hangUpIfHeard();
      });
    }
    this.#ending = ending;
    this.#safetyTimer = this.#after(this.#deps.timings.hangupSafetyMs, () => {
      // Words still due by the safety limit: a transfer goes ahead without them.
      if (transfer) this.#handOff(ending, transfer);
      else
        this.#finish(reason, `${detail} (hung up by the safety limit while audio was still due)`);
    });
    if (speech === "maybe") this.#awaitWords(ending);
    this.#hangUpIfHeard();
  }

  /** The agent withdrew the `end_call` that began this ending: the conversation goes on. */
  #withdrawEnd(callId: string): void {
    this.#endRequests.delete(callId);
    const ending = this.#ending;
    // A handoff Twilio has been asked for cannot be taken back.
    if (this.#state !== "ending" || ending?.callId !== callId || ending.handingOff) return;
    const [standing] = this.#endRequests;
    if (standing) {
      // Another end_call was asked for and stands: the call still ends, for that one.
      const [otherId, reason] = standing;
      ending.callId = otherId;
      ending.detail = reason;
      return;
    }
    this.#safetyTimer?.cancel();
    this.#withdrawTimer?.cancel();
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
    const ending = this.#ending;
    if (ending?.transfer) {
      // The caller is on the way to a person, who needs no agent: no apology, the handoff now.
      this.#deps.logger.warn("agent failed during a transfer", { reason, detail });
      this.#agent.close();
      this.#agentSpeaking = false;
      this.#handOff(ending, ending.transfer);
      return;
    }
    this.#deps.logger.warn("agent failed", { reason, detail });
    this.#deps.recorder.event({ kind: "error", data: { source: "agent", message: detail } });
    this.#agent.close();
    this.#agentSpeaking = false;
    this.#playback.clear();
    this.#ending = undefined;
    this.#stopSettleTimer();
    this.#safetyTimer?.cancel();
    if (this.#state !== "ending" && !this.#transition("ending")) {
      this.#finish(reason, detail);
      return;
    }
    this.#playback.play(this.#deps.apologyAudio);
    this.#playback.markEnd();
    this.#ending = { reason, detail, speech: "heard" };
    this.#safetyTimer = this.#after(this.#deps.timings.hangupSafetyMs, () =>
      this.#finish(reason, detail),
    );
  }

  /** A person answered: the held greeting plays now, then the conversation is live. */
  #goLive(held: HeldGreeting): void {
    if (!this.#transition("live")) return;
    for (const event of held.events) this.#deps.recorder.event(event);
    for (const audio of held.audio) this.#playback.play(audio);
    if (held.audio.length > 0) this.#agentSpeaking = !held.turnDone;
    if (held.turnDone) this.#playback.markEnd();
    if (this.#agent.connected && !this.#deps.scenario.greeting) this.#playbackIdle();
  }

  #voicemail(detail: string): void {
    this.#leaveVoicemail(detail).catch((error: unknown) => this.#fault(error));
  }

  /** A machine answered: drop the agent, speak the voicemail as it is synthesised, hang up once heard. */
  async #leaveVoicemail(detail: string): Promise<void> {
    const machine = this.#machine;
    if (!machine || !this.#transition("voicemail")) return;
    const { recorder, timings } = this.#deps;
    this.#pacing.stopSilence();
    this.#agent.close();
    this.#agentSpeaking = false;
    machine.dropHeld();
    if (!this.#playback.idle) this.#playback.clear();
    try {
      for await (const chunk of machine.voicemail()) {
        if (this.#state !== "voicemail") return;
        this.#playback.play(chunk);
      }
    } catch (error) {
      const reason = `voicemail could not be synthesised: ${(error as Error).message}`;
      recorder.event({ kind: "error", data: { source: "tts", message: reason } });
      recorder.outcome("voicemail_failed", reason);
      this.#finish("voicemail_failed", reason);
      return;
    }
    if (this.#state !== "voicemail") return;
    this.#playback.markEnd();
    recorder.outcome("no_answer_voicemail_left", detail);
    this.#transition("ending");
    this.#ending = { reason: "voicemail_left", detail, speech: "heard" };
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
    this.#settleTimer?.cancel();
    this.#withdrawTimer?.cancel();
    this.#safetyTimer?.cancel();
    this.#pacing.stop();
    this.#machine?.stop();
    const { phone, telephony, recorder, logger, onEnded } = this.#deps;
    const attempt = (step: string, work: () => void) =>
      tryLogged(logger, "call end step failed", { step }, work);
    attempt("close the agent socket", () => this.#agent.close());
    attempt("close the media stream", () => phone.close());
    // Hung up by the caller, or handed to a person: the call is not ours to end.
    if (reason !== "caller_hung_up" && reason !== "transferred" && telephony) {
      attempt("hang up", () =>
        telephony.hangUp(this.callSid).catch((error: unknown) => {
          logger.warn("telephony hang-up failed", { error });
        }),
      );
    }
    if (this.#ignored > 0) logger.info("ignored messages during call", { count: this.#ignored });
    attempt("record the end", () => recorder.ended(reason, detail, this.#callerAudio.counts));
    const { recording } = this.#deps;
    if (recording) attempt("close the recording", () => void recording.close());
    // The call's own line ("call ended", with its outcome) is written once its record is final.
    logger.info("stream ended", { reason, detail });
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
