/**
 * The storage port: what the service asks of its database, asynchronously, so that one embedded
 * SQLite file and a shared PostgreSQL server can both answer. Both implementations keep the same
 * schema (the same numbered migrations), the same row shapes (timestamps as ISO 8601 text) and the
 * same guarantees: a slot holds one live booking by constraint, call events are written behind and
 * every read sees what was recorded before it.
 */

import type { NextStep } from "../campaigns/schedule.ts";
import type {
  BookingDetails,
  BookingResult,
  NewBooking,
  NewSlot,
  OpenSlotQuery,
  Slot,
} from "./appointments.ts";
import type {
  CallEvent,
  CallEventInput,
  CallListQuery,
  CallRecord,
  CallUpdate,
  NewCall,
} from "./calls.ts";
import type {
  Campaign,
  CampaignLeadDetail,
  CampaignLeadInput,
  CampaignState,
  CampaignSummary,
  ClaimedAttempt,
  ClaimRequest,
  CreatedCampaign,
  EndedAttempt,
  NewCampaign,
  SweepResult,
} from "./campaigns.ts";
import type { DncEntry, NewDncEntry } from "./dnc.ts";
import type { CallEnding, ClaimOptions, EndingUpdate } from "./endings.ts";
import type { Lead, LeadInput } from "./leads.ts";

export interface LeadStore {
  /**
   * Stores many leads together; one whose phone is already a lead's (or an earlier row's) is not
   * stored again. @returns the stored leads, and the indices of the duplicates
   */
  importMany(inputs: readonly LeadInput[]): Promise<{ stored: Lead[]; duplicates: number[] }>;
  /** Stores a new lead and returns it with its generated id. */
  create(input: LeadInput): Promise<Lead>;
  get(id: string): Promise<Lead | undefined>;
  /** Newest first. */
  list(limit: number, offset?: number): Promise<Lead[]>;
}

export interface AppointmentStore {
  /** Adds slots, skipping any that already exist (same calendar, provider and start). @returns how many were new */
  addSlots(slots: NewSlot[]): Promise<number>;
  slot(id: number): Promise<Slot | undefined>;
  /** Slots with no live booking, earliest first. */
  openSlots(query: OpenSlotQuery): Promise<Slot[]>;
  /** Books a slot; a slot that already has a live booking answers `slot_taken`, never a second booking. */
  book(request: NewBooking): Promise<BookingResult>;
  /** By confirmation code, in any letter case. */
  booking(id: string): Promise<BookingDetails | undefined>;
  /** Live bookings for a phone number, earliest first. */
  bookingsByPhone(phone: string): Promise<BookingDetails[]>;
  /** Live bookings made during one call, earliest first. */
  bookingsByCall(callSid: string): Promise<BookingDetails[]>;
  /** Cancels a live booking, freeing its slot. @returns the cancelled booking, or undefined if none was live */
  cancel(id: string): Promise<BookingDetails | undefined>;
}

export interface CallStore {
  /** This process's instance id, written on every call whose stream it carries. */
  readonly owner: string;
  create(call: NewCall): Promise<CallRecord>;
  /**
   * The call's stream has started in this process: `in-progress`, answered now unless it already
   * was, held by this process. A no-op for a call that has ended.
   */
  started(sid: string): Promise<CallRecord | undefined>;
  /**
   * Ends every open call record, with `reason` on the record and its timeline. `mine`: the records
   * this process holds (it is about to exit); otherwise those held by anyone else.
   * @returns the ended records
   */
  endOpen(reason: string, options: { mine: boolean }): Promise<CallRecord[]>;
  /** Ends one call's record unless it has ended already. @returns the record, if this ended it */
  endIfOpen(sid: string, reason: string, detail: string): Promise<CallRecord | undefined>;
  /** Creates the call unless a row with this SID exists (a webhook may have created it first). */
  ensure(call: NewCall): Promise<CallRecord>;
  get(sid: string): Promise<CallRecord | undefined>;
  /** @returns the updated call, or undefined when no call has this SID */
  update(sid: string, changes: CallUpdate): Promise<CallRecord | undefined>;
  /** Like `update`, written behind: for a live call's own changes, made on its audio path. */
  updateLater(sid: string, changes: CallUpdate): void;
  /** Newest first, optionally only one status. */
  list(query: CallListQuery): Promise<CallRecord[]>;
  /** Adds one entry to the call's timeline, stamped with the clock's time now; written behind. */
  appendEvent(callSid: string, event: CallEventInput): void;
  /** Writes everything held for calls now (a call's end, shutdown). */
  flush(): Promise<void>;
  /** The call's timeline in the order it happened. */
  events(callSid: string): Promise<CallEvent[]>;
  /** Every call's timeline entries after event `after`, in order, at most `limit` (the console). */
  eventsSince(after: number, limit: number): Promise<CallEvent[]>;
  /** The id of the newest timeline entry (0 when there is none). */
  lastEventId(): Promise<number>;
  /**
   * Ends, as `instance_lost`, the live records (in progress) held by another instance whose last
   * heartbeat is older than `silentSince` (or that never beat): it died with its calls.
   * @returns the ended records
   */
  endLost(silentSince: string): Promise<CallRecord[]>;
}

/** Which instances are alive: each beats while it runs, so the others can tell when one died. */
export interface InstanceStore {
  /** This instance is alive now. */
  beat(): Promise<void>;
  /** This instance stops: it holds no calls any more and is not waited for. */
  leave(): Promise<void>;
}

/** The outbox of ended calls (`endings.ts`). */
export interface EndingStore {
  /**
   * Leases to this process up to `limit` endings due by `dueBy` that no other process holds (a
   * lease that ran out is free again). Two processes never get the same row at once.
   */
  claim(options: ClaimOptions): Promise<CallEnding[]>;
  /** What became of an ending this process holds; its lease is freed (a lost lease: nothing). */
  settle(sid: string, changes: EndingUpdate): Promise<void>;
  /** Marks a held ending counted in the metrics. @returns false when it already was, or is not held */
  markCounted(sid: string): Promise<boolean>;
  get(sid: string): Promise<CallEnding | undefined>;
}

/** Console sign-ins (`sessions.ts`): hashes of session cookies and their expiry. */
export interface SessionStore {
  create(hash: string, expiresAt: string, now: string): Promise<void>;
  active(hash: string, now: string): Promise<boolean>;
  end(hash: string): Promise<void>;
}

/** The do-not-call list (`dnc.ts`). */
export interface DncStore {
  /** Adds the numbers not listed yet, together. @returns those added */
  add(entries: readonly NewDncEntry[], at: string): Promise<string[]>;
  remove(number: string): Promise<boolean>;
  get(number: string): Promise<DncEntry | undefined>;
  /** Newest first. */
  list(limit: number, offset: number): Promise<DncEntry[]>;
}

/** Campaigns, their leads and attempts (`campaigns.ts`). */
export interface CampaignStore {
  /**
   * Stores it with the leads whose number no pending or calling lead has yet (here or in another
   * campaign). @returns undefined, storing nothing, when no lead could be added
   */
  create(
    campaign: NewCampaign,
    leads: readonly CampaignLeadInput[],
    now: string,
  ): Promise<CreatedCampaign | undefined>;
  get(id: string): Promise<Campaign | undefined>;
  /** Newest first. */
  list(limit: number, offset: number): Promise<Campaign[]>;
  active(): Promise<Campaign[]>;
  /** Leads with a phone number never called and in no campaign (`"leads":"all_new"`). */
  newLeads(limit: number): Promise<CampaignLeadInput[]>;
  /** Of these leads, those another campaign still has to call (lead id → campaign id). */
  busyLeads(leadIds: readonly string[]): Promise<Map<string, string>>;
  /** From one of `from` to `to` (cancelling cancels the leads not being called). @returns undefined when in none */
  transition(
    id: string,
    from: readonly CampaignState[],
    to: CampaignState,
    now: string,
  ): Promise<Campaign | undefined>;
  /** An active campaign is completed once no lead is pending or being called. */
  completeIfDone(id: string, now: string): Promise<boolean>;
  /** The service pauses an active campaign, saying why (`note`, cleared on resume). */
  suspend(id: string, note: string, now: string): Promise<Campaign | undefined>;
  /**
   * Claims due attempts within the campaign's concurrency and rate and `limit`, atomically across
   * instances; due leads outside their window are put off to its next opening.
   */
  claim(request: ClaimRequest): Promise<ClaimedAttempt[]>;
  /** About to ask Twilio. @returns false when the attempt is not this claim's any more: do not dial */
  requested(attemptId: string, now: string): Promise<boolean>;
  /** Twilio named the attempt's call. */
  placed(attemptId: string, callSid: string, now: string): Promise<void>;
  /** The attempt did not happen (no capacity, shutting down): it does not count, the lead is due. */
  release(attemptId: string, now: string): Promise<void>;
  /** An attempt with no call to wait for (Twilio refused it, or do-not-call), and the lead's next step. */
  finishUnplaced(
    attemptId: string,
    state: "failed" | "skipped",
    error: string,
    next: NextStep,
    now: string,
  ): Promise<void>;
  /** Placed attempts whose call ended before `endedBefore`, not settled yet. */
  ended(limit: number, endedBefore: string): Promise<EndedAttempt[]>;
  /** Settles one ended attempt, once. @returns false when it already was */
  settle(ended: EndedAttempt, next: NextStep, now: string): Promise<boolean>;
  /**
   * Attempts claimed before `before` never asked of Twilio are released; asked before it without a
   * call SID, `unknown`.
   */
  sweepInterrupted(before: string, now: string): Promise<SweepResult>;
  /**
   * The lead of campaign call `callSid` asks to be called back then. @returns the time asked before
   * (put back if this is withdrawn), or undefined when the call is no live campaign call
   */
  requestCallback(
    callSid: string,
    at: string,
    now: string,
  ): Promise<{ previous: string | null } | undefined>;
  /** Takes back the callback time `at` asked on call `callSid`: `previous` comes back, unless another was asked since. */
  withdrawCallback(callSid: string, at: string, previous: string | null): Promise<void>;
  /** The campaign and the lead's zone of a campaign call. */
  ofCall(callSid: string): Promise<{ campaign: Campaign; timezone: string } | undefined>;
  summary(id: string): Promise<CampaignSummary>;
  /** Its leads by lead id, each with its attempts and their calls. */
  leads(id: string, limit: number, offset: number): Promise<CampaignLeadDetail[]>;
}

export interface Storage {
  /** Which engine answers, for `/health` and the logs. */
  readonly engine: "sqlite" | "postgres";
  readonly leads: LeadStore;
  readonly calls: CallStore;
  readonly appointments: AppointmentStore;
  readonly instances: InstanceStore;
  readonly endings: EndingStore;
  readonly sessions: SessionStore;
  readonly dnc: DncStore;
  readonly campaigns: CampaignStore;
  /** Writes what is held and lets go of the database. */
  close(): Promise<void>;
}
