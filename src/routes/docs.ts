/**
 * The OpenAPI document (`GET /docs/json`) and the interactive API reference (`GET /docs`). The
 * reference UI's script is embedded in the binary and served from `/docs/assets/`, so the page works
 * with no internet access. The swagger plugin (and the Scalar theme it imports) is loaded by the first
 * request for either, not at start-up.
 */
import type { swagger } from "@elysiajs/swagger";
import { type AnyElysia, Elysia } from "elysia";
import scalarBundlePath from "#scalar-bundle" with { type: "file" };

const SCALAR_ASSET = "/docs/assets/scalar.js";

type SwaggerOptions = NonNullable<Parameters<typeof swagger>[0]>;
type ScalarConfig = SwaggerOptions["scalarConfig"];

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

/**
 * How a plugin sees the app it is mounted in: protected in Elysia's types, set on the plugin's
 * instance by `use`. The swagger plugin documents the routes it finds there.
 */
interface MountedIn {
  getGlobalRoutes(): unknown;
  getGlobalDefinitions(): unknown;
}

export function docsRoutes(version: string) {
  const plugin = new Elysia({ name: "docs" });
  let reference: Promise<AnyElysia> | undefined;
  /** Answers from the swagger plugin, mounted on first use in an app of its own that sees this one's routes. */
  const fromReference = ({ request }: { request: Request }) => {
    reference ??= import("@elysiajs/swagger").then(({ swagger }) => {
      const docs = new Elysia();
      const mounted = docs as unknown as MountedIn;
      const app = plugin as unknown as MountedIn;
      mounted.getGlobalRoutes = () => app.getGlobalRoutes();
      mounted.getGlobalDefinitions = () => app.getGlobalDefinitions();
      return docs.use(swagger(swaggerOptions(version)));
    });
    return reference.then((docs) => docs.handle(request));
  };
  return plugin
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
    .get("/docs", fromReference, { detail: { hide: true } })
    .get("/docs/json", fromReference, { detail: { hide: true } });
}

function swaggerOptions(version: string): SwaggerOptions {
  return {
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
  };
}
