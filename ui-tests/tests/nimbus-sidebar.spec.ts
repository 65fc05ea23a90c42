// What a user does in the Nimbus sidebar, in a real JupyterLab: see the notebook's pipeline, deploy it
// from the panel, watch it become ready, test it, see %nimbus_list agree, destroy it.
import { expect, test } from '@jupyterlab/galata';
import * as path from 'path';

const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts');
const NAME = 'panel-demo';

test('deploy, test and destroy a pipeline from the Nimbus sidebar', async ({ page }) => {
  // The tab is there after a plain pip install, and with no notebook open it says why no pipelines show.
  await page.sidebar.openTab('nimbus-sidebar');
  const panel = page.locator('#nimbus-sidebar');
  await expect(panel.locator('[data-nimbus="pipelines-note"]')).toContainText('No notebook is open');

  await page.notebook.createNew('pipeline.ipynb');
  await page.notebook.setCell(0, 'code', 'import spacy\nnlp = spacy.blank("en")\nnlp.add_pipe("sentencizer")');
  await page.notebook.runCell(0);
  await page.sidebar.openTab('nimbus-sidebar');

  const pipeline = panel.locator('[data-nimbus-pipeline="nlp"]');
  await expect(pipeline).toContainText('en · sentencizer');
  await pipeline.getByRole('button', { name: 'Deploy…' }).click();
  // A bad name is refused with what to do, before anything runs.
  await panel.locator('[data-nimbus="deploy-name"]').fill('Bad Name');
  await panel.locator('[data-nimbus="deploy-go"]').click();
  await expect(pipeline).toContainText('Use lowercase letters');
  await expect(panel.locator('[data-nimbus="deploy-progress"]')).toHaveCount(0);
  await panel.locator('[data-nimbus="deploy-name"]').fill(NAME);
  await panel.locator('[data-nimbus="deploy-go"]').click();

  // Live stages, then ready with a URL.
  const progress = panel.locator('[data-nimbus="deploy-progress"]');
  await expect(progress).toBeVisible();
  await expect(progress).toHaveAttribute('data-state', 'done', { timeout: 180000 });
  for (const stage of ['serialize', 'package', 'start', 'smoke test']) {
    await expect(progress.locator(`[data-nimbus-stage="${stage}"]`)).toHaveAttribute('data-state', 'done');
  }
  const card = panel.locator(`[data-nimbus-deployment="${NAME}"]`);
  await expect(card).toHaveAttribute('data-status', 'ready');
  await expect(card.locator('[data-nimbus="url"]')).toContainText('http://127.0.0.1:');

  // Test: type a text, see the prediction.
  await card.getByRole('button', { name: 'Test' }).click();
  await card.locator('[data-nimbus="test-text"]').fill('The kettle arrived broken. I sent it back.');
  await card.locator('[data-nimbus="test-run"]').click();
  await expect(card.locator('[data-nimbus="test-result"]')).toContainText('token(s)');

  // Status: health probed now, the last hour's traffic (the smoke test and the Test above), cost.
  await card.locator('[data-nimbus="status-toggle"]').click();
  const detail = card.locator('[data-nimbus="status-detail"]');
  await expect(detail).toContainText('health: ok');
  await expect(detail).toContainText('last hour: 2 req · 0 err');
  await expect(detail).toContainText('cost: n/a (local target: no cost)');

  await panel.screenshot({ path: path.join(ARTIFACTS, 'nimbus-sidebar-light.png') });
  await page.theme.setDarkTheme();
  await panel.screenshot({ path: path.join(ARTIFACTS, 'nimbus-sidebar-dark.png') });
  await page.theme.setLightTheme();

  // The magics read the same registry: %nimbus_list shows the panel's deployment, ready.
  await page.notebook.activate('pipeline.ipynb');
  await page.notebook.addCell('code', '%load_ext nimbus_jupyter\ntable = %nimbus_list\nprint(table[["name", "status"]].to_string(index=False))');
  const last = (await page.notebook.getCellCount()) - 1;
  await page.notebook.runCell(last);
  const listed = (await page.notebook.getCellTextOutput(last)) ?? [];
  expect(listed.join('\n')).toContain(NAME);
  expect(listed.join('\n')).toContain('ready');

  // Destroy, after a confirmation.
  await page.sidebar.openTab('nimbus-sidebar');
  await card.getByRole('button', { name: 'Destroy' }).click();
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Destroy' }).click();
  await expect(card).toHaveCount(0);
  await expect(panel.locator('[data-nimbus="deployments"]')).toContainText('No deployments yet');
});
