/**
 * A fake Deepgram Voice Agent server on loopback, faithful to the v1 `/v1/agent/converse` protocol:
 * token auth on the upgrade, Welcome → exactly one Settings (shape checked) → SettingsApplied, binary
 * mu-law audio both ways, Error for messages out of order. Scriptable per connection (speak, barge in,
 * call functions, fail, drop) and recording everything it receives. Used by tests, the demo and benchmarks.
 * It shows the live service's turn behaviours (protocols.md section F): a function called while the
 * caller is mid-turn is sent speculatively and cancelled (`FunctionCallCancelled`) if the turn goes
 * on, unless it is declared `defer_until_eot`, which is held until the turn ends and dropped if it
 * resumes; a `default` injection is refused while the caller is mid-turn, `queue` waits for the
 * turn, `interrupt` speaks at once; every reply to a caller's turn is followed by a `LatencyReport`.
 */
import type { Server, ServerWebSocket } from "bun";
import { Conditions } from "./conditions.ts";
import { mulawTone } from "./mulaw.ts";
import { SDK_THINK_MODELS } from "./think-models.ts";

export interface FakeAgentOptions {
  /** When set, the upgrade must carry `Authorization: Token <apiKey>` (or the `token` subprotocol). */
  apiKey?: string;
  /** Length of the spoken greeting's audio (when Settings has a greeting). */
  greetingMs?: number;
  /** Speak injected messages (default true); false answers InjectionRefused. */
  speakInjections?: boolean;
  /** Send received caller audio straight back as agent audio (benchmarks). */
  echo?: boolean;
  /** Size of agent audio frames in ms (default 80). */
  chunkMs?: number;
  /** What `GET /v1/agent/settings/think/models` offers (default: the SDK's known models). */
  thinkModels?: { id: string; provider: string }[];
}

/** What the live agent host lists by default: the SDK's think models per provider. */
const DEFAULT_THINK_MODELS = Object.entries(SDK_THINK_MODELS).flatMap(([provider, ids]) =>
  ids.map((id) => ({ id, provider })),
);

interface ClientMessage {
  type: string;
  [key: string]: unknown;
}

interface SocketData {
  session: FakeAgentSession;
}

const BYTES_PER_MS = 8;

/** Problems with a Settings message, judged by the protocol reference. */
export function settingsProblems(settings: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const at = (path: string) =>
    path
      .split(".")
      .reduce<unknown>((value, key) => (value as Record<string, unknown>)?.[key], settings);
  const expectValue = (path: string, expected: unknown) => {
    if (at(path) !== expected) problems.push(`${path} must be ${JSON.stringify(expected)}`);
  };
  expectValue("audio.input.encoding", "mulaw");
  expectValue("audio.input.sample_rate", 8000);
  expectValue("audio.output.encoding", "mulaw");
  expectValue("audio.output.sample_rate", 8000);
  expectValue("audio.output.container", "none");
  expectValue("agent.listen.provider.type", "deepgram");
  if (typeof at("agent.listen.provider.model") !== "string")
    problems.push("agent.listen.provider.model missing");
  if (typeof at("agent.think.provider.type") !== "string")
    problems.push("agent.think.provider.type missing");
  if (typeof at("agent.think.provider.model") !== "string")
    problems.push("agent.think.provider.model missing");
  if (typeof at("agent.think.prompt") !== "string") problems.push("agent.think.prompt missing");
  if (at("agent.think.instructions") !== undefined)
    problems.push("agent.think.instructions is the old name of prompt");
  const functions = at("agent.think.functions");
  if (functions !== undefined) {
    if (!Array.isArray(functions)) problems.push("agent.think.functions must be an array");
    else {
      for (const fn of functions as Record<string, unknown>[]) {
        if (
          typeof fn.name !== "string" ||
          typeof fn.description !== "string" ||
          typeof fn.parameters !== "object"
        ) {
          problems.push(`function ${String(fn.name)} needs name, description and parameters`);
        }
      }
    }
  }
  if (typeof at("agent.speak.provider.type") !== "string")
    problems.push("agent.speak.provider.type missing");
  const mipOptOut = at("mip_opt_out");
  if (mipOptOut !== undefined && typeof mipOptOut !== "boolean")
    problems.push("mip_opt_out must be a boolean");
  if (at("agent.mip_opt_out") !== undefined)
    problems.push("mip_opt_out belongs at the top level, not under agent");
  if (at("agent.listen.provider.keyterm") !== undefined)
    problems.push("agent.listen.provider.keyterm is not a field (keyterms)");
  const keyterms = at("agent.listen.provider.keyterms");
  if (keyterms !== undefined) {
    if (!Array.isArray(keyterms) || keyterms.some((term) => typeof term !== "string"))
      problems.push("agent.listen.provider.keyterms must be an array of strings");
    // Deepgram allows 500 tokens across all keyterms; every word is at least one token.
    else if (keyterms.join(" ").split(/\s+/).length > 500)
      problems.push("agent.listen.provider.keyterms exceed 500 tokens");
  }
  return problems;
}

export class FakeAgentSession {
  settings: Record<string, unknown> | undefined;
  /** Text messages received after Settings, parsed. */
  readonly messages: ClientMessage[] = [];
  audioFrames = 0;
  audioBytes = 0;
  /** When each audio frame arrived (performance.now()), for latency measurements. */
  readonly audioArrivals: number[] = [];
  /** Sends every caller frame back as agent audio (the server's `echo` option; a test may stop it). */
  echoing: boolean;
  closed = false;
  readonly #closed = Promise.withResolvers<void>();
  readonly #conditions = new Conditions("fake agent");
  readonly #responses = new Map<string, (content: string) => void>();
  #functionIds = 0;
  /** Between the caller's UserStartedSpeaking and the end of their turn. */
  #callerMidTurn = false;
  /** Sent while the caller was mid-turn and not yet answered: cancelled if the turn goes on. */
  readonly #speculative = new Map<string, string>();
  /** Deferred (`defer_until_eot`) calls held until the caller's turn ends. */
  #heldCalls: ClientMessage[] = [];
  /** `queue` injections waiting for the caller's turn to end. */
  #queuedInjections: string[] = [];
  /** The next agent turn answers the caller: a LatencyReport follows it. */
  #replyDue = false;
  /** Function calls discarded because the caller's turn went on (deferred, never sent). */
  discardedCalls = 0;
  /** Ids of FunctionCallResponses for calls that were not waiting for one (e.g. cancelled). */
  readonly unexpectedResponses: string[] = [];

  constructor(
    private readonly socket: ServerWebSocket<SocketData>,
    private readonly options: FakeAgentOptions,
  ) {
    this.echoing = options.echo ?? false;
  }

  /** Resolves when the socket has closed. */
  get whenClosed(): Promise<void> {
    return this.#closed.promise;
  }

  send(message: ClientMessage): void {
    if (!this.closed) this.socket.send(JSON.stringify(message));
  }

  sendAudio(audio: Uint8Array): void {
    if (!this.closed) this.socket.send(audio);
  }

  /** One agent turn: transcript, AgentStartedSpeaking, audio frames, AgentAudioDone. */
  say(text: string, audioMs = 200): void {
    this.send({ type: "ConversationText", role: "assistant", content: text });
    this.send({
      type: "AgentStartedSpeaking",
      total_latency: 0.4,
      tts_latency: 0.1,
      ttt_latency: 0.3,
    });
    const chunk = (this.options.chunkMs ?? 80) * BYTES_PER_MS;
    const audio = mulawTone(audioMs);
    for (let offset = 0; offset < audio.length; offset += chunk)
      this.sendAudio(audio.subarray(offset, offset + chunk));
    this.send({ type: "AgentAudioDone" });
    if (this.#replyDue) {
      this.#replyDue = false;
      this.send({
        type: "LatencyReport",
        ttt_token_latency: 0.21,
        ttt_text_latency: 0.32,
        tts_latency: 0.11,
        total_latency: 0.58,
      });
    }
  }

  /**
   * The caller starts (or resumes) a turn: UserStartedSpeaking. Speculative calls still unanswered
   * are cancelled, and held deferred ones dropped: the turn was not over.
   */
  userStartedSpeaking(): void {
    this.#callerMidTurn = true;
    this.send({ type: "UserStartedSpeaking" });
    if (this.#speculative.size > 0) {
      const functions = [...this.#speculative].map(([id, name]) => ({ id, name }));
      this.#speculative.clear();
      for (const { id } of functions) this.#responses.delete(id);
      this.send({ type: "FunctionCallCancelled", functions });
    }
    this.discardedCalls += this.#heldCalls.length;
    this.#heldCalls = [];
  }

  /** The caller's turn is confirmed over, with these words: held calls and queued words go out. */
  userEndsTurn(text: string): void {
    this.send({ type: "ConversationText", role: "user", content: text });
    this.#callerMidTurn = false;
    this.#speculative.clear();
    this.#replyDue = true;
    for (const held of this.#heldCalls) this.send(held);
    this.#heldCalls = [];
    for (const words of this.#queuedInjections) this.say(words, 300);
    this.#queuedInjections = [];
  }

  /** The caller speaks a whole turn: barge-in signal, then their words as a transcript line. */
  userSays(text: string): void {
    this.userStartedSpeaking();
    this.userEndsTurn(text);
  }

  /**
   * The agent ends the call: a goodbye (`audioMs` of audio, then AgentAudioDone) and a request for
   * the `end_call` function. "words first" says the goodbye, then asks; "request first" asks, and
   * says the goodbye once the response has come back, as the live agent speaks after a function's
   * result. Resolves with the response's content.
   */
  async sayGoodbyeAndEnd(order: "words first" | "request first", audioMs = 600): Promise<string> {
    const request = () => this.callFunction("end_call", { reason: "the caller said goodbye" });
    if (order === "words first") {
      this.say("Goodbye!", audioMs);
      return request();
    }
    const response = await request();
    this.say("Goodbye!", audioMs);
    return response;
  }

  /**
   * Asks the client to run a function; resolves with the content of its FunctionCallResponse. While
   * the caller is mid-turn the call is speculative, or held if the function is `defer_until_eot`.
   */
  callFunction(name: string, args: unknown): Promise<string> {
    const id = `fc_${++this.#functionIds}`;
    const response = new Promise<string>((resolve) => this.#responses.set(id, resolve));
    const request = {
      type: "FunctionCallRequest",
      functions: [{ id, name, arguments: JSON.stringify(args), client_side: true }],
    };
    if (this.#callerMidTurn && this.#deferred(name)) this.#heldCalls.push(request);
    else {
      if (this.#callerMidTurn) this.#speculative.set(id, name);
      this.send(request);
    }
    return response;
  }

  #deferred(name: string): boolean {
    const functions = (this.settings?.agent as { think?: { functions?: unknown[] } } | undefined)
      ?.think?.functions as { name?: string; defer_until_eot?: boolean }[] | undefined;
    return functions?.some((fn) => fn.name === name && fn.defer_until_eot === true) ?? false;
  }

  error(code: string, description: string): void {
    this.send({ type: "Error", code, description });
  }

  /** Drops the connection without a close handshake. */
  drop(): void {
    this.socket.terminate();
  }

  ofType(type: string): ClientMessage[] {
    return this.messages.filter((message) => message.type === type);
  }

  /** Resolves once `condition` holds, re-checked on every message received. */
  waitFor(condition: () => boolean, what = "condition", timeoutMs = 5_000): Promise<void> {
    return this.#conditions.waitFor(condition, what, timeoutMs);
  }

  /** @internal called by the server */
  receive(message: string | Buffer): "settings" | undefined {
    try {
      if (typeof message !== "string") return this.#receiveAudio(message);
      let parsed: ClientMessage;
      try {
        parsed = JSON.parse(message);
      } catch {
        this.error("UNPARSABLE_CLIENT_MESSAGE", "Could not parse client message");
        return;
      }
      if (parsed.type === "Settings") return this.#receiveSettings(parsed);
      if (!this.settings) {
        this.error("NON_SETTINGS_MESSAGE_BEFORE_SETTINGS", `${parsed.type} before Settings`);
        return;
      }
      this.messages.push(parsed);
      this.#react(parsed);
    } finally {
      this.#conditions.changed();
    }
  }

  #receiveAudio(audio: Buffer): undefined {
    if (!this.settings) {
      this.error("NON_SETTINGS_MESSAGE_BEFORE_SETTINGS", "audio before Settings");
      return;
    }
    this.audioFrames += 1;
    this.audioBytes += audio.byteLength;
    this.audioArrivals.push(performance.now());
    if (this.echoing) this.sendAudio(audio);
  }

  #receiveSettings(settings: ClientMessage): "settings" | undefined {
    if (this.settings) {
      this.error("SETTINGS_ALREADY_APPLIED", "Settings were already applied");
      return;
    }
    const problems = settingsProblems(settings);
    if (problems.length > 0) {
      this.error("INVALID_SETTINGS", problems.join("; "));
      this.socket.close(1008, "invalid settings");
      return;
    }
    this.settings = settings;
    this.send({ type: "SettingsApplied" });
    // A resumed conversation: the agent reports the history it was given, item by item.
    const context = (settings.agent as { context?: { messages?: ClientMessage[] } }).context;
    for (const item of context?.messages ?? []) this.send(item);
    const greeting = (settings.agent as { greeting?: string }).greeting;
    if (greeting) this.say(greeting, this.options.greetingMs ?? 400);
    return "settings";
  }

  #react(message: ClientMessage): void {
    if (message.type === "FunctionCallResponse") {
      const id = String(message.id);
      if (!this.#responses.has(id)) {
        // An answer to a call that was cancelled (or never made): the spec says never to send one.
        this.unexpectedResponses.push(id);
        return;
      }
      const resolve = this.#responses.get(id);
      this.#responses.delete(id);
      this.#speculative.delete(id);
      resolve?.(String(message.content));
    } else if (message.type === "UpdateThink") {
      this.send({ type: "ThinkUpdated" });
    } else if (message.type === "InjectUserMessage") {
      // Answered like a caller's finished turn (e.g. a keypad digit passed on as words).
      this.#replyDue = true;
      this.say(`You said: ${String(message.content ?? "")}`, 200);
    } else if (message.type === "InjectAgentMessage") {
      const words = String(message.message ?? "");
      const behavior = message.behavior ?? "default";
      if (this.options.speakInjections === false)
        this.send({ type: "InjectionRefused", message: "refused" });
      else if (behavior === "interrupt") this.say(words, 300);
      else if (!this.#callerMidTurn) this.say(words, 300);
      else if (behavior === "queue") this.#queuedInjections.push(words);
      else this.send({ type: "InjectionRefused", message: "the user is speaking" });
    }
  }

  /** @internal */
  markClosed(): void {
    this.closed = true;
    this.#closed.resolve();
  }
}

export class FakeVoiceAgentServer {
  readonly sessions: FakeAgentSession[] = [];
  /** Upgrades refused for bad or missing credentials. */
  rejectedUpgrades = 0;
  /** Requests for the think model list. */
  modelListRequests = 0;
  readonly #waiting: ((session: FakeAgentSession) => void)[] = [];
  readonly #unclaimed: FakeAgentSession[] = [];
  readonly #server: Server<SocketData>;

  private constructor(readonly options: FakeAgentOptions) {
    this.#server = Bun.serve<SocketData>({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request, server) => {
        const path = new URL(request.url).pathname;
        if (path === "/v1/agent/settings/think/models") {
          if (!this.#authorised(request))
            return Response.json(
              { err_code: "INVALID_AUTH", err_msg: "Invalid credentials." },
              { status: 401 },
            );
          this.modelListRequests += 1;
          const models = (options.thinkModels ?? DEFAULT_THINK_MODELS).map((model) => ({
            ...model,
            name: model.id,
          }));
          return Response.json({ models });
        }
        if (path !== "/v1/agent/converse") return new Response("not found", { status: 404 });
        if (!this.#authorised(request)) {
          this.rejectedUpgrades += 1;
          return new Response("unauthorized", { status: 401 });
        }
        const upgraded = server.upgrade(request, { data: {} as SocketData });
        return upgraded ? undefined : new Response("expected a websocket", { status: 400 });
      },
      websocket: {
        open: (socket) => {
          socket.data.session = new FakeAgentSession(socket, options);
          this.sessions.push(socket.data.session);
          socket.send(JSON.stringify({ type: "Welcome", request_id: crypto.randomUUID() }));
        },
        message: (socket, message) => {
          if (socket.data.session.receive(message) !== "settings") return;
          const waiter = this.#waiting.shift();
          if (waiter) waiter(socket.data.session);
          else this.#unclaimed.push(socket.data.session);
        },
        close: (socket) => socket.data.session.markClosed(),
      },
    });
  }

  static start(options: FakeAgentOptions = {}): FakeVoiceAgentServer {
    return new FakeVoiceAgentServer(options);
  }

  /** The URL to give DEEPGRAM_AGENT_URL. */
  get url(): string {
    return `ws://127.0.0.1:${this.#server.port}/v1/agent/converse`;
  }

  /** Resolves with the next connection whose Settings are applied. */
  nextSession(timeoutMs = 5_000): Promise<FakeAgentSession> {
    const ready = this.#unclaimed.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("fake agent: no session was set up")),
        timeoutMs,
      );
      this.#waiting.push((session) => {
        clearTimeout(timer);
        resolve(session);
      });
    });
  }

  stop(): void {
    this.#server.stop(true);
  }

  #authorised(request: Request): boolean {
    if (!this.options.apiKey) return true;
    if (request.headers.get("authorization") === `Token ${this.options.apiKey}`) return true;
    const protocols = (request.headers.get("sec-websocket-protocol") ?? "")
      .split(",")
      .map((part) => part.trim());
    return protocols[0] === "token" && protocols[1] === this.options.apiKey;
  }
}
