/**
 * Ordering and coalescing of the sidebar's requests. Answers can arrive in any order (a list request
 * probes every deployment's health and can take seconds): only the newest answer is shown, and no answer
 * to a request sent before a change the panel made (destroy, deploy) is shown after it. Pure, no DOM.
 */

/** Request generations: each request takes a ticket; an answer is applied only if its ticket is newer. */
export class Generations {
  /** A ticket for a request about to be sent. */
  next(): number {
    return ++this._issued;
  }

  /**
   * Whether the answer to ``ticket`` may be shown: newer than the one shown and sent after the last
   * change. Accepting it makes it the one shown.
   */
  accept(ticket: number): boolean {
    if (ticket <= this._applied || ticket <= this._floor) {
      return false;
    }
    this._applied = ticket;
    return true;
  }

  /** Whether an answer to ``ticket`` would still be accepted (without accepting it). */
  current(ticket: number): boolean {
    return ticket > this._applied && ticket > this._floor;
  }

  /** A change made every request in flight out of date: their answers are dropped. */
  invalidate(): void {
    this._floor = this._issued;
  }

  private _issued = 0;
  private _applied = 0;
  private _floor = 0;
}

/**
 * Coalesces calls to an async ``run``: calls within ``delayMs`` of each other make one run (a debounce,
 * bounded by ``maxWaitMs`` so a stream of calls still runs), at most one run is in flight, and calls made
 * during a run make exactly one more run after it. Every call's promise settles when a run that started
 * after the call has finished.
 */
export class Coalescer {
  constructor(
    private readonly _run: () => Promise<void>,
    private readonly _delayMs: number,
    private readonly _maxWaitMs: number = Math.max(_delayMs * 4, _delayMs)
  ) {}

  /** Asks for a run; ``now`` skips the debounce (a user's click, a poll). */
  request(now = false): Promise<void> {
    const waiter = new Promise<void>(resolve => this._waiters.push(resolve));
    if (this._disposed) {
      this._flushWaiters(this._waiters.splice(0));
      return waiter;
    }
    if (this._running) {
      this._again = true;
      this._againNow = this._againNow || now;
      return waiter;
    }
    this._schedule(now);
    return waiter;
  }

  /** How many runs have started (for tests and diagnostics). */
  get runs(): number {
    return this._runs;
  }

  dispose(): void {
    this._disposed = true;
    clearTimeout(this._timer);
    this._timer = undefined;
    this._flushWaiters(this._waiters.splice(0));
  }

  private _schedule(now: boolean): void {
    const t = Date.now();
    if (this._firstAsk === null) {
      this._firstAsk = t;
    }
    const waited = t - this._firstAsk;
    const delay = now ? 0 : Math.max(0, Math.min(this._delayMs, this._maxWaitMs - waited));
    clearTimeout(this._timer);
    this._timer = setTimeout(() => void this._start(), delay);
  }

  private async _start(): Promise<void> {
    this._timer = undefined;
    this._firstAsk = null;
    const waiters = this._waiters.splice(0);
    this._running = true;
    this._runs++;
    try {
      await this._run();
    } catch {
      // run reports its own errors (in the panel); a failed run still settles its callers
    } finally {
      this._running = false;
      this._flushWaiters(waiters);
      if (this._again && !this._disposed) {
        const now = this._againNow;
        this._again = false;
        this._againNow = false;
        this._schedule(now);
      }
    }
  }

  private _flushWaiters(waiters: Array<() => void>): void {
    for (const resolve of waiters) {
      resolve();
    }
  }

  private _timer: ReturnType<typeof setTimeout> | undefined = undefined;
  private _firstAsk: number | null = null;
  private _running = false;
  private _again = false;
  private _againNow = false;
  private _runs = 0;
  private _disposed = false;
  private _waiters: Array<() => void> = [];
}
