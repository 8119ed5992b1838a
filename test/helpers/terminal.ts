/**
 * Runs a command on a real pseudo-terminal (util-linux `script`, 100×40) so interactive prompts
 * behave as for a person at a keyboard: the test waits for text on the screen and types keys.
 */
import { Conditions } from "../fakes/conditions.ts";

export const KEYS = { enter: "\r", down: "\x1b[B", ctrlC: "\x03", ctrlD: "\x04" } as const;

/** Escape sequences (colours, cursor moves) removed, so tests match the words a person sees. */
function visible(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences start with ESC
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
}

export class Terminal {
  readonly exited: Promise<number>;
  #screen = "";
  /** Where the next `waitFor` starts looking: text is matched once, in order. */
  #seen = 0;
  readonly #conditions = new Conditions("terminal");
  readonly #process: Bun.Subprocess<"pipe", "pipe", "pipe">;

  constructor(command: string[], options: { cwd: string; env: Record<string, string> }) {
    const quoted = command.map((part) => `'${part.replaceAll("'", `'\\''`)}'`).join(" ");
    const child = Bun.spawn(
      [
        "script",
        "--quiet",
        "--return",
        "--flush",
        "--command",
        `stty cols 100 rows 40; exec ${quoted}`,
        "/dev/null",
      ],
      {
        cwd: options.cwd,
        env: { TERM: "xterm-256color", ...options.env },
        stdin: "pipe",
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    this.#process = child;
    this.exited = child.exited;
    (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        this.#screen += visible(decoder.decode(chunk, { stream: true }));
        this.#conditions.changed();
      }
    })();
  }

  /** Everything shown so far, escape sequences removed. */
  get screen(): string {
    return this.#screen;
  }

  /** Resolves once `text` appears after the previous match. */
  async waitFor(text: string, timeoutMs = 10_000): Promise<void> {
    await this.#conditions
      .waitFor(() => this.#screen.includes(text, this.#seen), JSON.stringify(text), timeoutMs)
      .catch((error: Error) => {
        throw new Error(`${error.message}; screen ends with:\n${this.#screen.slice(-600)}`);
      });
    this.#seen = this.#screen.indexOf(text, this.#seen) + text.length;
  }

  type(keys: string): void {
    this.#process.stdin.write(keys);
    this.#process.stdin.flush();
  }

  /** Waits for `prompt`, then types `keys`. */
  async answer(prompt: string, keys: string): Promise<void> {
    await this.waitFor(prompt);
    this.type(keys);
  }

  kill(): void {
    this.#process.kill();
  }
}
