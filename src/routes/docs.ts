/**
 * The OpenAPI document (`GET /docs/json`) and the interactive API reference (`GET /docs`). The
 * reference UI's script and the favicon are embedded in the binary, so the page works with no
 * internet access. The swagger plugin (and the Scalar theme it imports) is loaded by the first
 * request for either, not at start-up; its document is then finished here: the servers, one media
 * type and named examples per request body, integer paging parameters, Twilio's webhooks apart.
 */
import type { swagger } from "@elysiajs/swagger";
import { type AnyElysia, Elysia } from "elysia";
import scalarBundlePath from "#scalar-bundle" with { type: "file" };
import { once } from "../lazy.ts";
import { requestOrigin } from "../request-url.ts";
import { REQUEST_BODY, type RequestBodyDoc, WEBHOOK, WEBHOOK_NOTE } from "./openapi.ts";

const SCALAR_ASSET = "/docs/assets/scalar.js";
/** The address the page and document are built at, inside this process (never a client's Host). */
const INTERNAL_ORIGIN = "http://docs.internal";

/** A phone handset on the accent colour, as SVG: a few hundred bytes, no file to ship. */
const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#2563eb"/><path fill="#fff" d="M11.6 6.5c.6 0 1.1.4 1.3 1l1.3 3.7c.2.6 0 1.2-.4 1.6l-1.7 1.4a13 13 0 0 0 5.7 5.7l1.4-1.7c.4-.5 1-.6 1.6-.4l3.7 1.3c.6.2 1 .7 1 1.3v3.2c0 1-.8 1.9-1.9 1.9C13.9 25.5 6.5 18.1 6.5 9.4c0-1.1.9-1.9 1.9-1.9z"/></svg>`;

type SwaggerOptions = NonNullable<Parameters<typeof swagger>[0]>;
type ScalarConfig = SwaggerOptions["scalarConfig"];

/** The security scheme of the routes behind ENDPOINT_SECRET. */
const BEARER = "bearerAuth";

/**
 * Keeps the page self-contained: no web fonts, no telemetry, no request proxy, none of Scalar's
 * hosted extras (AI agent, MCP, deploy toolbar). The bearer scheme is selected from the start and
 * snippets default to curl. The plugin's bundled types predate some of these keys.
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
  favicon: "/favicon.svg",
  authentication: { preferredSecurityScheme: BEARER },
  defaultHttpClient: { targetKey: "shell", clientKey: "curl" },
} as ScalarConfig;

/**
 * Scalar has "Test Request" on webhooks too, where it can only ever get a 403: hidden there (the
 * sections of webhooks have ids like `…/webhook/POST/incoming-call`).
 */
const PAGE_STYLE = `<style>section[id*="/webhook/"] .show-api-client-button { display: none !important; }</style>`;

/**
 * How a plugin sees the app it is mounted in: protected in Elysia's types, set on the plugin's
 * instance by `use`. The swagger plugin documents the routes it finds there.
 */
interface MountedIn {
  getGlobalRoutes(): unknown;
  getGlobalDefinitions(): unknown;
}

export interface DocsOptions {
  version: string;
  /** SERVER_EXTERNAL_URL: the server the document names; else the origin the request reached. */
  externalUrl: string | undefined;
}

export function docsRoutes({ version, externalUrl }: DocsOptions) {
  const plugin = new Elysia({ name: "docs" });
  /** The swagger plugin, mounted on first use in an app of its own that sees this one's routes. */
  const mount = once(() =>
    import("@elysiajs/swagger").then(({ swagger }): AnyElysia => {
      const docs = new Elysia();
      const mounted = docs as unknown as MountedIn;
      const app = plugin as unknown as MountedIn;
      mounted.getGlobalRoutes = () => app.getGlobalRoutes();
      mounted.getGlobalDefinitions = () => app.getGlobalDefinitions();
      return docs.use(swagger(swaggerOptions(version)));
    }),
  );
  // Built once, from a fixed address: nothing a client sends (its Host header) goes into them.
  const built = (path: string) =>
    mount().then((docs) => docs.handle(new Request(`${INTERNAL_ORIGIN}${path}`)));
  const html = once(() =>
    built("/docs")
      .then((response) => response.text())
      .then((text) => text.replace("</head>", `${PAGE_STYLE}</head>`)),
  );
  const finished = once(() =>
    built("/docs/json")
      .then((response) => response.json() as Promise<OpenApiDocument>)
      .then(finishDocument),
  );
  const page = async () =>
    new Response(await html(), { headers: { "content-type": "text/html; charset=utf8" } });
  const document = async ({ request }: { request: Request }) =>
    Response.json({ ...(await finished()), servers: servers(externalUrl, requestOrigin(request)) });
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
    .get("/favicon.ico", favicon, { detail: { hide: true } })
    .get("/favicon.svg", favicon, { detail: { hide: true } })
    .get("/docs", page, { detail: { hide: true } })
    .get("/docs/json", document, { detail: { hide: true } });
}

const favicon = () =>
  new Response(FAVICON_SVG, {
    headers: { "content-type": "image/svg+xml", "cache-control": "public, max-age=86400" },
  });

/**
 * Where the snippets and "Test Request" send requests: the public URL when one is configured (what
 * Twilio and remote clients use), else the origin this request reached (e.g. http://127.0.0.1:8080).
 */
function servers(externalUrl: string | undefined, origin: string | undefined) {
  if (externalUrl)
    return [{ url: withoutCredentials(externalUrl), description: "SERVER_EXTERNAL_URL" }];
  return [{ url: origin ?? "/", description: "This service" }];
}

/** A URL as it may be published: any `user:password@` in it left out. */
function withoutCredentials(url: string): string {
  if (!URL.canParse(url)) return url;
  const parsed = new URL(url);
  parsed.username = "";
  parsed.password = "";
  return parsed.href.replace(/\/$/, "");
}

interface Operation {
  tags?: string[];
  description?: string;
  security?: unknown[];
  parameters?: { in: string; name: string; schema?: Record<string, unknown> }[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: unknown }> };
  [REQUEST_BODY]?: RequestBodyDoc;
  [WEBHOOK]?: boolean;
  [key: string]: unknown;
}

type PathItem = Record<string, Operation>;

interface OpenApiDocument {
  openapi: string;
  servers?: { url: string; description?: string }[];
  security?: Record<string, string[]>[];
  paths: Record<string, PathItem>;
  webhooks?: Record<string, PathItem>;
  components?: { securitySchemes?: Record<string, unknown>; schemas?: Record<string, unknown> };
  [key: string]: unknown;
}

/**
 * Finishes the plugin's document: OpenAPI 3.1 (its schemas already use `type: "null"`), the bearer
 * scheme required by default (routes without it say so), each request body in the one media type
 * its route reads with its named examples, query numbers as the integers they are, and the routes
 * Twilio calls moved to `webhooks`.
 */
function finishDocument(document: OpenApiDocument): OpenApiDocument {
  const paths: Record<string, PathItem> = {};
  const webhooks: Record<string, PathItem> = {};
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const webhook = operation[WEBHOOK] === true;
      const finished = finishOperation(operation, webhook);
      const into = webhook ? webhooks : paths;
      into[path] = { ...into[path], [method]: finished };
    }
  }
  return {
    ...document,
    openapi: "3.1.0",
    security: [{ [BEARER]: [] }],
    paths,
    ...(Object.keys(webhooks).length ? { webhooks } : {}),
  };
}

function finishOperation(operation: Operation, webhook: boolean): Operation {
  const { [REQUEST_BODY]: body, [WEBHOOK]: _, ...rest } = operation;
  const finished: Operation = { ...rest, security: operation.security ?? [] };
  if (webhook)
    finished.description = [operation.description, WEBHOOK_NOTE].filter(Boolean).join("\n\n");
  if (operation.parameters)
    finished.parameters = operation.parameters.map((parameter) =>
      parameter.schema ? { ...parameter, schema: plainNumber(parameter.schema) } : parameter,
    );
  if (operation.requestBody && body) {
    const schema = body.schema ?? Object.values(operation.requestBody.content ?? {})[0]?.schema;
    finished.requestBody = {
      ...operation.requestBody,
      content: {
        [body.mediaType]: { schema, ...(body.examples ? { examples: body.examples } : {}) },
      },
    };
  }
  return finished;
}

/**
 * Elysia coerces a query or path number by accepting a numeric string too (`anyOf: [{type: string,
 * format: integer}, {type: integer, …}]`); the document shows the number it stands for, with its
 * bounds and default, and without the service's internal error message.
 */
function plainNumber(schema: Record<string, unknown>): Record<string, unknown> {
  const branches = schema.anyOf;
  if (!Array.isArray(branches) || branches.length !== 2) return schema;
  const number = branches.find((b) => b?.type === "integer" || b?.type === "number");
  const numeric = branches.find((b) => b?.type === "string" && typeof b?.format === "string");
  if (!number || !numeric) return schema;
  const { anyOf: _, error: __, ...outer } = schema;
  const { error: ___, ...inner } = number as Record<string, unknown>;
  return { ...outer, ...inner };
}

function swaggerOptions(version: string): SwaggerOptions {
  return {
    path: "/docs",
    specPath: "/docs/json",
    provider: "scalar",
    scalarCDN: SCALAR_ASSET,
    scalarConfig: offlineScalarConfig,
    documentation: {
      info: {
        title: "Voice Agent API",
        version,
        description:
          "Bridges Twilio phone calls to a Deepgram Voice Agent. Places outbound calls, answers inbound ones, keeps transcripts and outcomes.\n\nThe call and lead routes need `Authorization: Bearer <ENDPOINT_SECRET>` (enter it under Authentication). Every error answers JSON `{error, code}` (and `field` for an invalid input) with its status. Twilio's webhooks are listed apart: Twilio calls them, signed.",
      },
      tags: [
        { name: "Service", description: "Health and metadata" },
        {
          name: "Calls",
          description: "Call records with transcripts, function calls and outcomes",
        },
        { name: "Leads", description: "The people outbound calls follow up on" },
        {
          name: "Twilio webhooks",
          description: `What Twilio posts while it handles a call. ${WEBHOOK_NOTE}`,
        },
      ],
      components: {
        securitySchemes: {
          [BEARER]: {
            type: "http",
            scheme: "bearer",
            description: "The service's ENDPOINT_SECRET",
          },
          twilioSignature: {
            type: "apiKey",
            in: "header",
            name: "X-Twilio-Signature",
            description:
              "Twilio's HMAC-SHA1 of the public URL and the form fields, keyed with TWILIO_AUTH_TOKEN",
          },
        },
      },
    },
  };
}
