import { Clipboard, Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import type { NotebookPanel } from '@jupyterlab/notebook';
import type { Kernel } from '@jupyterlab/services';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import { deployInKernel, isReady, probePipelines } from './kernel';
import type { IDeploymentList, IPredictResponse, IStatus, ITargetList } from './models';
import { parseTargets } from './options';
import { requestAPI } from './request';
import { IKernelPort, ISidebarApi, KernelPhase, SidebarStore } from './store';
import { Sidebar } from './view';

/** How often the deployments (and open Status details) are fetched again while the panel shows. */
export const DEFAULT_REFRESH_SECONDS = 15;

/** The server routes, through requestAPI (token, XSRF, errors as NimbusAPIError with ``status``). */
export const serverApi: ISidebarApi = {
  deployments: () => requestAPI<IDeploymentList>('deployments'),
  status: name => requestAPI<IStatus>(`deployments/${encodeURIComponent(name)}/status`),
  predict: (name, texts) =>
    requestAPI<IPredictResponse>(`deployments/${encodeURIComponent(name)}/predict`, {
      method: 'POST',
      body: JSON.stringify({ texts })
    }),
  destroy: async name => {
    await requestAPI<{ message: string }>(`deployments/${encodeURIComponent(name)}`, { method: 'DELETE' });
  },
  targets: async () => parseTargets(await requestAPI<ITargetList>('targets'))
};

/** The active notebook's kernel as the store sees it. */
class KernelPort implements IKernelPort {
  constructor(private readonly _kernel: Kernel.IKernelConnection) {}

  async probe(onRetry: () => void) {
    const spec = await this._kernel.spec;
    if (spec && spec.language && spec.language.toLowerCase() !== 'python') {
      throw new Error(`This notebook's kernel runs ${spec.language}: Nimbus lists and deploys spaCy pipelines from Python kernels.`);
    }
    return probePipelines(this._kernel, () => {
      console.debug('nimbus-jupyter: the kernel restarted under the pipelines probe; asking again when it is ready');
      onRetry();
    });
  }

  deploy(...args: Parameters<IKernelPort['deploy']>) {
    return deployInKernel(this._kernel, ...args);
  }
}

/** The kernel's state as the store's phase. */
export function phaseOf(kernel: Kernel.IKernelConnection | null): KernelPhase {
  if (!kernel) {
    return 'no-kernel';
  }
  switch (kernel.status) {
    case 'restarting':
    case 'autorestarting':
      return 'restarting';
    case 'dead':
      return 'dead';
  }
  return isReady(kernel) ? 'ready' : 'starting';
}

/**
 * The Nimbus sidebar: the active notebook kernel's spaCy pipelines (deploy), and every deployment in the
 * registry (test, status, copy URL, destroy). It follows the notebook and the poll; the store decides.
 */
export class NimbusPanel extends ReactWidget {
  constructor(readonly store: SidebarStore = new SidebarStore(serverApi)) {
    super();
    this.id = 'nimbus-sidebar';
    this.addClass('jp-NimbusPanel');
    this.title.caption = 'Nimbus: pipelines and deployments';
    void store.loadTargets();
  }

  render(): JSX.Element {
    return (
      <Sidebar
        store={this.store}
        actions={{
          confirmDestroy: async name => {
            const answer = await showDialog({
              title: `Destroy ${name}?`,
              body: `This stops the endpoint of "${name}" and removes its files and API key. It cannot be undone.`,
              buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Destroy' })]
            });
            return answer.button.accept;
          },
          copy: text => Clipboard.copyToSystem(text),
          refresh: () => void this.refresh()
        }}
      />
    );
  }

  /** Follow this notebook (or none). */
  setNotebook(notebook: NotebookPanel | null): void {
    if (notebook === this._notebook) {
      return;
    }
    if (this._notebook) {
      this._notebook.sessionContext.kernelChanged.disconnect(this._onKernelChanged, this);
      this._notebook.title.changed.disconnect(this._follow, this);
    }
    this._notebook = notebook;
    if (notebook) {
      notebook.sessionContext.kernelChanged.connect(this._onKernelChanged, this);
      notebook.title.changed.connect(this._follow, this);
    }
    this._follow();
  }

  get notebook(): NotebookPanel | null {
    return this._notebook;
  }

  /** How often to poll (seconds), from the settings. */
  set refreshSeconds(seconds: number) {
    this._refreshMs = Math.max(0.2, seconds || DEFAULT_REFRESH_SECONDS) * 1000;
    if (this.isAttached) {
      this._startPoll();
    }
  }

  async refresh(): Promise<void> {
    if (this.store.snapshot.targetsNote) {
      void this.store.loadTargets();
    }
    await Promise.all([this.store.requestProbe(true), this.store.requestList(true)]);
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    void this.store.requestList(true);
    this._startPoll();
  }

  protected onBeforeDetach(msg: Message): void {
    window.clearInterval(this._poll);
    super.onBeforeDetach(msg);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
  }

  private _startPoll(): void {
    window.clearInterval(this._poll);
    this._poll = window.setInterval(() => {
      if (this.isVisible) {
        void this.store.poll();
      }
    }, this._refreshMs);
  }

  private _kernel(): Kernel.IKernelConnection | null {
    return this._notebook?.sessionContext.session?.kernel ?? null;
  }

  /** Points the store at the notebook's current kernel, and follows that kernel's status. */
  private _follow(): void {
    const kernel = this._kernel();
    const label = this._notebook?.title.label ?? null;
    if (kernel === this._watched && this._notebook === this._followed) {
      this.store.setNotebookLabel(label); // a rename: the same kernel, its pipelines still hold
      return;
    }
    this._watched?.statusChanged.disconnect(this._onStatus, this);
    this._watched?.connectionStatusChanged.disconnect(this._onStatus, this);
    this._watched = kernel;
    this._followed = this._notebook;
    kernel?.statusChanged.connect(this._onStatus, this);
    kernel?.connectionStatusChanged.connect(this._onStatus, this);
    this.store.setKernel(label, kernel ? new KernelPort(kernel) : null, this._notebook ? phaseOf(kernel) : 'no-notebook');
  }

  private _onKernelChanged(): void {
    this._follow();
  }

  private _onStatus(): void {
    this.store.setPhase(phaseOf(this._watched));
  }

  private _notebook: NotebookPanel | null = null;
  private _watched: Kernel.IKernelConnection | null = null;
  private _followed: NotebookPanel | null = null;
  private _poll = 0;
  private _refreshMs = DEFAULT_REFRESH_SECONDS * 1000;
}
