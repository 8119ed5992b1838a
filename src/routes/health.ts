/**
 * `GET /health`: liveness, version, live call count and which integrations are configured; with
 * `?proof=<nonce>`, an HMAC of the nonce under ENDPOINT_SECRET (src/health-proof.ts).
 */
import { Elysia, t } from "elysia";
import { healthProof, MAX_NONCE_CHARS } from "../health-proof.ts";
import { responses } from "./openapi.ts";

const IntegrationStatus = t.Object({
  configured: t.Boolean(),
  missing: t.Array(t.String(), { description: "Environment variables still to set" }),
});

export const HealthResponse = t.Object({
  status: t.Union([t.Literal("ok"), t.Literal("draining"), t.Literal("unavailable")]),
  unreachable: t.Optional(
    t.Array(t.Union([t.Literal("database"), t.Literal("redis")]), {
      description:
        "What this instance cannot reach (status `unavailable`): new calls would fail here, so a balancer should send them elsewhere",
    }),
  ),
  version: t.String(),
  activeCalls: t.Number({ minimum: 0 }),
  workers: t.Optional(
    t.Object(
      {
        total: t.Integer({ minimum: 1 }),
        alive: t.Integer({ minimum: 0 }),
      },
      {
        description:
          "With --workers: the machine's worker processes; `activeCalls` then counts the calls of all of them",
      },
    ),
  ),
  integrations: t.Object({ twilio: IntegrationStatus, deepgram: IntegrationStatus }),
  proof: t.Optional(
    t.String({
      description:
        "With `?proof=<nonce>` and ENDPOINT_SECRET set: HMAC-SHA256 of the nonce under the secret, so a client can tell this service from another process on its port",
    }),
  ),
});
export type HealthResponse = typeof HealthResponse.static;

export interface HealthDeps {
  version: string;
  /** ENDPOINT_SECRET, when set: the key of the proof. */
  secret: string | undefined;
  integrations: HealthResponse["integrations"];
  activeCalls(): number;
  draining(): boolean;
  /** The shared services this instance cannot reach now (none: empty). */
  unreachable?(): ("database" | "redis")[];
  /** With --workers: the machine's workers and the calls live on all of them, from the supervisor. */
  machine?(): Promise<{ total: number; alive: number; activeCalls: number | undefined }>;
}

export function healthRoutes(deps: HealthDeps) {
  return new Elysia({ name: "health" }).get(
    "/health",
    async ({ set, query }) => {
      const draining = deps.draining();
      const unreachable = deps.unreachable?.() ?? [];
      const machine = await deps.machine?.().catch(() => undefined);
      const nonce = (query as Record<string, string | undefined>).proof;
      // Draining, or cut off from the database or Redis, answers 503 so load balancers and health
      // checks stop sending new calls here.
      if (draining || unreachable.length > 0) set.status = 503;
      return {
        status: draining ? "draining" : unreachable.length > 0 ? "unavailable" : "ok",
        ...(unreachable.length > 0 ? { unreachable } : {}),
        version: deps.version,
        activeCalls: machine?.activeCalls ?? deps.activeCalls(),
        ...(machine ? { workers: { total: machine.total, alive: machine.alive } } : {}),
        integrations: deps.integrations,
        ...(deps.secret && nonce && nonce.length <= MAX_NONCE_CHARS
          ? { proof: healthProof(deps.secret, nonce) }
          : {}),
      } satisfies HealthResponse;
    },
    {
      response: { 200: HealthResponse, 503: HealthResponse },
      detail: {
        tags: ["Service"],
        summary: "Service health",
        description:
          "200 while serving; 503 with status `draining` once shutdown has begun, or `unavailable` (with what) while the database or Redis cannot be reached.",
        responses: responses({
          200: { description: "Serving", schema: HealthResponse },
          503: {
            description:
              "Draining for shutdown, or cut off from the database or Redis: send new calls elsewhere",
            schema: HealthResponse,
          },
        }),
      },
    },
  );
}
