// The sidebar's rules with a scripted server and kernel: answers in order, destroyed stays destroyed, a
// restart is calm, no stale card or error outlives what it is about, requests coalesced.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import type { IDeployment, IDeploymentList, IPipeline, IProgressMessage, IStatus, ITargetList } from '../src/models';
import { LOCAL_ONLY } from '../src/models';
import { NoAnswer } from '../src/retry';
import { IKernelPort, ISidebarApi, NO_ANSWER_NOTE, SidebarStore } from '../src/store';

interface IDeferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): IDeferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function dep(name: string, partial: Partial<IDeployment> = {}): IDeployment {
  return {
    name, target: 'local', status: 'ready', url: `http://127.0.0.1:9/${name}`, version: 1, created: '2026-11-29T22:51:17Z',
    updated: '2026-11-29T22:51:17Z', lang: 'en', components: [], workers: 1, detail: '', ...partial
  };
}

const list = (...deployments: IDeployment[]): IDeploymentList => ({ deployments, home: '/tmp/nimbus' });

/** A server whose every answer the test releases by hand, in any order. */
class ScriptedApi implements ISidebarApi {
  lists: Array<IDeferred<IDeploymentList>> = [];
  statuses: Array<{ name: string; answer: IDeferred<IStatus> }> = [];
  predicts: Array<IDeferred<never>> = [];
  destroyed: string[] = [];
  destroyAnswer: IDeferred<void> | null = null;
  targetsAnswer: () => Promise<ITargetList> = async () => LOCAL_ONLY;

  deployments(): Promise<IDeploymentList> {
    const d = deferred<IDeploymentList>();
    this.lists.push(d);
    return d.promise;
  }
  status(name: string): Promise<IStatus> {
    const answer = deferred<IStatus>();
    this.statuses.push({ name, answer });
    return answer.promise;
  }
  predict(): Promise<never> {
    const d = deferred<never>();
    this.predicts.push(d);
    return d.promise;
  }
  async destroy(name: string): Promise<void> {
    this.destroyed.push(name);
    this.destroyAnswer = deferred<void>();
    return this.destroyAnswer.promise;
  }
  targets(): Promise<ITargetList> {
    return this.targetsAnswer();
  }
}

const tick = () => sleep(5);

function names(store: SidebarStore): string[] {
  return store.snapshot.deployments.map(d => d.name);
}

test('a slow older list never overwrites a newer one (no "dead" flash, no ghost rows)', async () => {
  const api = new ScriptedApi();
  const store = new SidebarStore(api, { debounceMs: 0 });
  void store.requestList(true);
  await tick();
  void store.requestList(true); // asked again while the first is in flight: runs after it
  await tick();
  assert.equal(api.lists.length, 1, 'one list request in flight at a time');
  api.lists[0].resolve(list(dep('a', { status: 'dead' })));
  await tick();
  assert.equal(api.lists.length, 2);
  api.lists[1].resolve(list(dep('a')));
  await tick();
  assert.equal(store.snapshot.deployments[0].status, 'ready');
  store.dispose();
});

test('answers to concurrent lists (two panels of work) apply only if newer than what is shown', async () => {
  const api = new ScriptedApi();
  const store = new SidebarStore(api, { debounceMs: 0 });
  // The deploy finishing makes its own list request; drive two overlapping runs by releasing out of order.
  void store.requestList(true);
  await tick();
  const slow = api.lists[0];
  void store.requestList(true);
  slow.resolve(list(dep('a')));
  await tick();
  api.lists[1].resolve(list(dep('a'), dep('b')));
  await tick();
  assert.deepEqual(names(store), ['a', 'b']);
  store.dispose();
});

test('a destroyed deployment never comes back from a list answered before the destroy', async () => {
  const api = new ScriptedApi();
  const store = new SidebarStore(api, { debounceMs: 0 });
  void store.requestList(true);
  await tick();
  api.lists[0].resolve(list(dep('keep'), dep('gone')));
  await tick();
  store.toggleStatus('gone');
  void store.poll(); // a poll's list is in flight: the server read the registry before the destroy
  await tick();
  const stale = api.lists[1];
  const destroying = store.destroy('gone');
  await tick();
  assert.equal(store.snapshot.rows.gone.destroying, true, 'Destroy shows it is busy');
  api.destroyAnswer!.resolve();
  await tick();
  assert.deepEqual(names(store), ['keep'], 'gone from the panel as soon as the destroy answers');
  assert.equal(store.snapshot.rows.gone, undefined, 'its Status and Test go with it');
  stale.resolve(list(dep('keep'), dep('gone'))); // the slow answer arrives after the destroy
  await tick();
  assert.deepEqual(names(store), ['keep'], 'the stale answer is dropped');
  api.lists[2].resolve(list(dep('keep')));
  await destroying;
  assert.deepEqual(names(store), ['keep']);
  store.dispose();
});

test('a list request per executed cell is coalesced: Run All of 40 cells makes one or two', async () => {
  const api = new ScriptedApi();
  const store = new SidebarStore(api, { debounceMs: 20 });
  for (let i = 0; i < 40; i++) {
    void store.requestList();
    await sleep(1);
  }
  await sleep(150);
  assert.ok(api.lists.length >= 1 && api.lists.length <= 2, `${api.lists.length} list requests`);
  api.lists.forEach(l => l.resolve(list()));
  store.dispose();
});

test('the rows come in a stable order whatever order the server answers in', async () => {
  const api = new ScriptedApi();
  const store = new SidebarStore(api, { debounceMs: 0 });
  void store.requestList(true);
  await tick();
  api.lists[0].resolve(list(dep('zeta'), dep('alpha'), dep('mid')));
  await tick();
  assert.deepEqual(names(store), ['alpha', 'mid', 'zeta']);
  store.dispose();
});

async function withTestError(): Promise<{ api: ScriptedApi; store: SidebarStore }> {
  const api = new ScriptedApi();
  const store = new SidebarStore(api, { debounceMs: 0 });
  void store.requestList(true);
  await tick();
  api.lists[0].resolve(list(dep('r', { status: 'ready', version: 1 })));
  await tick();
  store.toggleTest('r');
  store.setTestText('r', 'Great kettle');
  const running = store.runTest('r');
  await tick();
  assert.equal(store.snapshot.rows.r.test!.busy, true);
  api.predicts[0].reject(new Error("'r' is dead: the server does not answer"));
  await tick();
  return { api, store: Object.assign(store, { running }) };
}

test('a Test error is about the deployment as it was: a redeploy clears it', async () => {
  const { api, store } = await withTestError();
  assert.match(store.snapshot.rows.r.test!.error ?? '', /is dead/);
  assert.equal(api.lists.length, 2, 'a failed test asks for the list again');
  api.lists[1].resolve(list(dep('r', { status: 'dead', detail: 'the server does not answer' })));
  await tick();
  // It is dead now: the error no longer describes it (the row shows the reason, once).
  assert.equal(store.snapshot.rows.r.test!.error, null);
  assert.equal(store.testText('r'), 'Great kettle', 'the typed text stays');
  store.dispose();
});

test('a Test error stays while the deployment is unchanged', async () => {
  const { api, store } = await withTestError();
  api.lists[1].resolve(list(dep('r', { status: 'ready', version: 1 })));
  await tick();
  assert.match(store.snapshot.rows.r.test!.error ?? '', /is dead/);
  void store.poll();
  await tick();
  api.lists[2].resolve(list(dep('r', { status: 'ready', version: 2, updated: '2026-11-30T08:00:00Z' })));
  await tick();
  assert.equal(store.snapshot.rows.r.test!.error, null, 'redeployed (v2): the old error goes');
  store.dispose();
});

test('Status answers are applied in order, one request per deployment at a time', async () => {
  const api = new ScriptedApi();
  const store = new SidebarStore(api, { debounceMs: 0 });
  void store.requestList(true);
  await tick();
  api.lists[0].resolve(list(dep('r')));
  await tick();
  store.toggleStatus('r');
  void store.poll();
  await tick();
  api.lists[1].resolve(list(dep('r')));
  await tick();
  assert.equal(api.statuses.length, 1, 'the poll does not stack a second status request on the first');
  const status = { name: 'r', health: 'ok', checked_at: '2026-11-29T22:51:17Z' } as IStatus;
  api.statuses[0].answer.resolve(status);
  await tick();
  assert.equal(store.snapshot.rows.r.status!.status!.checked_at, '2026-11-29T22:51:17Z');
  store.toggleStatus('r'); // closed: a late answer would not reopen it
  assert.equal(store.snapshot.rows.r.status, null);
  store.dispose();
});

class ScriptedKernel implements IKernelPort {
  probes: Array<IDeferred<IPipeline[]>> = [];
  deploys: Array<{ onProgress: (m: IProgressMessage) => void; done: IDeferred<void>; options: Record<string, unknown> }> = [];
  probe(): Promise<IPipeline[]> {
    const d = deferred<IPipeline[]>();
    this.probes.push(d);
    return d.promise;
  }
  deploy(_v: string, _n: string, _t: string, options: Record<string, unknown>, onProgress: (m: IProgressMessage) => void): Promise<void> {
    const done = deferred<void>();
    this.deploys.push({ onProgress, done, options });
    return done.promise;
  }
}

function message(partial: Partial<IProgressMessage>): IProgressMessage {
  return { kind: 'stage', name: 'n', stages: [], stage: '', state: '', detail: '', seconds: null, done: 0, total: 0, text: '', deployment: null, ...partial };
}

test('a restart under the probe is calm; the probe answers once the kernel is back', async () => {
  const api = new ScriptedApi();
  const store = new SidebarStore(api, { debounceMs: 0 });
  const kernel = new ScriptedKernel();
  store.setKernel('a.ipynb', kernel, 'ready');
  await tick();
  assert.equal(kernel.probes.length, 1);
  store.setPhase('restarting');
  assert.equal(store.snapshot.phase, 'restarting');
  kernel.probes[0].reject(new Error('Canceled future for execute_request message before replies were done'));
  await tick();
  assert.equal(store.snapshot.pipelinesError, null, 'no raw JupyterLab error');
  store.setPhase('ready');
  await tick();
  kernel.probes[1].resolve([{ variable: 'nlp', lang: 'en', components: [], size_bytes: 0 }]);
  await tick();
  assert.deepEqual(store.snapshot.pipelines!.map(p => p.variable), ['nlp']);
  kernel.probes[2]?.resolve([]);
  store.dispose();
});

test("a lost probe says what to do; the kernel's own error is shown as it is", async () => {
  const api = new ScriptedApi();
  const store = new SidebarStore(api, { debounceMs: 0 });
  const kernel = new ScriptedKernel();
  store.setKernel('a.ipynb', kernel, 'ready');
  await tick();
  kernel.probes[0].reject(new NoAnswer());
  await tick();
  assert.equal(store.snapshot.pipelinesError, NO_ANSWER_NOTE);
  void store.requestProbe(true);
  await tick();
  kernel.probes[1].reject(new Error('nimbus-jupyter is not installed in this kernel'));
  await tick();
  assert.equal(store.snapshot.pipelinesError, 'nimbus-jupyter is not installed in this kernel');
  store.dispose();
});

test('probe requests from a Run All are coalesced too', async () => {
  const api = new ScriptedApi();
  const store = new SidebarStore(api, { debounceMs: 20 });
  const kernel = new ScriptedKernel();
  store.setKernel('a.ipynb', kernel, 'ready');
  for (let i = 0; i < 25; i++) {
    void store.requestProbe();
  }
  await sleep(80);
  assert.equal(kernel.probes.length, 1);
  kernel.probes[0].resolve([]);
  await sleep(80);
  assert.ok(kernel.probes.length <= 2, `${kernel.probes.length} probes`);
  kernel.probes.forEach(p => p.resolve([]));
  store.dispose();
});

async function deployed(error: string | null): Promise<{ api: ScriptedApi; store: SidebarStore; kernel: ScriptedKernel }> {
  const api = new ScriptedApi();
  const store = new SidebarStore(api, { debounceMs: 0 });
  const kernel = new ScriptedKernel();
  store.setKernel('a.ipynb', kernel, 'ready');
  await tick();
  kernel.probes[0].resolve([]);
  const running = store.deploy('nlp', 'n', 'local', { workers: 3 });
  await tick();
  assert.deepEqual(kernel.deploys[0].options, { workers: 3 });
  const { onProgress, done } = kernel.deploys[0];
  onProgress(message({ kind: 'start', name: 'n', stages: ['serialize'] }));
  onProgress(error ? message({ kind: 'error', name: 'n', text: error }) : message({ kind: 'done', name: 'n', deployment: dep('n') }));
  done.resolve();
  await tick();
  api.lists[0].resolve(list(dep('n')));
  await running;
  return { api, store, kernel };
}

test('the "Deployed" card goes when its deployment is destroyed', async () => {
  const { api, store } = await deployed(null);
  assert.equal(store.snapshot.progress!.finished, true);
  const destroying = store.destroy('n');
  await tick();
  api.destroyAnswer!.resolve();
  await tick();
  assert.equal(store.snapshot.progress, null);
  api.lists[1].resolve(list());
  await destroying;
  store.dispose();
});

test('the "Deployed" card goes too when the deployment is destroyed elsewhere (a magic)', async () => {
  const { api, store } = await deployed(null);
  void store.requestList(true);
  await tick();
  api.lists[1].resolve(list());
  await tick();
  assert.equal(store.snapshot.progress, null);
  store.dispose();
});

test('a "Deploy failed" card does not survive a kernel restart', async () => {
  const { store } = await deployed('bad things');
  assert.equal(store.snapshot.progress!.error, 'bad things');
  store.setPhase('restarting');
  assert.equal(store.snapshot.progress, null);
  store.dispose();
});

test('a deploy in flight when the kernel restarts leaves no card, and its late messages are dropped', async () => {
  const api = new ScriptedApi();
  const store = new SidebarStore(api, { debounceMs: 0 });
  const kernel = new ScriptedKernel();
  store.setKernel('a.ipynb', kernel, 'ready');
  await tick();
  const running = store.deploy('nlp', 'n', 'local', {});
  await tick();
  assert.equal(store.deploying, true);
  store.setPhase('restarting');
  kernel.deploys[0].onProgress(message({ kind: 'stage', stage: 'serialize', state: 'done' }));
  kernel.deploys[0].done.reject(new Error('Canceled future for execute_request message before replies were done'));
  await tick();
  assert.equal(store.snapshot.progress, null);
  api.lists[0].resolve(list());
  await running;
  store.dispose();
});

test('targets come from GET /nimbus/api/targets; a server without the route (404) means local only', async () => {
  const api = new ScriptedApi();
  const store = new SidebarStore(api);
  const aws: ITargetList = {
    targets: [LOCAL_ONLY.targets[0], { name: 'aws', title: 'AWS Lambda', stages: ['layer'], capabilities: [], options: [] }],
    default: 'local'
  };
  api.targetsAnswer = async () => aws;
  await store.loadTargets();
  assert.deepEqual(store.snapshot.targets.targets.map(t => t.name), ['local', 'aws']);
  api.targetsAnswer = async () => {
    throw Object.assign(new Error('The nimbus_jupyter server extension is not running.'), { status: 404 });
  };
  await store.loadTargets();
  assert.deepEqual(store.snapshot.targets, LOCAL_ONLY);
  assert.equal(store.snapshot.targetsNote, null, 'a 404 is no error: the route is just not there yet');
  api.targetsAnswer = async () => {
    throw Object.assign(new Error('boom'), { status: 500 });
  };
  await store.loadTargets();
  assert.deepEqual(store.snapshot.targets, LOCAL_ONLY);
  assert.match(store.snapshot.targetsNote ?? '', /boom.*only local/);
  store.dispose();
});
