/** Worker for the concurrent-booking test: opens its own connection to the file and books one slot. */
import { openStore } from "../../src/store/index.ts";

declare const self: Worker;

self.onmessage = (event: MessageEvent<{ path: string; slotId: number; name: string }>) => {
  const store = openStore(event.data.path);
  const result = store.appointments.book({ slot_id: event.data.slotId, name: event.data.name });
  store.close();
  self.postMessage(result.ok ? { ok: true } : result);
};
