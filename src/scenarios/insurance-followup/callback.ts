/**
 * `schedule_callback`: on a campaign's call, the lead asks to be called at another time ("call me
 * tomorrow after 3"). The agent gives that time as the lead's local date and time; it is turned
 * into an instant in the lead's zone (daylight saving included), moved to the campaign's next
 * calling hour if it falls outside them, and kept on the lead's place in the campaign: when this
 * call ends, the dialer's next attempt is at that time. Offered only on campaign calls (a single
 * `/make-call` has no one to place the callback), declared `defer_until_eot`, so a speculative
 * call is never acted on; one the agent withdraws after it ran is taken back.
 */
import { Type } from "@sinclair/typebox";
import { type CallingWindow, minutesOf, nextOpening } from "../../campaigns/schedule.ts";
import type { Clock } from "../../clock.ts";
import type { Storage } from "../../store/port.ts";
import { spokenTime, zonedToUtc } from "../shared/time.ts";
import { defineTool } from "../types.ts";

/** A callback is at least this far ahead (the call must end and the dialer come round). */
const MIN_AHEAD_MS = 10 * 60_000;
/** …and at most this far. */
const MAX_AHEAD_DAYS = 30;

export interface CampaignCall {
  /** The lead's zone, where the window and the asked time are local. */
  timeZone: string;
  window: CallingWindow;
}

export function scheduleCallbackTool(
  campaign: CampaignCall,
  store: Pick<Storage, "campaigns">,
  clock: Clock,
) {
  const { timeZone, window } = campaign;
  return defineTool({
    name: "schedule_callback",
    deferUntilEndOfTurn: true,
    description: `When the lead asks to be called back at another time, schedule it: their local date and time (${timeZone}). Read the time back to them first. Then record disposition callback_requested with update_lead.`,
    parameters: Type.Object({
      date: Type.String({
        pattern: "^\\d{4}-\\d{2}-\\d{2}$",
        description: "YYYY-MM-DD, the lead's local date",
      }),
      time: Type.String({
        pattern: "^(?:[01]\\d|2[0-3]):[0-5]\\d$",
        description: "HH:MM, 24-hour, the lead's local time",
      }),
    }),
    run: async ({ date, time }, context) => {
      const now = clock.now();
      if (new Date(`${date}T12:00:00Z`).toISOString().slice(0, 10) !== date)
        return "Nothing was scheduled: that date does not exist. Ask again.";
      const asked = zonedToUtc(date, minutesOf(time), timeZone);
      if (asked.getTime() < now.getTime() + MIN_AHEAD_MS)
        return "Nothing was scheduled: that time has passed or is too soon. Ask for a later time.";
      if (asked.getTime() > now.getTime() + MAX_AHEAD_DAYS * 86_400_000)
        return `Nothing was scheduled: that is more than ${MAX_AHEAD_DAYS} days away. Ask for a sooner time.`;
      const at = nextOpening(asked, window, timeZone);
      if (!at) return "Nothing was scheduled: there are no calling hours to call back in.";
      const stored = await store.campaigns.requestCallback(
        context.callSid,
        at.toISOString(),
        now.toISOString(),
      );
      if (!stored)
        return "Nothing was scheduled: this call is not part of a campaign. Record callback_requested with update_lead; the team will call back.";
      // Withdrawn: the time asked before (if any) comes back.
      context.onWithdraw(() =>
        store.campaigns.withdrawCallback(context.callSid, at.toISOString(), stored.previous),
      );
      const moved = at.getTime() !== asked.getTime();
      return {
        scheduled: true,
        time: spokenTime(at, timeZone),
        ...(moved
          ? {
              note: "That time is outside our calling hours: this is the earliest we can call. Tell them, and ask if it suits.",
            }
          : {}),
      };
    },
  });
}
