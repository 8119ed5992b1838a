/**
 * The live console (`/console`): one page in the binary, no CDN. Without a session the page is the
 * sign-in; `POST /console/login` with the endpoint secret sets the session cookie, `POST
 * /console/logout` ends it. The cookie (not the secret) authorises the console's data under
 * `/console/api/…`, its live stream (`/console/stream`, server-sent events) and, elsewhere,
 * `GET /calls/{sid}/recording`. State-changing requests must come from the console's own origin.
 * The page runs under a Content-Security-Policy that allows only its own nonce-marked script and
 * style and requests to this origin. Campaigns are read and paused, resumed or cancelled here as
 * under `/campaigns`, with the same moves (`TRANSITIONS`) and the same errors.
 */
import { randomBytes } from "node:crypto";
import { Elysia, t } from "elysia";
import type { CallRegistry } from "../call/registry.ts";
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import pageText from "../console/page.html" with { type: "text" };
import signInText from "../console/sign-in.html" with { type: "text" };
import { NotFoundError } from "../errors.ts";
import type { Coordination } from "../fleet/coordination.ts";
import type { Logger } from "../log.ts";
import { callDetail } from "../ops/call-detail.ts";
import type { ConsoleFeed, FeedMessage } from "../ops/console-feed.ts";
import type { ConsoleSessions } from "../ops/console-sessions.ts";
import type { CallRecord } from "../store/calls.ts";
import type { CampaignState } from "../store/campaigns.ts";
import type { Storage } from "../store/port.ts";
import { type EndpointGuard, UnauthorizedError } from "./auth.ts";
import { limitedBody, MAX_BODY_BYTES, readJson } from "./body.ts";
import { CallSidParams } from "./calls.ts";
import { type CampaignMove, campaignOf, IdParams, moveCampaign, TRANSITIONS } from "./campaigns.ts";
import { type CallPlacer, MakeCallRequest, placeOutboundCall } from "./make-call.ts";
import { PageQuery, PRINTABLE, page as pageOf } from "./models.ts";
import { validator } from "./validate.ts";

/** The pages as text (Bun's types call an HTML import a bundle; `type: "text"` makes it a string). */
const page = pageText as unknown as string;
const signIn = signInText as unknown as string;

/**
 * This often a stream gets a comment line (proxies close idle streams) and its session is checked
 * again: signed out or expired, the stream ends.
 */
const KEEP_ALIVE_MS = 5_000;
/** Entries a stream that comes back (`Last-Event-ID`) catches up on at most. */
const CATCH_UP = 500;
/** Rows of a CSV export at most. */
const MAX_EXPORT = 10_000;
/**
 * Campaigns a page of the list holds at most: each is counted with its own queries (the store has
 * no counts for a whole list), so a page stays small.
 */
const MAX_CAMPAIGN_PAGE = 50;

export interface ConsoleDeps {
  config: Config;
  store: Storage;
  calls: CallRegistry;
  coordination: Coordination;
  twilio: CallPlacer | undefined;
  guard: EndpointGuard;
  sessions: ConsoleSessions;
  feed: ConsoleFeed;
  clock: Clock;
  logger: Logger;
}

const Filters = t.Object({
  scenario: t.Optional(t.String({ maxLength: 64, pattern: "^[a-z0-9-]*$" })),
  outcome: t.Optional(t.String({ maxLength: 64, pattern: "^[a-z0-9_]*$" })),
  direction: t.Optional(t.Union([t.Literal("inbound"), t.Literal("outbound"), t.Literal("")])),
  /** YYYY-MM-DD (UTC), inclusive. */
  from: t.Optional(t.String({ pattern: "^(\\d{4}-\\d{2}-\\d{2})?$" })),
  to: t.Optional(t.String({ pattern: "^(\\d{4}-\\d{2}-\\d{2})?$" })),
  limit: t.Optional(t.Numeric({ minimum: 1, maximum: 200 })),
  offset: t.Optional(t.Numeric({ minimum: 0, maximum: 1_000_000 })),
});
type FilterQuery = typeof Filters.static;

/** A page of the Campaigns view: at most MAX_CAMPAIGN_PAGE. */
const CampaignPage = t.Object({
  ...PageQuery,
  limit: t.Optional(
    t.Integer({
      minimum: 1,
      maximum: MAX_CAMPAIGN_PAGE,
      default: 20,
      error: `query.limit: expected an integer from 1 to ${MAX_CAMPAIGN_PAGE}`,
    }),
  ),
});

/** The moves (`pause`, `resume`, `cancel`) a campaign in `state` may make now. */
const movesFrom = (state: CampaignState) =>
  Object.entries(TRANSITIONS)
    .filter(([, move]) => move.from.includes(state))
    .map(([action]) => action as CampaignMove);

const parseLogin = validator(
  t.Object({ secret: t.String({ maxLength: 512, pattern: PRINTABLE }) }),
  "body",
);

/** The list query of the History view's filters (dates are whole UTC days, `to` included). */
function listQuery(query: FilterQuery, limit: number, offset: number) {
  const nextDay = (date: string) =>
    new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString();
  return {
    ...(query.scenario ? { scenario: query.scenario } : {}),
    ...(query.outcome ? { outcome: query.outcome } : {}),
    ...(query.direction ? { direction: query.direction } : {}),
    ...(query.from ? { from: `${query.from}T00:00:00.000Z` } : {}),
    ...(query.to ? { to: nextDay(query.to) } : {}),
    limit,
    offset,
  };
}

/**
 * One CSV cell: quoted, and a leading =, +, - or @ neutralised so a spreadsheet runs no formula (a
 * phone number, + and digits only, is left as it is: a spreadsheet reads it as a number).
 */
function cell(value: unknown): string {
  let text = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text) && !/^\+\d+$/.test(text)) text = `'${text}`;
  return `"${text.replaceAll('"', '""')}"`;
}

const CSV_COLUMNS = [
  "sid",
  "created_at",
  "direction",
  "scenario",
  "from_number",
  "to_number",
  "status",
  "outcome",
  "outcome_detail",
  "end_reason",
  "answered_at",
  "ended_at",
] as const satisfies readonly (keyof CallRecord)[];

/** The page with this response's nonce on its script and style. */
function withNonce(html: string) {
  const nonce = randomBytes(16).toString("base64");
  return new Response(html.replaceAll("{{nonce}}", nonce), {
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy": `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; media-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    },
  });
}

export function consoleRoutes(deps: ConsoleDeps) {
  const { config, store, guard, sessions, feed } = deps;
  const requireSession = async (request: Request) => {
    if (!(await sessions.valid(request)))
      throw new UnauthorizedError("Sign in to the console first (POST /console/login)");
  };
  /** `POST /console/api/campaigns/:id/<action>`: as `POST /campaigns/{id}/<action>`, for the cookie. */
  const move =
    (action: CampaignMove) =>
    async ({ request, params }: { request: Request; params: { id: string } }) => {
      guard.refuseCrossSite(request);
      await requireSession(request);
      const moved = await moveCampaign(
        store.campaigns,
        params.id,
        action,
        deps.clock.now().toISOString(),
      );
      return { ...moved, actions: movesFrom(moved.state) };
    };
  return new Elysia({ name: "console" })
    .get(
      "/console",
      async ({ request }) => withNonce((await sessions.valid(request)) ? page : signIn),
      { detail: { hide: true } },
    )
    .group("/console", (app) =>
      app
        .use(limitedBody((request) => readJson(request, MAX_BODY_BYTES)))
        .post(
          "/login",
          async ({ body, request, server, set }) => {
            const { secret } = parseLogin(body);
            guard.verifySecret(request, server, secret);
            set.headers["set-cookie"] = await sessions.start();
            set.status = 204;
          },
          { detail: { hide: true } },
        )
        .post(
          "/logout",
          async ({ request, set }) => {
            guard.refuseCrossSite(request);
            set.headers["set-cookie"] = await sessions.end(request);
            set.status = 204;
          },
          { detail: { hide: true } },
        )
        .get(
          "/stream",
          async ({ request, server }) => {
            await requireSession(request);
            // A stream is quiet for long stretches: Bun's idle timeout must not end it.
            server?.timeout(request, 0);
            const since = Number(request.headers.get("last-event-id"));
            const missed =
              Number.isSafeInteger(since) && since > 0
                ? await store.calls.eventsSince(since, CATCH_UP)
                : [];
            let stop = () => {};
            const stream = new ReadableStream<string>({
              start(controller) {
                const send = (message: FeedMessage) =>
                  controller.enqueue(
                    `${message.type === "event" ? `id: ${message.event.id}\n` : ""}event: ${message.type}\ndata: ${JSON.stringify(message)}\n\n`,
                  );
                for (const event of missed) send({ type: "event", event });
                const unsubscribe = feed.subscribe(send);
                // Signed out or expired meanwhile: the stream ends at the next keep-alive.
                const keepAlive = setInterval(async () => {
                  if (!(await sessions.valid(request).catch(() => false))) {
                    end();
                    return;
                  }
                  controller.enqueue(": keep-alive\n\n");
                }, KEEP_ALIVE_MS);
                let stopped = false;
                stop = () => {
                  if (stopped) return;
                  stopped = true;
                  unsubscribe();
                  clearInterval(keepAlive);
                };
                /** Stops and closes, once (the client may have gone already). */
                const end = () => {
                  if (stopped) return;
                  stop();
                  controller.close();
                };
                request.signal.addEventListener("abort", end);
              },
              cancel() {
                stop();
              },
            });
            return new Response(stream, {
              headers: {
                "content-type": "text/event-stream",
                "cache-control": "no-store",
                "x-accel-buffering": "no",
              },
            });
          },
          { detail: { hide: true } },
        )
        .get(
          "/api/calls",
          async ({ request, query }) => {
            await requireSession(request);
            const limit = query.limit ?? 25;
            const offset = query.offset ?? 0;
            return {
              calls: await store.calls.list(listQuery(query, limit, offset)),
              limit,
              offset,
            };
          },
          { query: Filters, detail: { hide: true } },
        )
        .get(
          "/api/calls.csv",
          async ({ request, query }) => {
            await requireSession(request);
            const rows = await store.calls.list(listQuery(query, MAX_EXPORT, 0));
            const lines = [
              CSV_COLUMNS.join(","),
              ...rows.map((row) => CSV_COLUMNS.map((column) => cell(row[column])).join(",")),
            ];
            return new Response(`${lines.join("\r\n")}\r\n`, {
              headers: {
                "content-type": "text/csv; charset=utf-8",
                "content-disposition": 'attachment; filename="calls.csv"',
                "cache-control": "no-store",
              },
            });
          },
          { query: Filters, detail: { hide: true } },
        )
        .get(
          "/api/calls/:sid",
          async ({ request, params }) => {
            await requireSession(request);
            const detail = await callDetail(store, params.sid, config.server.externalUrl);
            if (!detail) throw new NotFoundError(`No call ${params.sid}`);
            return detail;
          },
          { params: CallSidParams, detail: { hide: true } },
        )
        .get(
          "/api/campaigns",
          async ({ request, query }) => {
            await requireSession(request);
            const { limit, offset } = pageOf(query);
            const campaigns = await store.campaigns.list(limit, offset);
            // Each with its leads by state (the list's columns), counted one campaign at a time.
            const counted = [];
            for (const campaign of campaigns)
              counted.push({
                ...campaign,
                leads: (await store.campaigns.summary(campaign.id)).leads,
              });
            return { campaigns: counted, limit, offset };
          },
          { query: CampaignPage, detail: { hide: true } },
        )
        .get(
          "/api/campaigns/:id",
          async ({ request, params }) => {
            await requireSession(request);
            const campaign = await campaignOf(store.campaigns, params.id);
            return {
              ...campaign,
              progress: await store.campaigns.summary(campaign.id),
              actions: movesFrom(campaign.state),
            };
          },
          { params: IdParams, detail: { hide: true } },
        )
        .get(
          "/api/campaigns/:id/leads",
          async ({ request, params, query }) => {
            await requireSession(request);
            const campaign = await campaignOf(store.campaigns, params.id);
            const { limit, offset } = pageOf(query);
            return {
              leads: await store.campaigns.leads(campaign.id, limit, offset),
              limit,
              offset,
            };
          },
          { params: IdParams, query: t.Object(PageQuery), detail: { hide: true } },
        )
        .post("/api/campaigns/:id/pause", move("pause"), {
          params: IdParams,
          detail: { hide: true },
        })
        .post("/api/campaigns/:id/resume", move("resume"), {
          params: IdParams,
          detail: { hide: true },
        })
        .post("/api/campaigns/:id/cancel", move("cancel"), {
          params: IdParams,
          detail: { hide: true },
        })
        .post(
          "/api/make-call",
          async ({ request, body }) => {
            guard.refuseCrossSite(request);
            await requireSession(request);
            return placeOutboundCall(deps, validator(MakeCallRequest, "body")(body));
          },
          { detail: { hide: true } },
        ),
    );
}
