import type { Kernel, KernelMessage } from '@jupyterlab/services';

import { deployCode, parsePipelines, PROBE_CODE } from './helpers';
import { IPipeline, IProgressMessage, PIPELINES_MIME, PROGRESS_MIME } from './models';

/**
 * Runs ``code`` silently in ``kernel`` and calls ``onData`` with each display-data bundle it publishes
 * (vendor mime bundles arrive on IOPub even for a silent execute). Rejects with the kernel's error text.
 */
/** The kernel did not answer in time while it was idle: the request was lost (e.g. in a restart). */
export class NoAnswer extends Error {}

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
      if (kernel.status === 'busy' || kernel.status === 'starting' || kernel.status === 'restarting') {
        timer = window.setTimeout(check, idleTimeoutMs);
      } else {
        future.dispose();
        reject(new NoAnswer('The kernel did not answer.'));
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
    throw new Error(`${ename}: ${evalue}`);
  }
  if (content.status === 'aborted') {
    throw new Error('The kernel aborted the request (an earlier cell failed or the kernel was interrupted).');
  }
}

/** The spaCy pipelines in the kernel's user namespace. */
export async function probePipelines(kernel: Kernel.IKernelConnection): Promise<IPipeline[]> {
  let pipelines: IPipeline[] | null = null;
  const onData = (data: Record<string, unknown>) => {
    if (PIPELINES_MIME in data) {
      pipelines = parsePipelines(data[PIPELINES_MIME]);
    }
  };
  // A request sent while the kernel restarts or reconnects can be lost: ask again, a few times.
  for (let attempt = 1; ; attempt++) {
    try {
      await executeSilently(kernel, PROBE_CODE, onData, 5000);
      break;
    } catch (error) {
      if (!(error instanceof NoAnswer) || attempt >= 3) {
        throw error instanceof NoAnswer
          ? new Error('The kernel did not answer when asked for its pipelines: click ↻ to ask again.')
          : error;
      }
    }
  }
  if (pipelines === null) {
    throw new Error('The kernel did not answer with its pipelines.');
  }
  return pipelines;
}

/** Deploys ``variable`` as ``name`` in the kernel (the magic's code path), reporting each progress message. */
export async function deployInKernel(
  kernel: Kernel.IKernelConnection,
  variable: string,
  name: string,
  target: string,
  onProgress: (message: IProgressMessage) => void
): Promise<void> {
  await executeSilently(kernel, deployCode(variable, name, target), data => {
    if (PROGRESS_MIME in data) {
      onProgress(data[PROGRESS_MIME] as IProgressMessage);
    }
  });
}
