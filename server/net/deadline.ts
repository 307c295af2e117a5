/**
 * One connection's deadline, cheap to move: pushing it later (every chunk of an upgraded
 * connection, every chunk of a response) only writes a number; the single timer behind
 * it is re-armed when it fires early, and moved only when a deadline comes sooner.
 *
 * @module
 */

/** A movable deadline that calls `onExpire` once it passes. */
export class Deadline {
  #at = Infinity;
  #timerAt = Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(
    private readonly onExpire: () => void,
    private readonly now: () => number = performance.now.bind(performance),
  ) {}

  /** Expires `ms` from now (sooner or later than before). */
  set(ms: number): void {
    if (this.#stopped) return;
    this.#at = this.now() + ms;
    if (this.#at < this.#timerAt) this.#schedule(this.#at);
  }

  /** No deadline until the next {@link set}. */
  clear(): void {
    this.#at = Infinity;
  }

  /** Stops for good. */
  stop(): void {
    this.#stopped = true;
    this.#at = Infinity;
    clearTimeout(this.#timer);
  }

  #schedule(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(
      () => this.#fire(),
      Math.max(0, at - this.now()),
    );
  }

  #fire(): void {
    this.#timerAt = Infinity;
    this.#timer = undefined;
    if (this.#stopped || this.#at === Infinity) return;
    if (this.now() >= this.#at) {
      this.#stopped = true;
      this.onExpire();
    } else this.#schedule(this.#at);
  }
}
