/**
 * Preloaded by `bun test` (bunfig.toml): tests never leave the machine. A `fetch` or a WebSocket to
 * anything but loopback fails at once, naming the host, instead of reaching a live service.
 */
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

function refuseRemote(target: string | URL | Request): void {
  const url = new URL(target instanceof Request ? target.url : String(target));
  if (!LOOPBACK.test(url.hostname))
    throw new Error(`a test tried to reach ${url.host}: tests stay on loopback`);
}

const loopbackFetch = Object.assign(
  (input: string | URL | Request, init?: RequestInit) => {
    try {
      refuseRemote(input);
    } catch (error) {
      return Promise.reject(error);
    }
    return realFetch(input, init);
  },
  { preconnect: globalThis.fetch.preconnect },
) as typeof fetch;
const realFetch = globalThis.fetch;
globalThis.fetch = loopbackFetch;

const RealWebSocket = globalThis.WebSocket;
globalThis.WebSocket = class extends RealWebSocket {
  constructor(url: string | URL, options?: unknown) {
    refuseRemote(url);
    super(url, options as string[]);
  }
} as typeof WebSocket;
