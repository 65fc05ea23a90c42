/**
 * Asking a kernel something across its restarts. A restart (or Restart Kernel and Run All) cancels
 * every request in flight with JupyterLab's "Canceled future for execute_request message before
 * replies were done"; that is no error of the user's: wait until the kernel can be asked, ask again, a
 * bounded number of times. Pure (the waiting is passed in), so it is unit tested without a kernel.
 */

/** What the panel shows while the kernel restarts (no error, nothing to do). */
export const RESTARTING_NOTE = 'Kernel restarting…';

/** The kernel went away under a request (restart, reconnect) and did not come back in time. */
export class KernelRestarting extends Error {
  constructor(message = RESTARTING_NOTE) {
    super(message);
    this.name = 'KernelRestarting';
  }
}

/** A request that got no answer while the kernel stayed idle: it was lost (e.g. in a restart). */
export class NoAnswer extends Error {
  constructor(message = 'The kernel did not answer.') {
    super(message);
    this.name = 'NoAnswer';
  }
}

const TRANSIENT = [
  /^Canceled future for \S+ message before replies were done/,
  /^Kernel (future |connection )?is disposed/,
  /^Kernel connection disconnected/,
  /^Could not send message/,
  /^Kernel is dead/,
  /^Canceling handling of old message/
];

/** Whether ``error`` is the kernel going away under a request, not an answer from the kernel. */
export function isTransientKernelError(error: unknown): boolean {
  if (error instanceof NoAnswer || error instanceof KernelRestarting) {
    return true;
  }
  const message = error instanceof Error ? error.message : typeof error === 'string' ? error : '';
  return TRANSIENT.some(pattern => pattern.test(message));
}

export interface IRetryOptions {
  /** How many times to ask in all (>= 1). */
  attempts?: number;
  /** Called before each new attempt (the panel shows "Kernel restarting…"). */
  onRetry?: (attempt: number, error: unknown) => void;
}

/**
 * ``attempt()`` once the kernel can be asked (``waitReady``, itself bounded in time), again after each
 * transient failure, at most ``attempts`` times. A transient failure of the last attempt becomes a
 * KernelRestarting (calm) unless it is a NoAnswer; any other failure is thrown as it is, at once.
 */
export async function withKernelRetry<T>(
  attempt: () => Promise<T>,
  waitReady: () => Promise<void>,
  options: IRetryOptions = {}
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 3);
  for (let i = 1; ; i++) {
    try {
      await waitReady();
      return await attempt();
    } catch (error) {
      if (!isTransientKernelError(error)) {
        throw error;
      }
      if (i >= attempts) {
        throw error instanceof NoAnswer || error instanceof KernelRestarting ? error : new KernelRestarting();
      }
      options.onRetry?.(i, error);
    }
  }
}
