/**
 * The Deepgram Voice Agent socket: connects with the API key, waits for Welcome, sends the one
 * Settings message, resolves once SettingsApplied arrives (or fails on timeout, Error or close), then
 * passes audio and messages both ways and sends KeepAlive whenever no audio has flowed for a while.
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
  return (settings, handlers) =>
    new Promise<AgentChannel>((resolve, reject) => {
      const socket = new WebSocket(options.url, {
        headers: { Authorization: `Token ${options.apiKey}` },
      });
      socket.binaryType = "nodebuffer";
      let ready = false;
      let closing = false;
      let audioSinceKeepAlive = false;
      let keepAlive: Timer | undefined;

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

      const channel: AgentChannel = {
        sendAudio(audio) {
          audioSinceKeepAlive = true;
          socket.send(audio);
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
        if (message.type === "Welcome") socket.send(settings);
        else if (message.type === "SettingsApplied") {
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
          reject(
            new Error(
              `agent socket closed before it was ready (${event.code}${event.reason ? ` ${event.reason}` : ""})`,
            ),
          );
        } else if (!closing) {
          handlers.closed(`${event.code}${event.reason ? ` ${event.reason}` : ""}`);
        }
      };
      socket.onerror = () => logger.debug("agent socket error");
    });
}
