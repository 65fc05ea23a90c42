// Kernel requests across restarts: a bounded retry that runs, and a calm state instead of a raw error.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { isTransientKernelError, KernelRestarting, NoAnswer, RESTARTING_NOTE, withKernelRetry } from '../src/retry';

const CANCELED = new Error('Canceled future for execute_request message before replies were done');

test("JupyterLab's restart errors are transient; the kernel's own errors are not", () => {
  assert.equal(isTransientKernelError(CANCELED), true);
  assert.equal(isTransientKernelError(new Error('Kernel is dead')), true);
  assert.equal(isTransientKernelError(new Error('Kernel connection disconnected')), true);
  assert.equal(isTransientKernelError(new NoAnswer()), true);
  assert.equal(isTransientKernelError(new Error("NameError: name 'x' is not defined")), false);
  assert.equal(isTransientKernelError('Canceled future for execute_request message before replies were done'), true);
});

test('a request canceled by a restart is sent again once the kernel is ready, and answers', async () => {
  const events: string[] = [];
  let calls = 0;
  const answer = await withKernelRetry(
    async () => {
      calls++;
      events.push(`ask ${calls}`);
      if (calls === 1) {
        throw CANCELED;
      }
      return ['nlp'];
    },
    async () => void events.push('wait ready'),
    { attempts: 3, onRetry: i => events.push(`retry after ${i}`) }
  );
  assert.deepEqual(answer, ['nlp']);
  assert.deepEqual(events, ['wait ready', 'ask 1', 'retry after 1', 'wait ready', 'ask 2']);
});

test('the retry is bounded, and ends calm: "Kernel restarting…", never the raw JupyterLab error', async () => {
  let calls = 0;
  await assert.rejects(
    withKernelRetry(async () => {
      calls++;
      throw CANCELED;
    }, async () => undefined, { attempts: 3 }),
    (error: unknown) => error instanceof KernelRestarting && (error as Error).message === RESTARTING_NOTE
  );
  assert.equal(calls, 3);
});

test('a kernel that never gets ready within the bound ends calm too', async () => {
  let calls = 0;
  await assert.rejects(
    withKernelRetry(async () => ++calls, async () => {
      throw new KernelRestarting();
    }, { attempts: 2 }),
    KernelRestarting
  );
  assert.equal(calls, 0, 'nothing is sent to a kernel that is not ready');
});

test("the kernel's own error is thrown at once, not retried; a lost request stays a NoAnswer", async () => {
  let calls = 0;
  await assert.rejects(withKernelRetry(async () => {
    calls++;
    throw new Error('ModuleNotFoundError: nimbus_jupyter');
  }, async () => undefined), /ModuleNotFoundError/);
  assert.equal(calls, 1);
  await assert.rejects(withKernelRetry(async () => {
    throw new NoAnswer();
  }, async () => undefined, { attempts: 2 }), NoAnswer);
});
