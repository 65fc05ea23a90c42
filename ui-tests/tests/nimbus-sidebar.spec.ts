// What a user does in the Nimbus sidebar, in a real JupyterLab: see the notebook's pipeline, deploy it
// from the panel, watch it become ready, test it, read its status, see %nimbus_list agree, destroy it.
import { expect, test } from '@jupyterlab/galata';

import { cleanup, openPanel, PIPELINE, runCode, shot } from './nimbus';

const NAME = 'panel-demo';

test.afterEach(() => cleanup(NAME));

test('deploy, test and destroy a pipeline from the Nimbus sidebar', async ({ page }) => {
  // A server extension without GET /nimbus/api/targets (404) means the local target and no options.
  await page.route(/\/nimbus\/api\/targets/, route => route.fulfill({ status: 404, body: '' }));
  await page.goto();
  // The tab is there after a plain pip install, and with no notebook open it says why no pipelines show.
  const panel = await openPanel(page);
  await expect(panel.locator('[data-nimbus="pipelines-note"]')).toContainText('No notebook is open');

  await page.notebook.createNew('pipeline.ipynb');
  await page.notebook.setCell(0, 'code', PIPELINE);
  await page.notebook.runCell(0);
  await page.sidebar.openTab('nimbus-sidebar');

  const pipeline = panel.locator('[data-nimbus-pipeline="nlp"]');
  await expect(pipeline).toContainText('en · sentencizer');
  await pipeline.getByRole('button', { name: 'Deploy…' }).click();
  // The target select is JupyterLab's, with its arrow; without GET /nimbus/api/targets it offers local.
  await expect(panel.locator('[data-nimbus="deploy-options"]')).toHaveCount(0);
  const target = panel.locator('[data-nimbus="deploy-target"]');
  await expect(target.locator('option')).toHaveText(['Local (127.0.0.1)']);
  await expect(panel.locator('.jp-NimbusPanel-form .jp-HTMLSelect svg')).toBeVisible();
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
  // The URL is a real link, opening a new tab that cannot reach back into the lab.
  const link = card.locator('a[data-nimbus="url"]');
  await expect(link).toHaveAttribute('href', /^http:\/\/127\.0\.0\.1:\d+$/);
  await expect(link).toHaveAttribute('target', '_blank');
  await expect(link).toHaveAttribute('rel', /noopener/);
  const url = (await link.getAttribute('href'))!;
  // Times say their time zone.
  await expect(card.locator('[data-nimbus="created"]')).toHaveText(/created \d{4}-\d\d-\d\d \d\d:\d\d (UTC|GMT[+-][\d:]+|[A-Z]{2,5})$/);

  // Test: type a text, see the prediction.
  await card.getByRole('button', { name: 'Test' }).click();
  await card.locator('[data-nimbus="test-text"]').fill('The kettle arrived broken. I sent it back.');
  await card.locator('[data-nimbus="test-run"]').click();
  await expect(card.locator('[data-nimbus="test-result"]')).toContainText('token(s)');

  // A caller without the API key gets a 401: Status counts it among the 4xx, not the errors.
  const refused = await page.request.post(`${url}/predict`, { data: { texts: ['no key'] } });
  expect(refused.status()).toBe(401);

  // Status: health probed now, the last hour's traffic (the smoke test, the Test above, the 401), cost,
  // and when it was checked.
  await card.locator('[data-nimbus="status-toggle"]').click();
  const detail = card.locator('[data-nimbus="status-detail"]');
  await expect(detail).toContainText('health: ok');
  await expect(detail).toContainText('last hour: 3 req · 0 err · 1 4xx');
  await expect(detail).toContainText('cost: n/a (local target: no cost)');
  await expect(detail).toContainText(/checked at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+/);

  await shot(panel, 'nimbus-sidebar-light');
  await page.theme.setDarkTheme();
  await shot(panel, 'nimbus-sidebar-dark');
  await page.theme.setLightTheme();

  // The magics read the same registry: %nimbus_list shows the panel's deployment, ready.
  await page.notebook.activate('pipeline.ipynb');
  const listed = await runCode(page, '%load_ext nimbus_jupyter\ntable = %nimbus_list\nprint(table[["name", "status"]].to_string(index=False))');
  expect(listed).toContain(NAME);
  expect(listed).toContain('ready');

  // Destroy, after a confirmation, shows that it is busy while the server works (held here for a moment).
  await page.sidebar.openTab('nimbus-sidebar');
  let releaseDelete: () => void = () => undefined;
  const deleteHeld = new Promise<void>(resolve => (releaseDelete = resolve));
  await page.route(`**/nimbus/api/deployments/${NAME}`, async route => {
    if (route.request().method() === 'DELETE') {
      await deleteHeld;
    }
    await route.continue();
  });
  await card.getByRole('button', { name: 'Destroy' }).click();
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Destroy' }).click();
  const destroy = card.locator('[data-nimbus="destroy"]');
  await expect(destroy).toHaveText('Destroying…');
  await expect(destroy).toBeDisabled();
  await expect(card).toHaveAttribute('aria-busy', 'true');
  await shot(panel, 'nimbus-sidebar-destroying');
  releaseDelete();
  await expect(card).toHaveCount(0);
  // The "Deployed panel-demo" card went with it.
  await expect(progress).toHaveCount(0);
  await expect(panel.locator('[data-nimbus="deployments"]')).toContainText('No deployments yet');
});
