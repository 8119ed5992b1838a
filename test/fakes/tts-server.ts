/**
 * A fake Deepgram REST API. TTS (`POST /v1/speak`): checks the token, the query (mu-law, 8000 Hz,
 * container none, a model) and the JSON body, then streams raw mu-law in chunks, as Deepgram does with
 * chunked transfer encoding. The key check (`GET /v1/projects`): 200 with the projects for the key,
 * 401 for any other, 403 for a key with limited scopes. Errors are Deepgram-shaped JSON
 * (`{err_code, err_msg, request_id}`). Records every request.
 */
import type { Server } from "bun";
import { mulawTone } from "./mulaw.ts";

export interface TtsRequest {
  query: Record<string, string>;
  text: string;
  authorized: boolean;
}

/** Audio length per word of text, so longer messages take longer to say. */
const MS_PER_WORD = 60;
const CHUNK_BYTES = 800;

export class FakeTtsServer {
  readonly requests: TtsRequest[] = [];
  /** Every `GET /v1/projects`, with the Authorization header's scheme checked. */
  readonly projectRequests: { authorization: string | null }[] = [];
  /**
   * Keys that are genuine but may not list projects (a key created with limited scopes): they may
   * speak, and `GET /v1/projects` answers them 403.
   */
  readonly scopedKeys = new Set<string>();
  /** The next request fails with this HTTP status. */
  failNext: number | undefined;
  readonly #server: Server<undefined>;

  private constructor(readonly apiKey: string) {
    this.#server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request) => this.#handle(request),
    });
  }

  static start(apiKey: string): FakeTtsServer {
    return new FakeTtsServer(apiKey);
  }

  /** The value for DEEPGRAM_API_URL. */
  get url(): string {
    return `http://127.0.0.1:${this.#server.port}`;
  }

  /** Bytes of audio the fake returns for `text`. */
  static audioBytes(text: string): number {
    return text.split(/\s+/).filter(Boolean).length * MS_PER_WORD * 8;
  }

  stop(): void {
    this.#server.stop(true);
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const error = (status: number, err_code: string, err_msg: string) =>
      Response.json({ err_code, err_msg, request_id: crypto.randomUUID() }, { status });
    if (url.pathname === "/v1/projects" && request.method === "GET") {
      const authorization = request.headers.get("authorization");
      this.projectRequests.push({ authorization });
      if (authorization === `Token ${this.apiKey}`) {
        return Response.json({
          projects: [{ project_id: "3f1c2a9e-5b7d-4e2a-9c1f-0a1b2c3d4e5f", name: "Fake project" }],
        });
      }
      if ([...this.scopedKeys].some((key) => authorization === `Token ${key}`))
        return error(
          403,
          "INSUFFICIENT_PERMISSIONS",
          "You do not have sufficient permissions to access this resource.",
        );
      return error(401, "INVALID_AUTH", "Invalid credentials.");
    }
    if (url.pathname !== "/v1/speak" || request.method !== "POST")
      return error(404, "NOT_FOUND", "Not found");
    const authorization = request.headers.get("authorization");
    const authorized =
      authorization === `Token ${this.apiKey}` ||
      [...this.scopedKeys].some((key) => authorization === `Token ${key}`);
    let text = "";
    try {
      text = String(((await request.json()) as { text?: unknown }).text ?? "");
    } catch {
      return error(400, "INVALID_JSON", "Body must be JSON");
    }
    const query = Object.fromEntries(url.searchParams);
    this.requests.push({ query, text, authorized });
    if (!authorized) return error(401, "INVALID_AUTH", "Invalid credentials.");
    if (this.failNext) {
      const status = this.failNext;
      this.failNext = undefined;
      return error(status, "INTERNAL_SERVER_ERROR", "The fake failed as asked");
    }
    if (
      query.encoding !== "mulaw" ||
      query.sample_rate !== "8000" ||
      query.container !== "none" ||
      !query.model
    ) {
      return error(
        400,
        "UNSUPPORTED_AUDIO_FORMAT",
        "Expected encoding=mulaw, sample_rate=8000, container=none and a model",
      );
    }
    if (!text || text.length > 2000)
      return error(413, "PAYLOAD_TOO_LARGE", "Text must be 1 to 2000 characters");
    const audio = mulawTone(FakeTtsServer.audioBytes(text) / 8, 220);
    let offset = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (offset >= audio.length) {
          controller.close();
          return;
        }
        await Bun.sleep(2);
        controller.enqueue(audio.subarray(offset, offset + CHUNK_BYTES));
        offset += CHUNK_BYTES;
      },
    });
    return new Response(stream, { headers: { "content-type": "audio/mulaw;rate=8000" } });
  }
}
