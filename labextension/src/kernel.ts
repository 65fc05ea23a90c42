import type { Kernel, KernelMessage } from '@jupyterlab/services';

import { deployCode, parsePipelines, PROBE_CODE } from './helpers';
import { IPipeline, IProgressMessage, PIPELINES_MIME, PROGRESS_MIME } from './models';
import { KernelRestarting, NoAnswer, withKernelRetry } from './retry';

/**
 * Kernel states in which a silent execute is sent: busy queues it behind the running cell. Never while
 * the kernel starts, restarts or reconnects: a request sent into a restart can be lost.
 */
const READY = new Set<string>(['idle', 'busy']);

/** How long to wait for a restarting kernel before giving up on one probe (the next idle asks again). */
const READY_TIMEOUT_MS = 60000;

export function isReady(kernel: Kernel.IKernelConnection): boolean {
  return !kernel.isDisposed && READY.has(kernel.status) && kernel.connectionStatus === 'connected';
}

/**
 * Resolves once ``kernel`` can be sent a request (idle or busy, connected); rejects with
 * KernelRestarting after ``timeoutMs`` or when the connection is disposed.
 */
export function waitReady(kernel: Kernel.IKernelConnection, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  if (isReady(kernel)) {
    return Promise.resolve();
  }
  return new Promise<void>((resolve, reject) => {
    const done = (ok: boolean) => {
      window.clearTimeout(timer);
      kernel.statusChanged.disconnect(check);
      kernel.connectionStatusChanged.disconnect(check);
      kernel.disposed.disconnect(gone);
      ok ? resolve() : reject(new KernelRestarting());
    };
    const check = () => {
      if (isReady(kernel)) {
        done(true);
      } else if (kernel.status === 'dead') {
        done(false);
      }
    };
    const gone = () => done(false);
    const timer = window.setTimeout(() => done(false), timeoutMs);
    kernel.statusChanged.connect(check);
    kernel.connectionStatusChanged.connect(check);
    kernel.disposed.connect(gone);
  });
}

/**
 * Runs ``code`` silently in ``kernel`` and calls ``onData`` with each display-data bundle it publishes
 * (vendor mime bundles arrive on IOPub even for a silent execute). Rejects with the kernel's error text;
 * with ``idleTimeoutMs``, with NoAnswer when the kernel sits idle that long without answering.
 */
async function executeSilently(
  kernel: Kernel.IKernelConnection,
  code: string,
  onData: (data: Record<string, unknown>) => void,
  idleTimeoutMs = 0
): Promise<void> {
  const future = kernel.requestExecute({ code, silent: true, store_history: false, stop_on_error: false });
  let timer = 0;
  const lost = new Promise<never>((_, reject) => {
    if (!idleTimeoutMs) {
      return;
    }
    // A busy kernel is running a cell first, and will answer: only an idle silence means a lost request.
    const check = () => {
      if (kernel.status !== 'idle') {
        timer = window.setTimeout(check, idleTimeoutMs);
      } else {
        future.dispose();
        reject(new NoAnswer());
      }
    };
    timer = window.setTimeout(check, idleTimeoutMs);
  });
  future.onIOPub = (msg: KernelMessage.IIOPubMessage) => {
    const type = msg.header.msg_type;
    if (type === 'display_data' || type === 'update_display_data' || type === 'execute_result') {
      onData((msg.content as KernelMessage.IDisplayDataMsg['content']).data as Record<string, unknown>);
    }
  };
  let reply: KernelMessage.IShellMessage;
  try {
    reply = idleTimeoutMs ? await Promise.race([future.done, lost]) : await future.done;
  } finally {
    window.clearTimeout(timer);
  }
  const content = reply.content as KernelMessage.IExecuteReplyMsg['content'];
  if (content.status === 'error') {
    const ename = (content as KernelMessage.IReplyErrorContent).ename;
    const evalue = (content as KernelMessage.IReplyErrorContent).evalue;
    if (ename === 'ModuleNotFoundError' && evalue.includes('nimbus_jupyter')) {
      throw new Error(
        "nimbus-jupyter is not installed in this notebook's kernel environment: pip install nimbus-jupyter there, then restart the kernel."
      );
    }
    if (ename === 'TypeError' && evalue.includes("unexpected keyword argument 'options'")) {
      throw new Error(
        "This kernel's nimbus-jupyter takes no target options from the sidebar: upgrade it in the kernel's environment, or deploy with the %nimbus_deploy magic."
      );
    }
    throw new Error(`${ename}: ${evalue}`);
  }
  if (content.status === 'aborted') {
    throw new Error('The kernel aborted the request (an earlier cell failed or the kernel was interrupted).');
  }
}

/** Probe attempts in all: the first, and two more after restarts or lost requests. */
export const PROBE_ATTEMPTS = 3;

/**
 * The spaCy pipelines in the kernel's user namespace. Sent only when the kernel can be asked; asked
 * again (bounded) when a restart cancels the request; ``onRetry`` lets the panel say "restarting".
 */
export async function probePipelines(
  kernel: Kernel.IKernelConnection,
  onRetry?: () => void
): Promise<IPipeline[]> {
  return withKernelRetry(
    async () => {
      let pipelines: IPipeline[] | null = null;
      await executeSilently(kernel, PROBE_CODE, data => {
        if (PIPELINES_MIME in data) {
          pipelines = parsePipelines(data[PIPELINES_MIME]);
        }
      }, 5000);
      if (pipelines === null) {
        throw new Error('The kernel did not answer with its pipelines.');
      }
      return pipelines;
    },
    () => waitReady(kernel),
    { attempts: PROBE_ATTEMPTS, onRetry }
  );
}

/** Deploys ``variable`` as ``name`` in the kernel (the magic's code path), reporting each progress message. */
export async function deployInKernel(
  kernel: Kernel.IKernelConnection,
  variable: string,
  name: string,
  target: string,
  options: Record<string, unknown>,
  onProgress: (message: IProgressMessage) => void
): Promise<void> {
  await waitReady(kernel);
  await executeSilently(kernel, deployCode(variable, name, target, options), data => {
    if (PROGRESS_MIME in data) {
      onProgress(data[PROGRESS_MIME] as IProgressMessage);
    }
  });
}
