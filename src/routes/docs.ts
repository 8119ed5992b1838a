/**
 * The OpenAPI document (`GET /docs/json`) and the interactive API reference (`GET /docs`). The
 * reference UI's script is embedded in the binary and served from `/docs/assets/`, so the page works
 * with no internet access.
 */
import { swagger } from "@elysiajs/swagger";
import { Elysia } from "elysia";
import scalarBundlePath from "#scalar-bundle" with { type: "file" };

const SCALAR_ASSET = "/docs/assets/scalar.js";

type ScalarConfig = NonNullable<Parameters<typeof swagger>[0]>["scalarConfig"];

/**
 * Keeps the page self-contained: no web fonts, no telemetry, no request proxy, none of Scalar's
 * hosted extras (AI agent, MCP, deploy toolbar). The plugin's bundled types predate some of these keys.
 */
const offlineScalarConfig = {
  withDefaultFonts: false,
  telemetry: false,
  showDeveloperTools: "never",
  showToolbar: "never",
  agent: { disabled: true },
  mcp: { disabled: true },
  // Without this, "Test request" goes through Scalar's hosted proxy, carrying the Bearer secret to a third party.
  proxyUrl: "",
} as ScalarConfig;

export function docsRoutes(version: string) {
  return new Elysia({ name: "docs" })
    .get("/", ({ redirect }) => redirect("/docs"), { detail: { hide: true } })
    .get(
      SCALAR_ASSET,
      () =>
        new Response(Bun.file(scalarBundlePath), {
          headers: {
            "content-type": "text/javascript; charset=utf-8",
            "cache-control": "public, max-age=3600",
          },
        }),
      { detail: { hide: true } },
    )
    .use(
      swagger({
        path: "/docs",
        specPath: "/docs/json",
        provider: "scalar",
        scalarCDN: SCALAR_ASSET,
        scalarConfig: offlineScalarConfig,
        exclude: ["/docs", "/docs/json", SCALAR_ASSET, "/"],
        documentation: {
          info: {
            title: "Voice Agent API",
            version,
            description:
              "Bridges Twilio phone calls to a Deepgram Voice Agent. Places outbound calls, answers inbound ones, keeps transcripts and outcomes.",
          },
          tags: [
            { name: "Service", description: "Health and metadata" },
            {
              name: "Calls",
              description: "Call records with transcripts, function calls and outcomes",
            },
          ],
          components: {
            securitySchemes: {
              bearerAuth: {
                type: "http",
                scheme: "bearer",
                description: "The service's ENDPOINT_SECRET",
              },
            },
          },
        },
      }),
    );
}
