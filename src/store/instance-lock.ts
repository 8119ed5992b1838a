/**
 * One running service per SQLite database: a lock file beside the database names the process that
 * holds it. A second service on the same file refuses to start rather than end the first one's calls
 * as interrupted or answer for calls whose streams the first one expects. A lock left by a process
 * that is gone (a crash, `kill -9`) is taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";

export class DatabaseInUseError extends Error {
  override name = "DatabaseInUseError";
}

/** Lock files this process holds (a lock naming our own pid but not in here is a stale one). */
const held = new Set<string>();

const inUse = (path: string, holder: string) =>
  new DatabaseInUseError(
    `${holder} is using ${path}; run one instance per database (its lock: ${path}.lock)`,
  );

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes the lock of the database at `path` (a no-op for ":memory:").
 * @returns a function that releases it
 * @throws DatabaseInUseError when a live process holds it
 */
export function lockDatabase(path: string): () => void {
  if (path === ":memory:") return () => {};
  const lockPath = `${path}.lock`;
  if (held.has(lockPath)) throw inUse(path, "another service in this process");
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(lockPath, "wx", 0o600);
      writeSync(fd, JSON.stringify({ pid: process.pid, since: new Date().toISOString() }));
      closeSync(fd);
      held.add(lockPath);
      return () => {
        held.delete(lockPath);
        try {
          unlinkSync(lockPath);
        } catch {
          // already gone
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    let holder: number | undefined;
    try {
      holder = Number(JSON.parse(readFileSync(lockPath, "utf8")).pid);
    } catch {
      holder = undefined; // unreadable or half-written: treat as stale
    }
    if (holder !== undefined && alive(holder))
      throw inUse(path, `another voice-agent (pid ${holder})`);
    try {
      unlinkSync(lockPath);
    } catch {
      // another starter removed it first; try again
    }
  }
  throw new DatabaseInUseError(`could not take the lock ${lockPath}`);
}
