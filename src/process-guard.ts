/**
 * The last line of defence of the serving process: an exception or rejected promise that no call
 * contained is logged with its stack, and the process goes on serving every other call instead of
 * exiting (Bun's default, which would drop them all). Calls contain their own faults first; a line
 * from here is a bug to fix.
 */
import type { Logger } from "./log.ts";

export function keepServingOnUncaughtErrors(logger: Logger): void {
  process.on("uncaughtException", (error) => {
    logger.error("uncaught exception; still serving", { error });
  });
  process.on("unhandledRejection", (error) => {
    logger.error("unhandled promise rejection; still serving", { error });
  });
}
