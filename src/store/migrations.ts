/**
 * The database schema as an ordered list of versioned migrations, and the runner that applies the
 * pending ones at start-up, each in its own transaction. Never edit a released migration: add one.
 */
import type { Database } from "bun:sqlite";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: "leads, calls, call events, slots and bookings",
    sql: `
      CREATE TABLE leads (
        id                 TEXT PRIMARY KEY,
        first_name         TEXT NOT NULL,
        last_name          TEXT NOT NULL,
        phone              TEXT,
        email              TEXT,
        property_address   TEXT,
        property_type      TEXT,
        year_built         INTEGER,
        square_footage     INTEGER,
        insurance_status   TEXT,
        coverage_start     TEXT,
        quote_submitted_at TEXT,
        source             TEXT,
        created_at         TEXT NOT NULL,
        updated_at         TEXT NOT NULL
      ) STRICT;

      CREATE TABLE calls (
        sid            TEXT PRIMARY KEY,
        direction      TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
        from_number    TEXT NOT NULL,
        to_number      TEXT NOT NULL,
        scenario       TEXT NOT NULL,
        lead_id        TEXT REFERENCES leads (id),
        status         TEXT NOT NULL,
        answered_by    TEXT,
        outcome        TEXT,
        outcome_detail TEXT,
        end_reason     TEXT,
        created_at     TEXT NOT NULL,
        answered_at    TEXT,
        ended_at       TEXT
      ) STRICT;
      CREATE INDEX calls_by_created ON calls (created_at DESC, sid);
      CREATE INDEX calls_by_status ON calls (status, created_at DESC);

      CREATE TABLE call_events (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        call_sid TEXT NOT NULL REFERENCES calls (sid),
        at       TEXT NOT NULL,
        kind     TEXT NOT NULL,
        data     TEXT NOT NULL CHECK (json_valid(data))
      ) STRICT;
      CREATE INDEX call_events_by_call ON call_events (call_sid, id);
      CREATE TRIGGER call_events_no_update BEFORE UPDATE ON call_events
        BEGIN SELECT RAISE(ABORT, 'call_events is append-only'); END;
      CREATE TRIGGER call_events_no_delete BEFORE DELETE ON call_events
        BEGIN SELECT RAISE(ABORT, 'call_events is append-only'); END;

      CREATE TABLE slots (
        id        INTEGER PRIMARY KEY,
        calendar  TEXT NOT NULL,
        provider  TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        ends_at   TEXT NOT NULL CHECK (ends_at > starts_at),
        UNIQUE (calendar, provider, starts_at)
      ) STRICT;
      CREATE INDEX slots_by_time ON slots (calendar, starts_at);

      CREATE TABLE bookings (
        id           TEXT PRIMARY KEY,
        slot_id      INTEGER NOT NULL REFERENCES slots (id),
        status       TEXT NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled')),
        name         TEXT NOT NULL,
        phone        TEXT,
        reason       TEXT,
        lead_id      TEXT REFERENCES leads (id),
        call_sid     TEXT REFERENCES calls (sid),
        created_at   TEXT NOT NULL,
        cancelled_at TEXT
      ) STRICT;
      -- A slot holds at most one live booking: this index is what makes double booking impossible.
      CREATE UNIQUE INDEX bookings_one_live_per_slot ON bookings (slot_id) WHERE status = 'booked';
      CREATE INDEX bookings_by_phone ON bookings (phone);
    `,
  },
  {
    version: 2,
    name: "the process that holds each call",
    sql: `
      ALTER TABLE calls ADD COLUMN owner TEXT;
      CREATE INDEX calls_open_by_owner ON calls (owner) WHERE ended_at IS NULL;
    `,
  },
  {
    version: 3,
    name: "Deepgram's request id of the call's agent session",
    sql: "ALTER TABLE calls ADD COLUMN agent_request_id TEXT;",
  },
  {
    version: 4,
    name: "what became of the caller's audio frames (JSON)",
    sql: "ALTER TABLE calls ADD COLUMN caller_audio TEXT;",
  },
  {
    version: 5,
    name: "instances that hold calls, and when each was last alive",
    sql: `
      CREATE TABLE instances (
        id           TEXT PRIMARY KEY,
        started_at   TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 6,
    name: "a message the caller left for a person (JSON)",
    sql: "ALTER TABLE calls ADD COLUMN message TEXT;",
  },
  {
    version: 7,
    name: "the caller's transfer to a person (JSON)",
    sql: "ALTER TABLE calls ADD COLUMN transfer TEXT;",
  },
  {
    version: 8,
    name: "the call's recording (JSON)",
    sql: "ALTER TABLE calls ADD COLUMN recording TEXT;",
  },
  {
    version: 9,
    name: "each ended call, counted once and delivered to the events webhook (an outbox)",
    sql: `
      CREATE TABLE call_endings (
        call_sid        TEXT PRIMARY KEY REFERENCES calls (sid),
        ended_at        TEXT NOT NULL,
        counted         INTEGER NOT NULL DEFAULT 0,
        state           TEXT NOT NULL DEFAULT 'new'
                          CHECK (state IN ('new', 'pending', 'delivered', 'failed', 'none')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        lease_owner     TEXT,
        lease_until     TEXT,
        last_status     INTEGER,
        last_error      TEXT,
        delivered_at    TEXT
      ) STRICT;
      CREATE INDEX call_endings_due ON call_endings (next_attempt_at) WHERE state IN ('new', 'pending');
      -- Every way a record ends (the session, a webhook, a shutdown, a dead instance) passes here.
      CREATE TRIGGER calls_ended AFTER UPDATE OF ended_at ON calls
        WHEN OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL
        BEGIN
          INSERT OR IGNORE INTO call_endings (call_sid, ended_at, next_attempt_at)
          VALUES (NEW.sid, NEW.ended_at, NEW.ended_at);
        END;
    `,
  },
  {
    version: 10,
    name: "console sign-ins (the SHA-256 of each session cookie, and when it expires)",
    sql: `
      CREATE TABLE console_sessions (
        token_hash TEXT PRIMARY KEY,
        expires_at TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 11,
    name: "the do-not-call list",
    sql: `
      CREATE TABLE dnc (
        number   TEXT PRIMARY KEY,
        reason   TEXT,
        source   TEXT NOT NULL CHECK (source IN ('api', 'agent')),
        added_at TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 12,
    name: "a lead's own time zone, and leads found by phone (imports)",
    sql: `
      ALTER TABLE leads ADD COLUMN timezone TEXT;
      CREATE INDEX leads_by_phone ON leads (phone);
    `,
  },
  {
    version: 13,
    name: "campaigns, their leads and each attempt (claimed before it is dialled)",
    sql: `
      CREATE TABLE campaigns (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        scenario    TEXT NOT NULL,
        from_number TEXT NOT NULL,
        timezone    TEXT NOT NULL,
        settings    TEXT NOT NULL CHECK (json_valid(settings)),
        state       TEXT NOT NULL CHECK (state IN ('active', 'paused', 'cancelled', 'completed')),
        -- Why the service paused it (Twilio refused the account's calls), until it is resumed.
        note        TEXT,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
      ) STRICT;
      CREATE INDEX campaigns_by_created ON campaigns (created_at DESC, id);

      CREATE TABLE campaign_leads (
        campaign_id     TEXT NOT NULL REFERENCES campaigns (id),
        lead_id         TEXT NOT NULL REFERENCES leads (id),
        phone           TEXT NOT NULL,
        timezone        TEXT NOT NULL,
        state           TEXT NOT NULL
                          CHECK (state IN ('pending', 'calling', 'done', 'unknown', 'cancelled')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        callback_at     TEXT,
        last_outcome    TEXT,
        result          TEXT,
        updated_at      TEXT NOT NULL,
        PRIMARY KEY (campaign_id, lead_id)
      ) STRICT;
      CREATE INDEX campaign_leads_due ON campaign_leads (campaign_id, next_attempt_at)
        WHERE state = 'pending';
      CREATE INDEX campaign_leads_by_lead ON campaign_leads (lead_id);
      -- A number is called by one campaign lead at a time: never rung twice at once.
      CREATE UNIQUE INDEX campaign_leads_one_live_per_phone ON campaign_leads (phone)
        WHERE state IN ('pending', 'calling');

      CREATE TABLE campaign_attempts (
        id          TEXT PRIMARY KEY,
        campaign_id TEXT NOT NULL,
        lead_id     TEXT NOT NULL,
        number      INTEGER NOT NULL,
        state       TEXT NOT NULL
                      CHECK (state IN ('dialling', 'placed', 'ended', 'failed', 'skipped', 'unknown')),
        instance    TEXT NOT NULL,
        claimed_at  TEXT NOT NULL,
        -- Set just before Twilio is asked: an attempt without it never reached Twilio.
        requested_at TEXT,
        call_sid    TEXT UNIQUE REFERENCES calls (sid),
        placed_at   TEXT,
        outcome     TEXT,
        ended_at    TEXT,
        error       TEXT,
        FOREIGN KEY (campaign_id, lead_id) REFERENCES campaign_leads (campaign_id, lead_id),
        -- Two claims of the same attempt cannot both be stored.
        UNIQUE (campaign_id, lead_id, number)
      ) STRICT;
      CREATE INDEX campaign_attempts_recent ON campaign_attempts (campaign_id, claimed_at);
      -- Attempts in flight (a claim's count) and placed ones (the round's settle), by state.
      CREATE INDEX campaign_attempts_by_state ON campaign_attempts (state, campaign_id);
      -- "Leads never called" (a campaign over all_new leads) asks calls by lead.
      CREATE INDEX calls_by_lead ON calls (lead_id);
    `,
  },
];

/** Thrown when the database was written by a newer binary or the migration list is malformed. */
export class MigrationError extends Error {
  override name = "MigrationError";
}

/**
 * Applies every migration newer than the database's version, in order; a no-op when up to date.
 * @returns the versions applied by this call
 */
export function migrate(db: Database, list: Migration[] = migrations): number[] {
  list.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new MigrationError(`migration #${index + 1} has version ${migration.version}`);
    }
  });
  db.run(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`);
  const current =
    db
      .query<{ version: number | null }, []>(
        "SELECT max(version) AS version FROM schema_migrations",
      )
      .get()?.version ?? 0;
  if (current > list.length) {
    throw new MigrationError(
      `database schema version ${current} is newer than this binary knows (${list.length}); upgrade the binary`,
    );
  }
  const isApplied = db.prepare<{ version: number }, [number]>(
    "SELECT version FROM schema_migrations WHERE version = ?",
  );
  const record = db.prepare(
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
  );
  const applied: number[] = [];
  for (const migration of list.slice(current)) {
    // Re-checked inside the write lock, so two processes starting together apply each migration once.
    db.transaction(() => {
      if (isApplied.get(migration.version)) return;
      db.run(migration.sql);
      record.run(migration.version, migration.name, new Date().toISOString());
      applied.push(migration.version);
    }).immediate();
  }
  return applied;
}
