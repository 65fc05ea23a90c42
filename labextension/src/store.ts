/**
 * The sidebar's state and what changes it: the kernel's pipelines, a deploy in flight, the deployments
 * and what is open on each row (Test, Status). The view renders snapshots of it; the server routes and the
 * kernel are passed in (ISidebarApi, IKernelPort), so every rule here is unit tested with node alone.
 *
 * The rules the panel keeps:
 * - only the newest answer is shown (Generations), and no answer to a request sent before a destroy or a
 *   deploy finished is shown after it: a destroyed deployment never comes back from a slow answer;
 * - list requests are coalesced and debounced (Coalescer): Run All makes a few, not one per cell;
 * - a restart of the kernel is a calm state, never an error; the probe asks again when it is idle;
 * - no state outlives what it is about: a "Deployed" card goes with its deployment, a Test error goes when
 *   the deployment changes (redeployed), a finished deploy card goes when the kernel restarts.
 */
import { applyProgress, errorText, IDeployProgress, newProgress } from './helpers';
import {
  IDeployment,
  IDeploymentList,
  IPipeline,
  IPredictResponse,
  IProgressMessage,
  IStatus,
  ITargetList,
  LOCAL_ONLY
} from './models';
import { isTransientKernelError, NoAnswer } from './retry';
import { Coalescer, Generations } from './sync';

/** What the server extension does for the panel (``requestAPI`` under /nimbus/api/ in the lab). */
export interface ISidebarApi {
  deployments(): Promise<IDeploymentList>;
  status(name: string): Promise<IStatus>;
  predict(name: string, texts: string[]): Promise<IPredictResponse>;
  destroy(name: string): Promise<void>;
  /** GET /nimbus/api/targets; an error with ``status`` 404 means a server without the route. */
  targets(): Promise<ITargetList>;
}

/** What the panel asks the active notebook's kernel. */
export interface IKernelPort {
  probe(onRetry: () => void): Promise<IPipeline[]>;
  deploy(
    variable: string,
    name: string,
    target: string,
    options: Record<string, unknown>,
    onProgress: (message: IProgressMessage) => void
  ): Promise<void>;
}

/** Where the active notebook's kernel is. */
export type KernelPhase = 'no-notebook' | 'no-kernel' | 'starting' | 'restarting' | 'ready' | 'dead';

export interface ITestState {
  busy: boolean;
  result: IPredictResponse | null;
  error: string | null;
  /** The deployment (status, version, update) the error is about: a redeploy makes it stale. */
  errorKey: string;
}

export interface IStatusState {
  status: IStatus | null;
  error: string | null;
  busy: boolean;
}

export interface IRowState {
  test: ITestState | null;
  status: IStatusState | null;
  destroying: boolean;
  error: string | null; // why the last Destroy failed
}

export interface ISnapshot {
  notebook: string | null;
  phase: KernelPhase;
  pipelines: IPipeline[] | null;
  probing: boolean;
  pipelinesError: string | null;
  progress: IDeployProgress | null;
  deployments: IDeployment[];
  deploymentsLoaded: boolean;
  deploymentsError: string | null;
  rows: Readonly<Record<string, IRowState>>;
  targets: ITargetList;
  targetsNote: string | null;
}

export const NO_ANSWER_NOTE = 'The kernel did not answer when asked for its pipelines: click ↻ to ask again.';

/** What a Test error is about: the deployment as it was. Another status, version or update: stale. */
export function deploymentKey(d: IDeployment | undefined): string {
  return d ? `${d.status}|${d.version}|${d.updated}` : '';
}

/** Rows in a stable order (by name), whatever order the server answers in. */
export function sortDeployments(deployments: IDeployment[]): IDeployment[] {
  return [...deployments].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function emptyRow(): IRowState {
  return { test: null, status: null, destroying: false, error: null };
}

export interface IStoreOptions {
  /** Debounce of list and probe requests (cells executed in a row make one). */
  debounceMs?: number;
}

export class SidebarStore {
  constructor(
    private readonly _api: ISidebarApi,
    options: IStoreOptions = {}
  ) {
    // Cells a Run All executes a few hundred ms apart make one request per ~2 s, not one each.
    const debounce = options.debounceMs ?? 500;
    this._list = new Coalescer(() => this._loadList(), debounce, debounce * 4);
    this._probeRuns = new Coalescer(() => this._probe(), debounce, debounce * 4);
  }

  // -- observing --------------------------------------------------------------------------------
  /** For React's useSyncExternalStore. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  };

  readonly getSnapshot = (): ISnapshot => this._snapshot;

  get snapshot(): ISnapshot {
    return this._snapshot;
  }

  dispose(): void {
    this._list.dispose();
    this._probeRuns.dispose();
    this._listeners.clear();
  }

  // -- the kernel ----------------------------------------------------------------------------------
  /** Follow another notebook (or none), or another kernel of the same notebook. */
  setKernel(notebook: string | null, port: IKernelPort | null, phase: KernelPhase): void {
    this._port = port;
    this._probeGens.invalidate();
    this._update({ notebook, pipelines: null, pipelinesError: null, probing: false });
    this.setPhase(phase, true);
  }

  setNotebookLabel(notebook: string | null): void {
    if (notebook !== this._snapshot.notebook) {
      this._update({ notebook });
    }
  }

  /** The kernel's state changed: a restart clears what was about the old process; ready probes. */
  setPhase(phase: KernelPhase, force = false): void {
    const was = this._snapshot.phase;
    if (phase === was && !force) {
      return;
    }
    if (phase === 'restarting' || phase === 'dead') {
      this._deployEpoch++; // a deploy in flight dies with the process; its late messages are dropped
      this._update({ phase, pipelines: null, pipelinesError: null, progress: null });
      return;
    }
    this._update({ phase });
    if (phase === 'ready') {
      void this.requestProbe(true);
    }
  }

  /** Ask the kernel for its pipelines (coalesced: cells executed in a row ask once). */
  requestProbe(now = false): Promise<void> {
    return this._probeRuns.request(now);
  }

  private async _probe(): Promise<void> {
    const port = this._port;
    if (!port || this._snapshot.phase !== 'ready') {
      return; // asked again when the kernel is ready
    }
    const ticket = this._probeGens.next();
    this._update({ probing: true });
    try {
      const pipelines = await port.probe(() => {
        if (this._probeGens.current(ticket)) {
          this._update({ pipelinesError: null });
        }
      });
      if (port === this._port && this._probeGens.accept(ticket)) {
        this._update({ pipelines, pipelinesError: null });
      }
    } catch (error) {
      if (port === this._port && this._probeGens.accept(ticket)) {
        // A restart under the probe is a state, not an error: the kernel's next idle asks again.
        const text = error instanceof NoAnswer ? NO_ANSWER_NOTE : isTransientKernelError(error) ? null : errorText(error);
        this._update({ pipelines: null, pipelinesError: text });
      }
    } finally {
      if (port === this._port) {
        this._update({ probing: false });
      }
    }
  }

  // -- deploy ------------------------------------------------------------------------------------
  async deploy(variable: string, name: string, target: string, options: Record<string, unknown>): Promise<void> {
    const port = this._port;
    if (!port || this.deploying) {
      return;
    }
    const epoch = ++this._deployEpoch;
    const stages = this._snapshot.targets.targets.find(t => t.name === target)?.stages ?? [];
    this._update({ progress: newProgress(name, stages) });
    const current = () => epoch === this._deployEpoch;
    try {
      await port.deploy(variable, name, target, options, message => {
        if (current()) {
          this._update({ progress: applyProgress(this._snapshot.progress ?? newProgress(name), message) });
        }
      });
      const p = this._snapshot.progress;
      if (current() && p && !p.finished) {
        this._update({ progress: { ...p, finished: true, error: 'The kernel finished without saying how the deploy went.' } });
      }
    } catch (error) {
      if (current()) {
        const p = this._snapshot.progress ?? newProgress(name);
        this._update({ progress: isTransientKernelError(error) ? null : { ...p, finished: true, error: errorText(error) } });
      }
    }
    this._listGens.invalidate(); // lists asked for during the deploy may predate it
    await this.requestList(true);
  }

  get deploying(): boolean {
    const p = this._snapshot.progress;
    return p !== null && !p.finished;
  }

  dismissProgress(): void {
    if (!this.deploying) {
      this._update({ progress: null });
    }
  }

  // -- targets -----------------------------------------------------------------------------------
  async loadTargets(): Promise<void> {
    try {
      const targets = await this._api.targets();
      this._update({ targets, targetsNote: null });
    } catch (error) {
      const status = (error as { status?: number })?.status;
      // 404: a server extension without GET /nimbus/api/targets: the local target, no options.
      this._update({
        targets: LOCAL_ONLY,
        targetsNote: status === 404 ? null : `The target list is not available (${errorText(error)}); only local is offered.`
      });
    }
  }

  // -- deployments -------------------------------------------------------------------------------
  /** Ask for the list (coalesced and debounced; ``now``: at once, e.g. a click or a poll). */
  requestList(now = false): Promise<void> {
    return this._list.request(now);
  }

  /** The poll: the list, and with it every open Status. */
  poll(): Promise<void> {
    return this.requestList(true);
  }

  private async _loadList(): Promise<void> {
    const ticket = this._listGens.next();
    let list: IDeploymentList;
    try {
      list = await this._api.deployments();
    } catch (error) {
      if (this._listGens.accept(ticket)) {
        this._update({ deploymentsError: errorText(error), deploymentsLoaded: true });
      }
      return;
    }
    if (!this._listGens.accept(ticket)) {
      return; // an older answer than the one shown, or one sent before a destroy or deploy
    }
    this._applyList(list.deployments ?? []);
    for (const [name, row] of Object.entries(this._snapshot.rows)) {
      if (row.status) {
        void this._loadStatus(name);
      }
    }
  }

  private _applyList(deployments: IDeployment[]): void {
    const byName = new Map(deployments.map(d => [d.name, d]));
    const rows: Record<string, IRowState> = {};
    for (const [name, row] of Object.entries(this._snapshot.rows)) {
      const d = byName.get(name);
      if (!d) {
        continue; // gone: its Test and Status go with it
      }
      const test = row.test && row.test.error && row.test.errorKey !== deploymentKey(d)
        ? { ...row.test, error: null } // redeployed (or recovered): the old error is not about it any more
        : row.test;
      rows[name] = test === row.test ? row : { ...row, test };
    }
    let progress = this._snapshot.progress;
    if (progress && progress.finished && !progress.error && !byName.has(progress.name)) {
      progress = null; // "Deployed x" of a deployment destroyed since (here or by a magic)
    }
    this._update({
      deployments: sortDeployments(deployments),
      deploymentsLoaded: true,
      deploymentsError: null,
      rows,
      progress
    });
  }

  private _row(name: string): IRowState {
    return this._snapshot.rows[name] ?? emptyRow();
  }

  private _setRow(name: string, change: Partial<IRowState>): void {
    this._update({ rows: { ...this._snapshot.rows, [name]: { ...this._row(name), ...change } } });
  }

  async destroy(name: string): Promise<void> {
    if (this._row(name).destroying) {
      return;
    }
    this._setRow(name, { destroying: true, error: null });
    try {
      await this._api.destroy(name);
    } catch (error) {
      this._setRow(name, { destroying: false, error: errorText(error) });
      await this.requestList(true);
      return;
    }
    this._listGens.invalidate(); // every list in flight may still show it
    this._statusGens.delete(name);
    const rows = { ...this._snapshot.rows };
    delete rows[name];
    const progress = this._snapshot.progress?.name === name && this._snapshot.progress.finished ? null : this._snapshot.progress;
    this._update({ deployments: this._snapshot.deployments.filter(d => d.name !== name), rows, progress });
    await this.requestList(true);
  }

  // -- test ----------------------------------------------------------------------------------------
  toggleTest(name: string): void {
    const row = this._row(name);
    this._setRow(name, { test: row.test ? null : { busy: false, result: null, error: null, errorKey: '' } });
  }

  /**
   * The Test box's text as typed, kept without a render: the textarea owns what is on screen (its focus,
   * caret and text are never touched by a refresh); this is what Run sends and what a reopened box shows.
   */
  setTestText(name: string, text: string): void {
    this._texts.set(name, text);
  }

  testText(name: string): string {
    return this._texts.get(name) ?? '';
  }

  async runTest(name: string): Promise<void> {
    const row = this._row(name);
    if (!row.test || row.test.busy) {
      return;
    }
    const text = this.testText(name);
    const keyNow = () => deploymentKey(this._snapshot.deployments.find(d => d.name === name));
    if (!text.trim()) {
      this._setRow(name, { test: { ...row.test, error: 'Type a text first.', errorKey: keyNow() } });
      return;
    }
    this._setRow(name, { test: { ...row.test, busy: true, error: null } });
    let change: Partial<ITestState>;
    try {
      change = { result: await this._api.predict(name, [text]), error: null };
    } catch (error) {
      change = { result: null, error: errorText(error), errorKey: keyNow() };
    }
    const test = this._snapshot.rows[name]?.test;
    if (test) {
      this._setRow(name, { test: { ...test, ...change, busy: false } });
    }
    if (change.error) {
      await this.requestList(true); // a failed test often means the deployment changed: show how
    }
  }

  // -- status --------------------------------------------------------------------------------------
  toggleStatus(name: string): void {
    if (this._row(name).status) {
      this._statusGens.delete(name);
      this._setRow(name, { status: null });
    } else {
      this._setRow(name, { status: { status: null, error: null, busy: true } });
      void this._loadStatus(name);
    }
  }

  private async _loadStatus(name: string): Promise<void> {
    let gens = this._statusGens.get(name);
    if (!gens) {
      gens = new Generations();
      this._statusGens.set(name, gens);
    }
    const open = this._row(name).status;
    if (!open || this._statusInFlight.has(name)) {
      return; // one status request per deployment at a time: the next poll asks again
    }
    const ticket = gens.next();
    this._statusInFlight.add(name);
    this._setRow(name, { status: { ...open, busy: true } });
    let change: Partial<IStatusState>;
    try {
      change = { status: await this._api.status(name), error: null };
    } catch (error) {
      change = { error: errorText(error) };
    } finally {
      this._statusInFlight.delete(name);
    }
    const now = this._snapshot.rows[name]?.status;
    if (now && this._statusGens.get(name) === gens && gens.accept(ticket)) {
      this._setRow(name, { status: { ...now, ...change, busy: false } });
    }
  }

  // -- internals -----------------------------------------------------------------------------------
  private _update(change: Partial<ISnapshot>): void {
    this._snapshot = { ...this._snapshot, ...change };
    for (const listener of [...this._listeners]) {
      listener();
    }
  }

  private _snapshot: ISnapshot = {
    notebook: null,
    phase: 'no-notebook',
    pipelines: null,
    probing: false,
    pipelinesError: null,
    progress: null,
    deployments: [],
    deploymentsLoaded: false,
    deploymentsError: null,
    rows: {},
    targets: LOCAL_ONLY,
    targetsNote: null
  };
  private _listeners = new Set<() => void>();
  private _port: IKernelPort | null = null;
  private _list: Coalescer;
  private _probeRuns: Coalescer;
  private _listGens = new Generations();
  private _probeGens = new Generations();
  private _statusGens = new Map<string, Generations>();
  private _texts = new Map<string, string>();
  private _statusInFlight = new Set<string>();
  private _deployEpoch = 0;
}
