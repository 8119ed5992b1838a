/**
 * In-memory stand-ins for the ports a CallSession talks through (phone, agent connector, telephony,
 * recorder), recording everything in public arrays so session tests need no sockets.
 */
import type {
  AgentChannel,
  AgentConnector,
  AgentHandlers,
  CallRecorder,
  PhoneChannel,
  Telephony,
  TextToSpeech,
} from "../../src/call/session.ts";
import type { EndReason } from "../../src/call/state.ts";
import { type AgentServerMessage, decodeAgentMessage } from "../../src/protocol/deepgram-agent.ts";
import type { CallEventInput, CallerAudioCounts } from "../../src/store/calls.ts";

export interface SentToPhone {
  event: "media" | "mark" | "clear";
  /** Decoded audio for media, the mark name for mark. */
  audio?: Buffer;
  name?: string;
}

export class FakePhone implements PhoneChannel {
  readonly sent: SentToPhone[] = [];
  closed = false;

  send(text: string, then?: string): void {
    this.#record(text);
    if (then !== undefined) this.#record(then);
  }

  #record(text: string): void {
    const message = JSON.parse(text);
    if (message.event === "media")
      this.sent.push({ event: "media", audio: Buffer.from(message.media.payload, "base64") });
    else if (message.event === "mark") this.sent.push({ event: "mark", name: message.mark.name });
    else this.sent.push({ event: message.event });
  }

  close(): void {
    this.closed = true;
  }

  /** Mark names sent so far and not yet returned by `takeMarks`. */
  #taken = 0;
  takeMarks(): string[] {
    const marks = this.sent.filter((sent) => sent.event === "mark").map((sent) => sent.name ?? "");
    const fresh = marks.slice(this.#taken);
    this.#taken = marks.length;
    return fresh;
  }

  events(): string[] {
    return this.sent.map((sent) => sent.event);
  }
}

export class FakeAgent implements AgentChannel {
  readonly audio: Uint8Array[] = [];
  readonly messages: Record<string, unknown>[] = [];
  closed = false;

  constructor(readonly handlers: AgentHandlers) {}

  sendAudio(audio: Uint8Array): boolean {
    if (this.closed) return false;
    this.audio.push(audio);
    return true;
  }

  send(text: string): void {
    this.messages.push(JSON.parse(text));
  }

  close(): void {
    this.closed = true;
  }

  /** Delivers a server message as if it came over the socket (JSON-encoded and decoded again). */
  emit(message: { type: string } & Record<string, unknown>): void {
    this.handlers.message(decodeAgentMessage(JSON.stringify(message)) as AgentServerMessage);
  }

  speakAudio(bytes: number): void {
    this.handlers.audio(Buffer.alloc(bytes, 0x7f));
  }

  ofType(type: string): Record<string, unknown>[] {
    return this.messages.filter((message) => message.type === type);
  }
}

/** A connector whose connection the test completes or fails by hand. */
export class FakeConnector {
  settings: string | undefined;
  agent: FakeAgent | undefined;
  #pending: PromiseWithResolvers<AgentChannel> | undefined;

  readonly connect: AgentConnector = (settings, handlers) => {
    this.settings = settings;
    this.agent = new FakeAgent(handlers);
    this.#pending = Promise.withResolvers<AgentChannel>();
    return this.#pending.promise;
  };

  /** Settings applied: resolves the connection and waits a microtask turn for the session to see it. */
  async accept(): Promise<FakeAgent> {
    if (!this.agent || !this.#pending) throw new Error("connect was not called");
    this.#pending.resolve(this.agent);
    await Promise.resolve();
    return this.agent;
  }

  async refuse(error: Error): Promise<void> {
    this.#pending?.reject(error);
    await Promise.resolve();
  }
}

export class FakeTelephony implements Telephony {
  readonly hungUp: string[] = [];
  async hangUp(callSid: string): Promise<void> {
    this.hungUp.push(callSid);
  }
}

export class FakeRecorder implements CallRecorder {
  readonly events: CallEventInput[] = [];
  end: { reason: EndReason; detail: string } | undefined;
  /** What the session reported of the caller's frames when it ended. */
  callerAudio: CallerAudioCounts | undefined;
  outcomes: { outcome: string; detail: string }[] = [];

  outcome(outcome: string, detail: string): void {
    this.outcomes.push({ outcome, detail });
  }

  event(event: CallEventInput): void {
    this.events.push(event);
  }

  ended(reason: EndReason, detail: string, callerAudio?: CallerAudioCounts): void {
    this.end = { reason, detail };
    this.callerAudio = callerAudio;
  }

  ofKind<K extends CallEventInput["kind"]>(kind: K): Extract<CallEventInput, { kind: K }>[] {
    return this.events.filter(
      (event): event is Extract<CallEventInput, { kind: K }> => event.kind === kind,
    );
  }
}

/** Speech synthesis that yields the given chunks (or fails), recording what it was asked to say. */
export class FakeTts implements TextToSpeech {
  readonly texts: string[] = [];
  failure: Error | undefined;

  constructor(readonly chunks: Uint8Array[] = [Buffer.alloc(800, 0x11), Buffer.alloc(400, 0x22)]) {}

  async *stream(text: string): AsyncIterable<Uint8Array> {
    this.texts.push(text);
    if (this.failure) throw this.failure;
    for (const chunk of this.chunks) yield chunk;
  }
}
