/**
 * A call's link to the Deepgram agent: opens the agent socket through the `AgentConnector` port,
 * records Deepgram's request id, keeps the conversation so far, and replaces a socket that dropped
 * mid-call once with a new one that resumes that conversation. What the agent says is the session's
 * business: its messages and audio go to the handlers the session hands in, already contained.
 */
import type { Logger } from "../log.ts";
import type { AgentServerMessage, HistoryItem } from "../protocol/deepgram-agent.ts";
import type { CallEventInput } from "../store/calls.ts";
import type { CallState } from "./state.ts";

/** An agent socket that has been set up (Settings applied). */
export interface AgentChannel {
  /** Deepgram's id of this agent session (from Welcome), for support requests. */
  readonly requestId?: string | undefined;
  /** @returns false when the socket is no longer open (the audio was not sent) */
  sendAudio(audio: Uint8Array): boolean;
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

export interface AgentLinkDeps {
  connect: AgentConnector;
  /** Encodes the Settings message for the first socket. */
  settings: () => string;
  /** Settings that resume the conversation so far on a new socket; without it there is no resuming. */
  resumeSettings: ((history: readonly HistoryItem[]) => string) | undefined;
  /** Where every socket of this call reports; the session's containment is already around them. */
  handlers: AgentHandlers;
  record(event: CallEventInput): void;
  /** Milliseconds, for how long a socket took to be ready. */
  now(): number;
  logger: Logger;
  state(): CallState;
  /** The first socket is up and kept. */
  opened(): void;
  /** A replacement socket is up and kept. */
  resumed(): void;
  /** No socket could be had: the call cannot go on with the agent. */
  failed(reason: "agent_error" | "agent_unavailable", detail: string): void;
}

export class AgentLink {
  readonly #deps: AgentLinkDeps;
  #channel: AgentChannel | undefined;
  /** The conversation so far, for resuming it on a new agent socket. */
  readonly #history: HistoryItem[] = [];
  /** The agent socket has been replaced once already. */
  #reconnected = false;
  #wasUp = false;

  constructor(deps: AgentLinkDeps) {
    this.#deps = deps;
  }

  /** A socket is open and its settings applied. */
  get connected(): boolean {
    return this.#channel !== undefined;
  }

  /** A socket of this call has been open and ready at some point. */
  get wasUp(): boolean {
    return this.#wasUp;
  }

  /** Sends a text message; nothing happens while no socket is open. */
  send(text: string): void {
    this.#channel?.send(text);
  }

  /** @returns true when the audio went to an open socket */
  sendAudio(audio: Uint8Array): boolean {
    return this.#channel?.sendAudio(audio) ?? false;
  }

  /** Lets go of the socket, then closes it (so a failing close still leaves the link closed). */
  close(): void {
    const channel = this.#channel;
    this.#channel = undefined;
    channel?.close();
  }

  /** Opens the first socket; it is kept unless the call has meanwhile gone past `live`. */
  open(): Promise<void> {
    const started = this.#deps.now();
    return this.#deps.connect(this.#deps.settings(), this.#deps.handlers).then(
      (agent) => {
        if (!["connecting", "awaiting_verdict", "live"].includes(this.#deps.state())) {
          agent.close();
          return;
        }
        this.#adopt(agent, started);
        this.#deps.opened();
      },
      (error: unknown) =>
        this.#deps.failed(
          "agent_unavailable",
          `agent connection failed: ${(error as Error).message}`,
        ),
    );
  }

  /**
   * The socket closed without us asking: a new one takes the conversation so far over (the caller
   * hears a short gap, not the apology). Undefined when it may not be replaced: without resume
   * settings, or when it was already replaced once. Resuming that fails fails the call.
   */
  resume(reason: string): Promise<void> | undefined {
    const resume = this.#deps.resumeSettings;
    if (!resume || this.#reconnected) return undefined;
    this.#reconnected = true;
    this.#channel = undefined;
    this.#deps.logger.warn("agent socket dropped, resuming the conversation", { reason });
    const history = [...this.#history];
    const started = this.#deps.now();
    return this.#deps.connect(resume(history), this.#deps.handlers).then(
      (agent) => {
        if (this.#deps.state() !== "live") {
          agent.close();
          return;
        }
        this.#deps.record({
          kind: "agent_reconnected",
          data: { reason, history_items: history.length },
        });
        this.#adopt(agent, started);
        this.#deps.resumed();
      },
      (error: unknown) =>
        this.#deps.failed(
          "agent_error",
          `agent socket closed: ${reason}; resuming failed: ${(error as Error).message}`,
        ),
    );
  }

  /** A line of the conversation, as the agent's history keeps it. */
  heard(role: "user" | "assistant", content: string): void {
    this.#history.push({ type: "History", role, content });
  }

  /** An answered function call, as the agent's history keeps it. */
  answered(call: { id: string; name: string; arguments: unknown; result: string }): void {
    const args =
      typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments);
    this.#history.push({
      type: "History",
      function_calls: [
        { id: call.id, name: call.name, client_side: true, arguments: args, response: call.result },
      ],
    });
  }

  #adopt(agent: AgentChannel, started: number): void {
    this.#channel = agent;
    this.#wasUp = true;
    this.#deps.record({
      kind: "agent_connected",
      data: { request_id: agent.requestId ?? null, connect_ms: this.#deps.now() - started },
    });
  }
}
