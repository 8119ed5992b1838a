/**
 * The Deepgram Voice Agent socket: connects with the API key, waits for Welcome, sends the one
 * Settings message, resolves once SettingsApplied arrives (or fails on timeout, Error or close), then
 * passes audio and messages both ways and sends KeepAlive whenever no audio has flowed for a while.
 * A refused upgrade fails in plain words: "Deepgram rejected the API key (HTTP 401)".
 */
import type { AgentChannel, AgentConnector } from "../call/session.ts";
import type { Clock, Timer } from "../clock.ts";
import type { Logger } from "../log.ts";
import { decodeAgentMessage, KEEP_ALIVE_MESSAGE } from "../protocol/deepgram-agent.ts";

export interface DeepgramAgentOptions {
  url: string;
  apiKey: string;
  connectTimeoutMs: number;
  keepAliveMs: number;
  clock: Clock;
  logger: Logger;
}

/** @example const connect = deepgramAgentConnector({ url, apiKey, … }); const agent = await connect(settings, handlers); */
export function deepgramAgentConnector(options: DeepgramAgentOptions): AgentConnector {
  const { clock, logger } = options;
  return (settings, handlers) => {
    /** Sent on Welcome, then let go: with the prompt and the functions it is the largest thing a call would hold. */
    let unsentSettings: string | undefined = settings;
    return new Promise<AgentChannel>((resolve, reject) => {
      const socket = new WebSocket(options.url, {
        headers: { Authorization: `Token ${options.apiKey}` },
      });
      socket.binaryType = "nodebuffer";
      let ready = false;
      let closing = false;
      let audioSinceKeepAlive = false;
      let keepAlive: Timer | undefined;
      let opened = false;
      /** Why the socket failed to open, from its error event (Bun names the HTTP status there). */
      let openError: string | undefined;

      const fail = (reason: string) => {
        connectTimer.cancel();
        closing = true;
        socket.close();
        reject(new Error(reason));
      };
      const connectTimer = clock.setTimeout(
        () => fail(`no SettingsApplied within ${options.connectTimeoutMs} ms`),
        options.connectTimeoutMs,
      );
      const scheduleKeepAlive = () => {
        keepAlive = clock.setTimeout(() => {
          if (!audioSinceKeepAlive && socket.readyState === WebSocket.OPEN)
            socket.send(KEEP_ALIVE_MESSAGE);
          audioSinceKeepAlive = false;
          scheduleKeepAlive();
        }, options.keepAliveMs);
      };

      let requestId: string | undefined;
      const channel: AgentChannel = {
        get requestId() {
          return requestId;
        },
        sendAudio(audio) {
          if (socket.readyState !== WebSocket.OPEN) return false;
          audioSinceKeepAlive = true;
          socket.send(audio);
          return true;
        },
        send(text) {
          socket.send(text);
        },
        close() {
          closing = true;
          keepAlive?.cancel();
          socket.close(1000, "call ended");
        },
      };

      socket.onopen = () => {
        opened = true;
      };
      socket.onmessage = (event) => {
        if (typeof event.data !== "string") {
          if (ready) handlers.audio(event.data as Buffer);
          return;
        }
        const message = decodeAgentMessage(event.data);
        if (ready) {
          handlers.message(message);
          return;
        }
        if (message.type === "Welcome") {
          requestId = message.request_id;
          if (unsentSettings !== undefined) socket.send(unsentSettings);
          unsentSettings = undefined;
        } else if (message.type === "SettingsApplied") {
          ready = true;
          connectTimer.cancel();
          scheduleKeepAlive();
          resolve(channel);
        } else if (message.type === "Error")
          fail(`agent refused the settings: ${message.code} ${message.description}`);
        else logger.debug("agent message before SettingsApplied", { type: message.type });
      };
      socket.onclose = (event) => {
        keepAlive?.cancel();
        if (!ready) {
          connectTimer.cancel();
          const closed = `${event.code}${event.reason ? ` ${event.reason}` : ""}`;
          reject(
            new Error(
              describeRefusal(openError) ?? `agent socket closed before it was ready (${closed})`,
            ),
          );
        } else if (!closing) {
          handlers.closed(`${event.code}${event.reason ? ` ${event.reason}` : ""}`);
        }
      };
      socket.onerror = (event) => {
        const message = (event as ErrorEvent).message;
        if (!opened) openError ??= message;
        logger.debug("agent socket error", { error: message });
      };
    });
  };
}

/**
 * The reason a socket never opened, in plain words. Bun (1.4.5) reports a refused upgrade only in
 * the error event's message, "WebSocket connection to '…' failed: Expected 101 status code: 401",
 * and a connection that failed as "…failed: Failed to connect"; the close event says 1006 either way.
 */
function describeRefusal(errorMessage: string | undefined): string | undefined {
  if (!errorMessage) return undefined;
  const status = /status code:? (\d{3})/i.exec(errorMessage)?.[1];
  if (status === "401") return "Deepgram rejected the API key (HTTP 401)";
  if (status === "403")
    return "Deepgram refused the API key for the Voice Agent (HTTP 403: the key or its project lacks access)";
  if (status) return `Deepgram's Voice Agent refused the connection (HTTP ${status})`;
  const why = errorMessage.replace(/^WebSocket connection to '[^']*' failed: /, "");
  return `could not connect to Deepgram's Voice Agent (${why})`;
}
