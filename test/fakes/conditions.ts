/** Waiting for a fake's state to reach a condition, re-checked whenever the fake says something changed. */

export class Conditions {
  readonly #waiters = new Set<() => void>();

  constructor(private readonly owner: string) {}

  /** True while someone waits for a condition. */
  get waiting(): boolean {
    return this.#waiters.size > 0;
  }

  /** Re-checks every pending condition; the fake calls it after each change of state. */
  changed(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** Resolves once `condition` holds; rejects after `timeoutMs` naming `what`. */
  async waitFor(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (condition()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`${this.owner}: timed out waiting for ${what}`));
      }, timeoutMs);
      const check = () => {
        if (!condition()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
  }
}
