// The sidebar through Restart Kernel and Run All: a calm "Kernel restarting…", never JupyterLab's raw
// "Canceled future for execute_request message before replies were done" (the probe the restart cancels
// is asked again, bounded); a failed deploy's card goes with the kernel that made it; the cells Run All
// executes make a few list requests, not one each.
import { expect, test } from '@jupyterlab/galata';

import { cleanup, deployWithMagic, isList, notebookWith, openPanel, PIPELINE, recordTexts, shot } from './nimbus';

// galata's kernel tracking answers every POST under /api/kernels with 201, and JupyterLab refuses a
// restart answered so ("Invalid response: 201 Created"): this test's kernels go untracked.
test.use({ kernels: null });
test.afterEach(() => cleanup('taken-demo'));

const SLEEPS = 16;

test('Restart Kernel and Run All during a Run All: no raw kernel errors, a calm restart, no stale "Deploy failed" card', async ({ page }) => {
  const cells = [PIPELINE, 'other = spacy.blank("de")', 'import time', ...Array.from({ length: SLEEPS }, () => 'time.sleep(0.3)'),
    'print(time.time())'];
  await notebookWith(page, 'restart.ipynb', cells);
  // A deployment of nlp under the name the next deploy asks for (this cell is removed again, so that Run
  // All does not deploy).
  await deployWithMagic(page, 'taken-demo');
  await page.notebook.selectCells(cells.length);
  await page.notebook.deleteCells();
  expect(await page.notebook.getCellCount()).toBe(cells.length);

  const panel = await openPanel(page);
  const other = panel.locator('[data-nimbus-pipeline="other"]');
  await expect(other).toContainText('de · no components');
  // Deploying another pipeline under a taken name fails, with the reason.
  await other.getByRole('button', { name: 'Deploy…' }).click();
  await panel.locator('[data-nimbus="deploy-name"]').fill('taken-demo');
  await panel.locator('[data-nimbus="deploy-go"]').click();
  const progress = panel.locator('[data-nimbus="deploy-progress"]');
  await expect(progress).toHaveAttribute('data-state', 'failed', { timeout: 120000 });
  await expect(progress.locator('[data-nimbus="deploy-error"]')).not.toBeEmpty();
  await shot(panel, 'deploy-failed');

  // From here on: every text the Pipelines section shows, and every list request.
  const texts = await recordTexts(page, '[data-nimbus="pipelines"]', 'pipelineTexts');
  let lists = 0;
  page.on('request', r => {
    if (r.method() === 'GET' && isList(r)) {
      lists++;
    }
  });
  let retries = 0;
  page.on('console', m => {
    if (m.text().includes('restarted under the pipelines probe')) {
      retries++;
    }
  });
  const last = page.locator('.jp-OutputArea-output').last();
  const before = await last.innerText();

  // Run All; while its cells run (each executed cell asks the panel to look again, and its probe waits
  // behind the cells), Restart Kernel and Run All, which cancels the probe in flight.
  await page.menu.clickMenuItem('Run>Run All Cells');
  await page.waitForTimeout(3000); // the coalesced probe goes out ~2 s in, and waits for the cells
  await page.menu.clickMenuItem('Kernel>Restart Kernel and Run All Cells…');
  await page.locator('.jp-Dialog .jp-mod-accept').click();
  await expect(panel.locator('[data-nimbus="pipelines-note"][data-state="restarting"]')).toBeVisible();
  await shot(panel, 'kernel-restarting');
  // The failed deploy's card was about the kernel that ran it: gone with the restart.
  await expect(progress).toHaveCount(0);

  // Run All goes on in the new kernel (the last cell prints a new time); the panel shows its pipelines.
  await expect(last).toHaveText(/^\d+\.\d+\s*$/, { timeout: 60000 });
  await expect(last).not.toHaveText(before, { timeout: 60000 });
  await expect(panel.locator('[data-nimbus-pipeline="nlp"]')).toBeVisible({ timeout: 30000 });
  await expect(other).toBeVisible();
  await page.waitForTimeout(1500); // the last probes and lists answer
  await expect(panel.locator('[data-nimbus-pipeline="nlp"]')).toBeVisible();
  await shot(panel, 'after-restart-run-all');

  const seen = await texts();
  const shown = seen.join('\n----\n');
  expect(shown).not.toContain('Canceled future');
  expect(shown).not.toMatch(/Error|error|did not answer/);
  expect(shown).toContain('Kernel restarting…');
  expect(retries).toBeGreaterThanOrEqual(1); // the restart did cancel a probe, and it was asked again
  // Two Run Alls executed about 40 cells (an executed signal each): a few list requests.
  expect(lists).toBeGreaterThan(0);
  expect(lists).toBeLessThanOrEqual(8);
  console.log(`list requests while 2 x ${cells.length} cells ran: ${lists}; probes asked again: ${retries}`);
});
