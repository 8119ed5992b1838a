/**
 * `GET /calls/{sid}/recording`: a call's recording as `audio/wav`, behind the same secret as the
 * call records. Byte ranges (`Range: bytes=…`, one range) are served as 206 so an audio element can
 * seek. Every instance serves from RECORDINGS_DIR, which instances on several machines must share
 * (docs/DEPLOY.md); the workers of one machine share it as it is.
 */
import { Elysia, t } from "elysia";
import { recordingFile } from "../call/recording.ts";
import { AppError, NotFoundError } from "../errors.ts";
import type { ConsoleSessions } from "../ops/console-sessions.ts";
import type { CallStore } from "../store/port.ts";
import { BEARER_SECURITY, type EndpointGuard } from "./auth.ts";
import { CallSidParams } from "./calls.ts";
import { Errors, fromError, guardedErrors, invalid, responses } from "./openapi.ts";

/** A `Range` this file cannot satisfy. */
export class RangeNotSatisfiableError extends AppError {
  constructor(size: number) {
    super(
      416,
      "RANGE_NOT_SATISFIABLE",
      `The recording has ${size} bytes; ask for a range within them`,
    );
    this.headers["content-range"] = `bytes */${size}`;
  }
}

/**
 * One `bytes=` range of a file of `size` bytes, as [first, last]. Undefined: a header that is not
 * one valid range (several, malformed, or last before first), which RFC 9110 says to ignore (the
 * whole file is served).
 */
export function byteRange(
  header: string,
  size: number,
): [number, number] | "unsatisfiable" | undefined {
  const match = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  const [, from = "", to = ""] = match;
  if (from === "") {
    // The last N bytes.
    const suffix = Number(to);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return [Math.max(size - suffix, 0), size - 1];
  }
  const first = Number(from);
  if (to !== "" && Number(to) < first) return undefined;
  if (first >= size) return "unsatisfiable";
  return [first, to === "" ? size - 1 : Math.min(Number(to), size - 1)];
}

export interface RecordingRouteDeps {
  calls: Pick<CallStore, "get">;
  /** Where a recording's file is. */
  pathOf(file: string): string;
  guard: EndpointGuard;
  /** The console's sign-in: an audio element cannot send the bearer secret, its page's cookie goes. */
  sessions: ConsoleSessions;
}

export function recordingRoutes({ calls, pathOf, guard, sessions }: RecordingRouteDeps) {
  // In a plugin of its own, as `endpointAuth`: scoped to this group, not to the whole app.
  const signedInOrSecret = new Elysia().onBeforeHandle(
    { as: "scoped" },
    async ({ request, server }) => {
      // A bearer secret is checked as it is (no database involved); otherwise the console's cookie.
      if (request.headers.has("authorization") || !(await sessions.valid(request)))
        guard.authorize(request, server);
    },
  );
  return new Elysia({ name: "recordings" }).use(signedInOrSecret).get(
    "/calls/:sid/recording",
    async ({ params, request }) => {
      const recording = (await calls.get(params.sid))?.recording;
      // The file is named by the SID, never by what the record says.
      const name = recordingFile(params.sid);
      if (!recording || recording.deleted_at || !name || recording.file !== name)
        throw new NotFoundError(`No recording of call ${params.sid}`);
      const file = Bun.file(pathOf(name));
      if (!(await file.exists())) throw new NotFoundError(`No recording of call ${params.sid}`);
      const size = file.size;
      const headers = {
        "content-type": "audio/wav",
        "accept-ranges": "bytes",
        "cache-control": "private, no-store",
      };
      const range = request.headers.get("range");
      const wanted = range ? byteRange(range, size) : undefined;
      if (wanted === "unsatisfiable") throw new RangeNotSatisfiableError(size);
      if (!wanted) return new Response(file, { headers });
      const [first, last] = wanted;
      return new Response(file.slice(first, last + 1), {
        status: 206,
        headers: {
          ...headers,
          "content-range": `bytes ${first}-${last}/${size}`,
          "content-length": String(last - first + 1),
        },
      });
    },
    {
      params: CallSidParams,
      detail: {
        tags: ["Calls"],
        summary: "The call's recording (RECORDING=local)",
        description:
          "A two-channel 8 kHz mu-law WAV: left the caller, right what the caller heard of the agent. Supports Range requests (one range) for seeking.",
        security: BEARER_SECURITY,
        responses: responses(
          {
            200: { description: "The whole recording", schema: t.Any(), mediaType: "audio/wav" },
            206: {
              description: "The requested byte range",
              schema: t.Any(),
              mediaType: "audio/wav",
            },
          },
          invalid("params.sid", "Expected string length greater or equal to 2"),
          ...guardedErrors(false),
          Errors.notFound("recording", "No recording of call CA0123456789abcdef0123456789abcdef"),
          fromError("A Range outside the file", new RangeNotSatisfiableError(48044)),
        ),
      },
    },
  );
}
