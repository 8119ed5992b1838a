/**
 * Coordination across processes and machines, on Redis (Bun's built-in `RedisClient`): every step
 * that reads and then writes shared state is one Lua script, so instances never interleave inside
 * it. Keys, under a prefix:
 * - `token:<key>`: a hash (token, grant, expires) per unused token; `tokens`: a sorted set of the
 *   keys by expiry, which counts the calls about to connect and hands each expired key to one taker;
 * - `holds`: call SID → the instance holding it live; `alive:<instance>`: set while that instance
 *   beats (every `heartbeatMs`, for `aliveMs`): a dead instance's holds stop counting at once and
 *   are removed by the next look;
 * - channel `instance:<id>`: messages for the calls that instance holds.
 * Token expiry is the service's clock (tests move it); key lifetimes in Redis are relative, only
 * to collect leftovers.
 */
import { timingSafeEqual } from "node:crypto";
import { RedisClient } from "bun";
import { ANSWERED_TTL_MS, RINGING_TTL_MS, type StreamGrant } from "../call/stream-tokens.ts";
import type { Clock, Timer } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { CallMessage, Coordination, TokenOptions } from "./coordination.ts";

/** Counts the holds of live instances; removes those of instances no longer alive. */
const COUNT_HOLDS = `
local holds = redis.call('HGETALL', KEYS[1])
local alive, live = {}, 0
for i = 1, #holds, 2 do
  local instance = holds[i + 1]
  if alive[instance] == nil then
    alive[instance] = redis.call('EXISTS', ARGV[1] .. instance) == 1
  end
  if alive[instance] then live = live + 1 else redis.call('HDEL', KEYS[1], holds[i]) end
end
`;

const SCRIPTS = {
  /** KEYS: holds, tokens, token:<key>. ARGV: alive prefix, now, expires, token, grant, limit, key. */
  issue: `${COUNT_HOLDS}
local pending = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[2], '+inf')
if live + pending >= tonumber(ARGV[6]) then return nil end
redis.call('HSET', KEYS[3], 'token', ARGV[4], 'grant', ARGV[5], 'expires', ARGV[3])
redis.call('PEXPIRE', KEYS[3], 86400000)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[7])
return 1`,
  /** KEYS: holds, tokens. ARGV: alive prefix, now. */
  load: `${COUNT_HOLDS}
return live + redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[2], '+inf')`,
  /** KEYS: tokens, token:<from>, token:<to>. ARGV: from, to. */
  rekey: `
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('RENAME', KEYS[2], KEYS[3])
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if expires then redis.call('ZADD', KEYS[1], expires, ARGV[2]) end
return 1`,
  /** KEYS: tokens, token:<sid>. ARGV: sid, latest expiry. */
  answered: `
local expires = tonumber(redis.call('HGET', KEYS[2], 'expires'))
if not expires or expires <= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], 'expires', ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1`,
  /**
   * KEYS: tokens, token:<sid>, holds. ARGV: sid, the token, now, instance, alive prefix. The grant
   * and whether this instance now holds the call, once, if the token is still unexpired.
   */
  redeem: `
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[2] then return nil end
if tonumber(redis.call('HGET', KEYS[2], 'expires')) <= tonumber(ARGV[3]) then return nil end
local grant = redis.call('HGET', KEYS[2], 'grant')
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
local holder = redis.call('HGET', KEYS[3], ARGV[1])
if holder and (holder == ARGV[4] or redis.call('EXISTS', ARGV[5] .. holder) == 1) then
  return {grant, 0}
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
return {grant, 1}`,
  /** KEYS: tokens. ARGV: now, token key prefix. */
  takeExpired: `
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, key in ipairs(expired) do
  redis.call('ZREM', KEYS[1], key)
  redis.call('DEL', ARGV[2] .. key)
end
return expired`,
  /** KEYS: holds. ARGV: sid, instance, alive prefix. */
  hold: `
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if holder and holder ~= ARGV[2] and redis.call('EXISTS', ARGV[3] .. holder) == 1 then return 0 end
if holder == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`,
  /** KEYS: holds. ARGV: sid, instance. */
  release: `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1`,
  /**
   * KEYS: holds. ARGV: instance, alive prefix. Not while it still beats here: one only the
   * database lost sight of is alive, and its calls still count.
   */
  releaseInstance: `
if redis.call('EXISTS', ARGV[2] .. ARGV[1]) == 1 then return 0 end
local holds = redis.call('HGETALL', KEYS[1])
for i = 1, #holds, 2 do
  if holds[i + 1] == ARGV[1] then redis.call('HDEL', KEYS[1], holds[i]) end
end
return 1`,
  /** KEYS: holds. ARGV: sid, alive prefix. */
  holder: `
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if holder and redis.call('EXISTS', ARGV[2] .. holder) == 1 then return holder end
return nil`,
} as const;

/**
 * The stored token and the one presented, compared here in constant time; the scripts then take
 * the token only if it is still that one.
 */
function sameToken(stored: string, presented: string): boolean {
  const [expected, candidate] = [Buffer.from(stored), Buffer.from(presented)];
  return expected.length === candidate.length && timingSafeEqual(expected, candidate);
}

export interface RedisCoordinationOptions {
  /** Prepended to every key and channel, so several services (or tests) can share one Redis. */
  prefix?: string;
  /** Token lifetimes, as `StreamTokens`. */
  ttl?: { ringingMs: number; answeredMs: number };
  /** How often this instance says it is alive, and how long that counts. */
  heartbeatMs?: number;
  aliveMs?: number;
  logger?: Logger;
}

export const REDIS_HEARTBEAT_MS = 5_000;
/** Reconnection attempts before a client would give up: a Redis outage must never end them. */
const RECONNECT_TRIES = 1_000_000_000;
export const REDIS_ALIVE_MS = 20_000;

/**
 * Connects (two connections: commands, and one subscribed to this instance's channel), marks this
 * instance alive and keeps it so until `close`.
 * @example const coordination = await openRedisCoordination("redis://127.0.0.1:6379", id, clock);
 */
export async function openRedisCoordination(
  url: string,
  instance: string,
  clock: Clock,
  options: RedisCoordinationOptions = {},
): Promise<RedisCoordination> {
  // Reconnects as long as it takes (Bun's default gives up after 20 tries, about half a minute);
  // while it cannot, a command fails at once instead of waiting in a queue (a webhook would hang
  // past Twilio's time-out, and the beat would never say Redis is unreachable).
  const client = new RedisClient(url, { maxRetries: RECONNECT_TRIES, enableOfflineQueue: false });
  try {
    await client.connect();
    const subscriber = await client.duplicate();
    const coordination = new RedisCoordination(client, subscriber, instance, clock, options);
    await coordination.start();
    return coordination;
  } catch (error) {
    client.close();
    throw error;
  }
}

export class RedisCoordination implements Coordination {
  readonly kind = "redis";
  readonly #prefix: string;
  readonly #ttl: { ringingMs: number; answeredMs: number };
  readonly #heartbeatMs: number;
  readonly #aliveMs: number;
  #handler: ((message: CallMessage) => void) | undefined;
  /** Calls that ended while Redis could not be told; released with the next beat. */
  readonly #unreleased = new Set<string>();
  /** Each script's SHA1 once Redis has it. */
  readonly #sha: Partial<Record<keyof typeof SCRIPTS, string>> = {};
  #heartbeat: Timer | undefined;
  #closed = false;
  /** Redis answered the last beat (false while it is unreachable). */
  reachable = true;
  /** The connection subscribed to this instance's channel (replaced if Redis forgot it). */
  #subscriber: RedisClient;

  constructor(
    private readonly client: RedisClient,
    subscriber: RedisClient,
    readonly instance: string,
    private readonly clock: Clock,
    private readonly options: RedisCoordinationOptions,
  ) {
    this.#prefix = options.prefix ?? "voice-agent:";
    this.#ttl = options.ttl ?? { ringingMs: RINGING_TTL_MS, answeredMs: ANSWERED_TTL_MS };
    this.#heartbeatMs = options.heartbeatMs ?? REDIS_HEARTBEAT_MS;
    this.#aliveMs = options.aliveMs ?? REDIS_ALIVE_MS;
    this.#subscriber = subscriber;
  }

  /** Subscribes to this instance's channel and starts beating. */
  async start(): Promise<void> {
    await this.#subscribe(this.#subscriber);
    await this.#beat();
    this.#scheduleBeat(this.#heartbeatMs);
  }

  #subscribe(subscriber: RedisClient): Promise<unknown> {
    return subscriber.subscribe(this.#key(`instance:${this.instance}`), (text) => {
      try {
        this.#handler?.(JSON.parse(text) as CallMessage);
      } catch (error) {
        this.options.logger?.error("could not handle a message for a call held here", { error });
      }
    });
  }

  /**
   * After a Redis restart the subscriber reconnects without its subscription, and messages for
   * this instance's calls would be lost: checked on each beat, subscribed again on a new connection.
   */
  async #keepSubscribed(): Promise<void> {
    const [, listeners] = (await this.client.send("PUBSUB", [
      "NUMSUB",
      this.#key(`instance:${this.instance}`),
    ])) as [string, number];
    if (Number(listeners) > 0) return;
    const fresh = await this.client.duplicate();
    await this.#subscribe(fresh);
    const stale = this.#subscriber;
    this.#subscriber = fresh;
    stale.close();
    this.options.logger?.warn("subscribed again to this instance's Redis channel");
  }

  async issueToken(key: string, grant: StreamGrant, options: TokenOptions, limit: number) {
    const now = this.#now();
    const ttlMs =
      (options.answered ? this.#ttl.answeredMs : this.#ttl.ringingMs) + (options.extraMs ?? 0);
    const token = Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64url");
    const issued = await this.#run(
      "issue",
      [this.#key("holds"), this.#key("tokens"), this.#key(`token:${key}`)],
      [
        this.#key("alive:"),
        String(now),
        String(now + ttlMs),
        token,
        JSON.stringify(grant),
        String(Number.isFinite(limit) ? limit : Number.MAX_SAFE_INTEGER),
        key,
      ],
    );
    return issued === null ? undefined : token;
  }

  async rekeyToken(from: string, to: string) {
    await this.#run(
      "rekey",
      [this.#key("tokens"), this.#key(`token:${from}`), this.#key(`token:${to}`)],
      [from, to],
    );
  }

  async tokenAnswered(callSid: string) {
    await this.#run(
      "answered",
      [this.#key("tokens"), this.#key(`token:${callSid}`)],
      [callSid, String(this.#now() + this.#ttl.answeredMs)],
    );
  }

  async revokeToken(key: string) {
    await this.client.del(this.#key(`token:${key}`));
    await this.client.send("ZREM", [this.#key("tokens"), key]);
  }

  async tokenPending(callSid: string) {
    const expires = await this.client.hget(this.#key(`token:${callSid}`), "expires");
    return expires !== null && Number(expires) > this.#now();
  }

  async redeemToken(callSid: string, presented: string | undefined) {
    if (presented === undefined) return undefined;
    const stored = await this.client.hget(this.#key(`token:${callSid}`), "token");
    if (stored === null || !sameToken(stored, presented)) return undefined;
    const redeemed = await this.#run(
      "redeem",
      [this.#key("tokens"), this.#key(`token:${callSid}`), this.#key("holds")],
      [callSid, stored, String(this.#now()), this.instance, this.#key("alive:")],
    );
    if (!Array.isArray(redeemed)) return undefined;
    const [grant, held] = redeemed as [string, number];
    return { grant: JSON.parse(grant) as StreamGrant, held: held === 1 };
  }

  async takeExpiredTokens() {
    const expired = await this.#run(
      "takeExpired",
      [this.#key("tokens")],
      [String(this.#now()), this.#key("token:")],
    );
    return Array.isArray(expired) ? expired.map(String) : [];
  }

  async holdCall(callSid: string) {
    const held = await this.#run(
      "hold",
      [this.#key("holds")],
      [callSid, this.instance, this.#key("alive:")],
    );
    return held === 1;
  }

  async releaseCall(callSid: string) {
    try {
      await this.#run("release", [this.#key("holds")], [callSid, this.instance]);
      this.#unreleased.delete(callSid);
    } catch (error) {
      // Redis unreachable as the call ended: released with the next beat, or its slot would
      // count against the limit for as long as this instance lives.
      this.#unreleased.add(callSid);
      throw error;
    }
  }

  async holder(callSid: string) {
    const holder = await this.#run("holder", [this.#key("holds")], [callSid, this.#key("alive:")]);
    return typeof holder === "string" ? holder : undefined;
  }

  async load() {
    const load = await this.#run(
      "load",
      [this.#key("holds"), this.#key("tokens")],
      [this.#key("alive:"), String(this.#now())],
    );
    return Number(load);
  }

  async releaseInstance(instance: string) {
    await this.#run("releaseInstance", [this.#key("holds")], [instance, this.#key("alive:")]);
  }

  async send(instance: string, message: CallMessage) {
    if (instance === this.instance) {
      this.#handler?.(message);
      return;
    }
    await this.client.publish(this.#key(`instance:${instance}`), JSON.stringify(message));
  }

  onMessage(handler: (message: CallMessage) => void) {
    this.#handler = handler;
  }

  /** Stops beating and lets go of this instance's holds; its calls have ended. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#heartbeat?.cancel();
    try {
      await this.client.del(this.#key(`alive:${this.instance}`));
      await this.releaseInstance(this.instance);
      await this.#subscriber.unsubscribe();
    } finally {
      this.#subscriber.close();
      this.client.close();
    }
  }

  async #beat(): Promise<void> {
    await this.client.send("SET", [
      this.#key(`alive:${this.instance}`),
      "1",
      "PX",
      String(this.#aliveMs),
    ]);
    for (const callSid of [...this.#unreleased]) await this.releaseCall(callSid);
    await this.#keepSubscribed();
  }

  /** The next beat in `ms`; a failed one is retried within a second, logged. */
  #scheduleBeat(ms: number): void {
    if (this.#closed) return;
    this.#heartbeat = this.clock.setTimeout(() => {
      this.#beat().then(
        () => {
          this.reachable = true;
          this.#scheduleBeat(this.#heartbeatMs);
        },
        (error: unknown) => {
          this.reachable = false;
          this.options.logger?.error("could not tell Redis this instance is alive", { error });
          this.#scheduleBeat(Math.min(1_000, this.#heartbeatMs));
        },
      );
    }, ms);
  }

  #key(name: string): string {
    return `${this.#prefix}${name}`;
  }

  #now(): number {
    return this.clock.now().getTime();
  }

  /**
   * Runs a script by its SHA1 (what Redis keeps once loaded: a few bytes a call instead of the
   * script), loading it first when Redis does not know it (a restart, a flushed cache).
   */
  async #run(script: keyof typeof SCRIPTS, keys: string[], args: string[]): Promise<unknown> {
    const params = [String(keys.length), ...keys, ...args];
    this.#sha[script] ??= String(await this.client.send("SCRIPT", ["LOAD", SCRIPTS[script]]));
    try {
      return await this.client.send("EVALSHA", [this.#sha[script], ...params]);
    } catch (error) {
      if (!String((error as Error).message).includes("NOSCRIPT")) throw error;
      this.#sha[script] = String(await this.client.send("SCRIPT", ["LOAD", SCRIPTS[script]]));
      return this.client.send("EVALSHA", [this.#sha[script], ...params]);
    }
  }
}
