/**
 * The embedded SQLite store seen through the storage port: the same synchronous repositories
 * (`openStore`), each answer handed back as a promise and each error as a rejection, so callers
 * written against the port run unchanged on SQLite and on PostgreSQL.
 */
import type { Store } from "./index.ts";
import type { Storage } from "./port.ts";

/** @example const storage = sqliteStorage(openStore(path, clock)); await storage.calls.get(sid); */
export function sqliteStorage(store: Store): Storage {
  const { leads, calls, appointments, instances, endings, sessions, dnc, campaigns } = store;
  /** Runs a synchronous repository call as the port's asynchronous one. */
  const later = async <T>(work: () => T): Promise<T> => work();
  return {
    engine: "sqlite",
    leads: {
      create: (input) => later(() => leads.create(input)),
      importMany: (inputs) => later(() => leads.importMany(inputs)),
      get: (id) => later(() => leads.get(id)),
      list: (limit, offset) => later(() => leads.list(limit, offset)),
    },
    calls: {
      owner: calls.owner,
      create: (call) => later(() => calls.create(call)),
      started: (sid) => later(() => calls.started(sid)),
      endOpen: (reason, options) => later(() => calls.endOpen(reason, options)),
      endIfOpen: (sid, reason, detail) => later(() => calls.endIfOpen(sid, reason, detail)),
      ensure: (call) => later(() => calls.ensure(call)),
      get: (sid) => later(() => calls.get(sid)),
      update: (sid, changes) => later(() => calls.update(sid, changes)),
      updateLater: (sid, changes) => calls.updateLater(sid, changes),
      list: (query) => later(() => calls.list(query)),
      appendEvent: (sid, event) => calls.appendEvent(sid, event),
      flush: () => later(() => calls.flush()),
      events: (sid) => later(() => calls.events(sid)),
      eventsSince: (after, limit) => later(() => calls.eventsSince(after, limit)),
      lastEventId: () => later(() => calls.lastEventId()),
      endLost: (silentSince) => later(() => calls.endLost(silentSince)),
    },
    appointments: {
      addSlots: (slots) => later(() => appointments.addSlots(slots)),
      slot: (id) => later(() => appointments.slot(id)),
      openSlots: (query) => later(() => appointments.openSlots(query)),
      book: (request) => later(() => appointments.book(request)),
      booking: (id) => later(() => appointments.booking(id)),
      bookingsByPhone: (phone) => later(() => appointments.bookingsByPhone(phone)),
      bookingsByCall: (sid) => later(() => appointments.bookingsByCall(sid)),
      cancel: (id) => later(() => appointments.cancel(id)),
    },
    instances: {
      beat: () => later(() => instances.beat()),
      leave: () => later(() => instances.leave()),
    },
    dnc: {
      add: (entries, at) => later(() => dnc.add(entries, at)),
      remove: (number) => later(() => dnc.remove(number)),
      get: (number) => later(() => dnc.get(number)),
      list: (limit, offset) => later(() => dnc.list(limit, offset)),
    },
    campaigns: {
      create: (campaign, leads, now) => later(() => campaigns.create(campaign, leads, now)),
      get: (id) => later(() => campaigns.get(id)),
      list: (limit, offset) => later(() => campaigns.list(limit, offset)),
      active: () => later(() => campaigns.active()),
      newLeads: (limit) => later(() => campaigns.newLeads(limit)),
      busyLeads: (ids) => later(() => campaigns.busyLeads(ids)),
      transition: (id, from, to, now) => later(() => campaigns.transition(id, from, to, now)),
      completeIfDone: (id, now) => later(() => campaigns.completeIfDone(id, now)),
      suspend: (id, note, now) => later(() => campaigns.suspend(id, note, now)),
      claim: (request) => later(() => campaigns.claim(request)),
      requested: (id, now) => later(() => campaigns.requested(id, now)),
      placed: (id, sid, now) => later(() => campaigns.placed(id, sid, now)),
      release: (id, now) => later(() => campaigns.release(id, now)),
      finishUnplaced: (id, state, error, next, now) =>
        later(() => campaigns.finishUnplaced(id, state, error, next, now)),
      ended: (limit, before) => later(() => campaigns.ended(limit, before)),
      settle: (ended, next, now) => later(() => campaigns.settle(ended, next, now)),
      sweepInterrupted: (before, now) => later(() => campaigns.sweepInterrupted(before, now)),
      requestCallback: (sid, at, now) => later(() => campaigns.requestCallback(sid, at, now)),
      withdrawCallback: (sid, at, previous) =>
        later(() => campaigns.withdrawCallback(sid, at, previous)),
      ofCall: (sid) => later(() => campaigns.ofCall(sid)),
      summary: (id) => later(() => campaigns.summary(id)),
      leads: (id, limit, offset) => later(() => campaigns.leads(id, limit, offset)),
    },
    sessions: {
      create: (hash, expiresAt, now) => later(() => sessions.create(hash, expiresAt, now)),
      active: (hash, now) => later(() => sessions.active(hash, now)),
      end: (hash) => later(() => sessions.end(hash)),
    },
    endings: {
      claim: (options) => later(() => endings.claim(options)),
      settle: (sid, changes) => later(() => endings.settle(sid, changes)),
      markCounted: (sid) => later(() => endings.markCounted(sid)),
      get: (sid) => later(() => endings.get(sid)),
    },
    close: () => later(() => store.close()),
  };
}
