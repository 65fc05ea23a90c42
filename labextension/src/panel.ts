import { Clipboard, Dialog, showDialog } from '@jupyterlab/apputils';
import type { NotebookPanel } from '@jupyterlab/notebook';
import type { Kernel } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import {
  applyProgress,
  errorText,
  formatBytes,
  formatCreated,
  fractionDone,
  IDeployProgress,
  nameProblem,
  newProgress,
  statusLines,
  suggestName,
  summarizeResult
} from './helpers';
import { deployInKernel, probePipelines } from './kernel';
import type { IDeployment, IDeploymentList, IPipeline, IPredictResponse, IStatus } from './models';
import { requestAPI } from './request';

const TARGETS = ['local'];
const POLL_MS = 15000;
/** Kernel states in which a silent execute is safe to send (busy: it queues behind the running cell). */
const READY = new Set<string>(['idle', 'busy']);

type El = HTMLElement;

function h(tag: string, attrs: Record<string, string> = {}, ...children: Array<El | string | null>): El {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') {
      el.className = value;
    } else {
      el.setAttribute(key, value);
    }
  }
  for (const child of children) {
    if (child !== null) {
      el.append(child);
    }
  }
  return el;
}

function button(label: string, onClick: () => void, cls = '', title = ''): HTMLButtonElement {
  const b = h('button', { class: `jp-Button jp-mod-styled ${cls}`, title }, label) as HTMLButtonElement;
  b.addEventListener('click', onClick);
  return b;
}

/** An open Status detail of a deployment row: the last report fetched, or why there is none. */
interface IStatusState {
  status: IStatus | null;
  error: string | null;
  busy: boolean;
}

interface ITestState {
  text: string;
  busy: boolean;
  result: IPredictResponse | null;
  error: string | null;
}

/**
 * The Nimbus sidebar: the active notebook kernel's spaCy pipelines (deploy), and every deployment in the
 * registry (test, copy URL, destroy). It renders; the kernel and the server extension do the work.
 */
export class NimbusPanel extends Widget {
  constructor() {
    super();
    this.id = 'nimbus-sidebar';
    this.addClass('jp-NimbusPanel');
    this.title.caption = 'Nimbus: pipelines and deployments';
    this._pipelinesEl = h('div', { class: 'jp-NimbusPanel-pipelines', 'data-nimbus': 'pipelines' });
    this._progressEl = h('div', { class: 'jp-NimbusPanel-progress', 'data-nimbus': 'progress' });
    this._deploymentsEl = h('div', { class: 'jp-NimbusPanel-deployments', 'data-nimbus': 'deployments' });
    const refresh = button('↻', () => void this.refresh(), 'jp-NimbusPanel-refresh', 'Refresh pipelines and deployments');
    this.node.append(
      h('header', { class: 'jp-NimbusPanel-header' }, h('h2', {}, 'Nimbus'), refresh),
      h('h3', {}, 'Pipelines'),
      this._pipelinesEl,
      this._progressEl,
      h('h3', {}, 'Deployments'),
      this._deploymentsEl
    );
    this._renderPipelines();
    this._renderDeployments();
  }

  /** Follow this notebook (or none). */
  setNotebook(notebook: NotebookPanel | null): void {
    if (notebook === this._notebook) {
      return;
    }
    if (this._notebook) {
      this._notebook.sessionContext.statusChanged.disconnect(this._onKernelStatus, this);
      this._notebook.sessionContext.kernelChanged.disconnect(this._onKernelChanged, this);
    }
    this._notebook = notebook;
    this._pipelines = null;
    this._openDeploy = null;
    if (notebook) {
      notebook.sessionContext.statusChanged.connect(this._onKernelStatus, this);
      notebook.sessionContext.kernelChanged.connect(this._onKernelChanged, this);
    }
    void this.refreshPipelines();
  }

  get notebook(): NotebookPanel | null {
    return this._notebook;
  }

  async refresh(): Promise<void> {
    await Promise.all([this.refreshPipelines(), this.refreshDeployments()]);
  }

  async refreshPipelines(): Promise<void> {
    const kernel = this._kernel();
    this._pipelinesError = null;
    if (!kernel) {
      this._pipelines = null;
      this._renderPipelines();
      return;
    }
    if (!READY.has(kernel.status) || kernel.connectionStatus !== 'connected') {
      // Sending during a (re)start or reconnect can stall JupyterLab's restart: ask once it is idle.
      this._probeWhenIdle = true;
      this._renderPipelines();
      return;
    }
    const ticket = ++this._probeTicket;
    this._probing = true;
    this._renderPipelines();
    try {
      const spec = await kernel.spec;
      if (spec && spec.language && spec.language.toLowerCase() !== 'python') {
        throw new Error(`This notebook's kernel runs ${spec.language}: Nimbus lists and deploys spaCy pipelines from Python kernels.`);
      }
      const pipelines = await probePipelines(kernel);
      if (ticket === this._probeTicket) {
        this._pipelines = pipelines;
      }
    } catch (error) {
      if (ticket === this._probeTicket) {
        this._pipelines = null;
        this._pipelinesError = errorText(error);
      }
    } finally {
      if (ticket === this._probeTicket) {
        this._probing = false;
        this._renderPipelines();
      }
    }
  }

  async refreshDeployments(): Promise<void> {
    try {
      const list = await requestAPI<IDeploymentList>('deployments');
      const changed = JSON.stringify(list.deployments) !== JSON.stringify(this._deployments) || this._deploymentsError;
      this._deployments = list.deployments;
      this._deploymentsError = null;
      if (changed) {
        this._renderDeployments();
      }
      for (const name of this._statuses.keys()) {
        void this._loadStatus(name); // open details follow the poll: traffic and health change
      }
    } catch (error) {
      this._deploymentsError = errorText(error);
      this._renderDeployments();
    }
  }

  protected onAfterAttach(): void {
    void this.refreshDeployments();
    this._poll = window.setInterval(() => {
      if (this.isVisible) {
        void this.refreshDeployments();
      }
    }, POLL_MS);
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this._poll);
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  // -- kernel ------------------------------------------------------------------------------------
  private _kernel(): Kernel.IKernelConnection | null {
    return this._notebook?.sessionContext.session?.kernel ?? null;
  }

  private _onKernelChanged(): void {
    this._pipelines = null;
    void this.refreshPipelines();
  }

  private _onKernelStatus(_: unknown, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      this._pipelines = null;
      this._probeWhenIdle = true;
      this._renderPipelines();
    } else if (status === 'idle' && this._probeWhenIdle) {
      this._probeWhenIdle = false;
      void this.refreshPipelines();
    }
  }

  // -- pipelines ---------------------------------------------------------------------------------
  private _renderPipelines(): void {
    const el = this._pipelinesEl;
    el.replaceChildren();
    const note = (text: string, cls = 'jp-NimbusPanel-note') => el.append(h('p', { class: cls, 'data-nimbus': 'pipelines-note' }, text));
    if (!this._notebook) {
      note('No notebook is open: open one (or click into it) to see the spaCy pipelines in its kernel.');
      return;
    }
    const where = h('p', { class: 'jp-NimbusPanel-where' }, 'In ', h('b', {}, this._notebook.title.label), "'s kernel");
    el.append(where);
    if (!this._kernel()) {
      note('This notebook has no kernel running: start one to see its pipelines.');
      return;
    }
    if (this._pipelinesError) {
      note(this._pipelinesError, 'jp-NimbusPanel-error');
      return;
    }
    if (this._pipelines === null) {
      note(this._probing ? 'Asking the kernel…' : 'Waiting for the kernel…');
      return;
    }
    if (!this._pipelines.length) {
      note('No spaCy pipelines in this kernel yet: run a cell that makes one, e.g. nlp = spacy.load("en_core_web_sm").');
      return;
    }
    for (const p of this._pipelines) {
      el.append(this._pipelineRow(p));
    }
  }

  private _pipelineRow(p: IPipeline): El {
    const row = h('div', { class: 'jp-NimbusPanel-card', 'data-nimbus-pipeline': p.variable });
    const meta = h('div', { class: 'jp-NimbusPanel-meta' },
      `${p.lang} · ${p.components.join(', ') || 'no components'} · ${formatBytes(p.size_bytes)}`);
    const deploying = this._progress !== null && !this._progress.finished;
    const toggle = button('Deploy…', () => {
      this._openDeploy = this._openDeploy === p.variable ? null : p.variable;
      this._renderPipelines();
    }, 'jp-NimbusPanel-primary');
    toggle.disabled = deploying;
    row.append(h('div', { class: 'jp-NimbusPanel-row' }, h('code', { class: 'jp-NimbusPanel-name' }, p.variable), toggle), meta);
    if (this._openDeploy === p.variable) {
      row.append(this._deployForm(p));
    }
    return row;
  }

  private _deployForm(p: IPipeline): El {
    const name = h('input', { class: 'jp-mod-styled', value: suggestName(p.variable), 'aria-label': 'deployment name', 'data-nimbus': 'deploy-name' }) as HTMLInputElement;
    const target = h('select', { class: 'jp-mod-styled', 'aria-label': 'target', 'data-nimbus': 'deploy-target' }) as HTMLSelectElement;
    for (const t of TARGETS) {
      target.append(h('option', { value: t }, t));
    }
    const problem = h('div', { class: 'jp-NimbusPanel-error' });
    const go = button('Deploy', () => {
      const issue = nameProblem(name.value);
      if (issue) {
        problem.textContent = issue;
        return;
      }
      void this._deploy(p.variable, name.value, target.value);
    }, 'jp-mod-accept', 'Deploy in the kernel, as %nimbus_deploy does');
    go.setAttribute('data-nimbus', 'deploy-go');
    name.addEventListener('input', () => {
      problem.textContent = nameProblem(name.value) ?? '';
    });
    return h('div', { class: 'jp-NimbusPanel-form' },
      h('label', {}, 'Name ', name), h('label', {}, 'Target ', target), go, problem);
  }

  private async _deploy(variable: string, name: string, target: string): Promise<void> {
    const kernel = this._kernel();
    if (!kernel) {
      return;
    }
    this._openDeploy = null;
    this._progress = newProgress(name);
    this._renderPipelines();
    this._renderProgress();
    try {
      await deployInKernel(kernel, variable, name, target, message => {
        this._progress = applyProgress(this._progress ?? newProgress(name), message);
        this._renderProgress();
      });
      if (this._progress && !this._progress.finished) {
        this._progress = { ...this._progress, finished: true, error: 'The kernel finished without saying how the deploy went.' };
      }
    } catch (error) {
      this._progress = { ...(this._progress ?? newProgress(name)), finished: true, error: errorText(error) };
    }
    this._renderProgress();
    this._renderPipelines();
    await this.refreshDeployments();
  }

  private _renderProgress(): void {
    const el = this._progressEl;
    el.replaceChildren();
    const p = this._progress;
    if (!p) {
      return;
    }
    const state = p.error ? 'failed' : p.finished ? 'done' : 'running';
    const bar = h('div', { class: `jp-NimbusPanel-bar jp-mod-${state}` }, h('div', { style: `width: ${Math.round(fractionDone(p) * 100)}%` }));
    const stages = h('ul', { class: 'jp-NimbusPanel-stages' });
    for (const s of p.stages) {
      stages.append(h('li', { class: `jp-mod-${s.state}`, 'data-nimbus-stage': s.stage, 'data-state': s.state },
        h('span', { class: 'jp-NimbusPanel-icon' }, { pending: '○', running: '◐', done: '✔', failed: '✖', skipped: '–' }[s.state]),
        ` ${s.stage}`,
        s.seconds !== null ? h('span', { class: 'jp-NimbusPanel-secs' }, ` ${s.seconds.toFixed(1)} s`) : null,
        s.detail ? h('span', { class: 'jp-NimbusPanel-detail' }, ` ${s.detail}`) : null));
    }
    const close = p.finished ? button('×', () => { this._progress = null; this._renderProgress(); }, 'jp-NimbusPanel-close', 'Dismiss') : null;
    el.append(h('div', { class: 'jp-NimbusPanel-card', 'data-nimbus': 'deploy-progress', 'data-state': state },
      h('div', { class: 'jp-NimbusPanel-row' }, h('span', {}, p.finished ? (p.error ? 'Deploy failed: ' : 'Deployed ') : 'Deploying ', h('code', {}, p.name)), close),
      bar, stages,
      ...p.messages.map(m => h('div', { class: 'jp-NimbusPanel-meta' }, m)),
      p.url ? h('div', { class: 'jp-NimbusPanel-meta' }, 'Endpoint: ', h('code', {}, p.url)) : null,
      p.error ? h('pre', { class: 'jp-NimbusPanel-error', 'data-nimbus': 'deploy-error' }, p.error) : null));
  }

  // -- deployments -------------------------------------------------------------------------------
  private _renderDeployments(): void {
    const el = this._deploymentsEl;
    el.replaceChildren();
    if (this._deploymentsError) {
      el.append(h('p', { class: 'jp-NimbusPanel-error', 'data-nimbus': 'deployments-error' }, this._deploymentsError));
    }
    if (!this._deployments.length && !this._deploymentsError) {
      el.append(h('p', { class: 'jp-NimbusPanel-note' }, 'No deployments yet.'));
    }
    for (const d of this._deployments) {
      el.append(this._deploymentCard(d));
    }
  }

  private _deploymentCard(d: IDeployment): El {
    const card = h('div', { class: 'jp-NimbusPanel-card', 'data-nimbus-deployment': d.name, 'data-status': d.status });
    const status = h('span', { class: `jp-NimbusPanel-status jp-mod-${d.status}`, 'data-nimbus': 'status' }, d.status);
    card.append(
      h('div', { class: 'jp-NimbusPanel-row' }, h('code', { class: 'jp-NimbusPanel-name' }, d.name), status),
      h('div', { class: 'jp-NimbusPanel-meta' }, `${d.target} · v${d.version} · created ${formatCreated(d.created)}`),
      h('div', { class: 'jp-NimbusPanel-url', 'data-nimbus': 'url', title: d.url }, d.url || '—')
    );
    if (d.detail) {
      card.append(h('div', { class: 'jp-NimbusPanel-error' }, d.detail));
    }
    const copy = button('Copy URL', () => {
      Clipboard.copyToSystem(d.url);
      copy.textContent = 'Copied';
      window.setTimeout(() => (copy.textContent = 'Copy URL'), 1500);
    });
    const test = button(this._tests.has(d.name) ? 'Hide test' : 'Test', () => {
      if (this._tests.has(d.name)) {
        this._tests.delete(d.name);
      } else {
        this._tests.set(d.name, { text: '', busy: false, result: null, error: null });
      }
      this._renderDeployments();
    });
    test.disabled = d.status !== 'ready' && !this._tests.has(d.name);
    const statusToggle = button(this._statuses.has(d.name) ? 'Hide status' : 'Status', () => {
      if (this._statuses.has(d.name)) {
        this._statuses.delete(d.name);
        this._renderDeployments();
      } else {
        this._statuses.set(d.name, { status: null, error: null, busy: true });
        this._renderDeployments();
        void this._loadStatus(d.name);
      }
    }, '', 'Health, requests and errors, p50/p99 latency and cost');
    statusToggle.setAttribute('data-nimbus', 'status-toggle');
    const destroy = button('Destroy', () => void this._destroy(d.name), 'jp-mod-warn');
    card.append(h('div', { class: 'jp-NimbusPanel-actions' }, test, statusToggle, copy, destroy));
    const open = this._statuses.get(d.name);
    if (open) {
      card.append(this._statusBox(open));
    }
    const state = this._tests.get(d.name);
    if (state) {
      card.append(this._testBox(d, state));
    }
    return card;
  }

  private _statusBox(state: IStatusState): El {
    const box = h('div', { class: 'jp-NimbusPanel-meta', 'data-nimbus': 'status-detail' });
    if (state.error) {
      box.append(h('div', { class: 'jp-NimbusPanel-error' }, state.error));
    } else if (state.status) {
      for (const line of statusLines(state.status)) {
        box.append(h('div', {}, line));
      }
    } else {
      box.append(h('div', {}, 'Checking…'));
    }
    return box;
  }

  private async _loadStatus(name: string): Promise<void> {
    const state = this._statuses.get(name);
    if (!state) {
      return;
    }
    try {
      state.status = await requestAPI<IStatus>(`deployments/${encodeURIComponent(name)}/status`);
      state.error = null;
    } catch (error) {
      state.error = errorText(error);
    }
    state.busy = false;
    if (this._statuses.get(name) === state) {
      this._renderDeployments();
    }
  }

  private _testBox(d: IDeployment, state: ITestState): El {
    const input = h('textarea', { class: 'jp-mod-styled', rows: '2', placeholder: 'Type a text to send to the endpoint', 'data-nimbus': 'test-text' }) as HTMLTextAreaElement;
    input.value = state.text;
    input.addEventListener('input', () => (state.text = input.value));
    const run = button(state.busy ? 'Running…' : 'Run', () => void this._test(d.name, state), 'jp-mod-accept');
    run.disabled = state.busy;
    run.setAttribute('data-nimbus', 'test-run');
    const out = h('div', { class: 'jp-NimbusPanel-result', 'data-nimbus': 'test-result' });
    if (state.error) {
      out.append(h('div', { class: 'jp-NimbusPanel-error' }, state.error));
    } else if (state.result) {
      const r = state.result;
      out.append(h('div', {}, summarizeResult(r.results[0] ?? {})),
        h('details', {}, h('summary', {}, `${r.fields.join(', ')} · v${r.version}`), h('pre', {}, JSON.stringify(r.results[0], null, 1))));
    }
    return h('div', { class: 'jp-NimbusPanel-test' }, input, run, out);
  }

  private async _test(name: string, state: ITestState): Promise<void> {
    if (!state.text.trim()) {
      state.error = 'Type a text first.';
      this._renderDeployments();
      return;
    }
    state.busy = true;
    state.error = null;
    this._renderDeployments();
    try {
      state.result = await requestAPI<IPredictResponse>(`deployments/${encodeURIComponent(name)}/predict`, {
        method: 'POST',
        body: JSON.stringify({ texts: [state.text] })
      });
    } catch (error) {
      state.result = null;
      state.error = errorText(error);
    }
    state.busy = false;
    this._renderDeployments();
  }

  private async _destroy(name: string): Promise<void> {
    const answer = await showDialog({
      title: `Destroy ${name}?`,
      body: `This stops the endpoint of "${name}" and removes its files and API key. It cannot be undone.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Destroy' })]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await requestAPI<{ message: string }>(`deployments/${encodeURIComponent(name)}`, { method: 'DELETE' });
      this._tests.delete(name);
      this._statuses.delete(name);
    } catch (error) {
      this._deploymentsError = errorText(error);
    }
    await this.refreshDeployments();
    this._renderDeployments();
  }

  private _notebook: NotebookPanel | null = null;
  private _pipelines: IPipeline[] | null = null;
  private _pipelinesError: string | null = null;
  private _probing = false;
  private _probeTicket = 0;
  private _probeWhenIdle = false;
  private _openDeploy: string | null = null;
  private _progress: IDeployProgress | null = null;
  private _deployments: IDeployment[] = [];
  private _deploymentsError: string | null = null;
  private _tests = new Map<string, ITestState>();
  private _statuses = new Map<string, IStatusState>();
  private _poll = 0;
  private _pipelinesEl: El;
  private _progressEl: El;
  private _deploymentsEl: El;
}
