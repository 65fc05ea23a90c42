import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { DEFAULT_REFRESH_SECONDS, NimbusPanel } from './panel';

const CLOUD_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
<path class="jp-icon3" fill="#616161" d="M19.35 10.04A7.49 7.49 0 0 0 12 4C9.11 4 6.6 5.64 5.35 8.04A5.994 5.994 0 0 0 0 14c0 3.31 2.69 6 6 6h13c2.76 0 5-2.24 5-5 0-2.64-2.05-4.78-4.65-4.96z"/>
</svg>`;

export const nimbusIcon = new LabIcon({ name: 'nimbus-jupyter:cloud', svgstr: CLOUD_SVG });

const PLUGIN_ID = 'nimbus-jupyter:sidebar';

/**
 * The Nimbus sidebar: pipelines in the active notebook's kernel, and every deployment.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Nimbus sidebar: see pipelines and deployments, deploy, test and destroy from a panel.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILabShell, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    labShell: ILabShell | null,
    settings: ISettingRegistry | null
  ) => {
    const panel = new NimbusPanel();
    panel.title.icon = nimbusIcon;
    app.shell.add(panel, 'left', { rank: 900 });

    if (settings) {
      void settings.load(PLUGIN_ID).then(
        loaded => {
          const apply = () => (panel.refreshSeconds = (loaded.get('refreshSeconds').composite as number) ?? DEFAULT_REFRESH_SECONDS);
          apply();
          loaded.changed.connect(apply);
        },
        error => console.warn(`nimbus-jupyter: settings not loaded (${error}); refreshing every ${DEFAULT_REFRESH_SECONDS} s`)
      );
    }

    const follow = () => panel.setNotebook(tracker.currentWidget);
    tracker.currentChanged.connect(follow);
    void app.restored.then(follow);
    // Running a cell may create or drop a pipeline, or deploy and destroy through the magics: look again.
    // The store coalesces and debounces these: Run All of fifty cells makes a few requests, not fifty.
    NotebookActions.executed.connect((_, { notebook }) => {
      if (panel.isVisible) {
        if (tracker.currentWidget?.content === notebook) {
          void panel.store.requestProbe();
        }
        void panel.store.requestList();
      }
    });
    if (labShell) {
      labShell.currentChanged.connect(() => {
        if (tracker.currentWidget !== panel.notebook) {
          follow();
        }
      });
    }
    app.commands.addCommand('nimbus-jupyter:open', {
      label: 'Open the Nimbus sidebar',
      execute: () => app.shell.activateById(panel.id)
    });
  }
};

export default plugin;
