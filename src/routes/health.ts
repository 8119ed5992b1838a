/** `GET /health`: liveness, version, live call count and which integrations are configured. */
import { Elysia, t } from "elysia";
import { responses } from "./openapi.ts";

const IntegrationStatus = t.Object({
  configured: t.Boolean(),
  missing: t.Array(t.String(), { description: "Environment variables still to set" }),
});

export const HealthResponse = t.Object({
  status: t.Union([t.Literal("ok"), t.Literal("draining")]),
  version: t.String(),
  activeCalls: t.Number({ minimum: 0 }),
  integrations: t.Object({ twilio: IntegrationStatus, deepgram: IntegrationStatus }),
});
export type HealthResponse = typeof HealthResponse.static;

export interface HealthDeps {
  version: string;
  integrations: HealthResponse["integrations"];
  activeCalls(): number;
  draining(): boolean;
}

export function healthRoutes(deps: HealthDeps) {
  return new Elysia({ name: "health" }).get(
    "/health",
    ({ set }) => {
      const draining = deps.draining();
      // Draining answers 503 so load balancers and health checks stop sending new calls here.
      if (draining) set.status = 503;
      return {
        status: draining ? "draining" : "ok",
        version: deps.version,
        activeCalls: deps.activeCalls(),
        integrations: deps.integrations,
      } satisfies HealthResponse;
    },
    {
      response: { 200: HealthResponse, 503: HealthResponse },
      detail: {
        tags: ["Service"],
        summary: "Service health",
        description: "200 while serving; 503 with status `draining` once shutdown has begun.",
        responses: responses({
          200: { description: "Serving", schema: HealthResponse },
          503: {
            description: "Draining for shutdown: send new calls elsewhere",
            schema: HealthResponse,
          },
        }),
      },
    },
  );
}
