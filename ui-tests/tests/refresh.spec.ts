// The sidebar's refresh changes rows in place and shows answers in order: typing goes on through a
// poll, and a destroyed deployment never comes back from an answer the server gave before the destroy.
import { expect, galata, test } from '@jupyterlab/galata';

import { cleanup, deployWithMagic, FAST_POLL, holdLists, isList, isStatus, notebookWith, openPanel, PIPELINE, runCode, shot } from './nimbus';

test.use({ mockSettings: { ...galata.DEFAULT_SETTINGS, ...FAST_POLL } });

test.afterEach(() => cleanup('typing-demo', 'ghost-demo'));

test('typing in the Test box goes on through a refresh (focus, caret, text and open details kept)', async ({ page }) => {
  await notebookWith(page, 'typing.ipynb', [PIPELINE]);
  await deployWithMagic(page, 'typing-demo');
  const panel = await openPanel(page);
  const card = panel.locator('[data-nimbus-deployment="typing-demo"]');
  await expect(card).toHaveAttribute('data-status', 'ready');

  // Status open: each poll fetches the list and the status again, and re-renders the row.
  await card.locator('[data-nimbus="status-toggle"]').click();
  await expect(card.locator('[data-nimbus="status-detail"]')).toContainText('health: ok');
  await card.getByRole('button', { name: 'Test', exact: true }).click();
  const box = card.locator('[data-nimbus="test-text"]');

  // A first test, and its details opened.
  await box.click();
  await page.keyboard.type('First.');
  await card.locator('[data-nimbus="test-run"]').click();
  const details = card.locator('[data-nimbus="test-result"] details');
  await details.locator('summary').click();
  await expect(details).toHaveAttribute('open', '');
  await box.fill('');

  await box.click();
  await page.keyboard.type('Great kettle, ');
  // Wait through one whole refresh: a list answer and a status answer after the typing.
  const list = page.waitForResponse(isList);
  const status = page.waitForResponse(r => isStatus(r, 'typing-demo'));
  await Promise.all([list, status]);
  await page.waitForTimeout(300); // let the answers render
  expect(await box.evaluate(el => el === document.activeElement)).toBe(true);
  expect(await box.evaluate(el => (el as HTMLTextAreaElement).selectionStart)).toBe('Great kettle, '.length);
  await page.keyboard.type('works fine');
  await expect(box).toHaveValue('Great kettle, works fine');
  await expect(details).toHaveAttribute('open', '');

  // The caret in the middle stays there too.
  await page.keyboard.press('Home');
  await Promise.all([
    page.waitForResponse(r => isStatus(r, 'typing-demo')),
    page.waitForResponse(isList)
  ]);
  await page.waitForTimeout(300);
  await page.keyboard.type('A ');
  await expect(box).toHaveValue('A Great kettle, works fine');
  await shot(panel, 'typing-through-refresh');

  await runCode(page, '%nimbus_destroy typing-demo');
  await expect(card).toHaveCount(0);
});

test('a destroyed deployment never comes back, even from a list answered before the destroy', async ({ page }) => {
  await notebookWith(page, 'ghost.ipynb', [PIPELINE]);
  await deployWithMagic(page, 'ghost-demo');
  const panel = await openPanel(page);
  const card = panel.locator('[data-nimbus-deployment="ghost-demo"]');
  await expect(card).toHaveAttribute('data-status', 'ready');

  // A list request goes out (↻); the server answers at once, with ghost-demo ready, but the answer is
  // held back until after the destroy, like a slow probe of another deployment would.
  const lists = await holdLists(page);
  await panel.getByTitle('Refresh pipelines and deployments').click();
  await expect.poll(lists.held).toBeGreaterThan(0);

  // Watch for the card ever showing again from now on.
  await page.evaluate(() => {
    const w = window as unknown as { ghostSeen: number; destroyed: boolean };
    w.ghostSeen = 0;
    w.destroyed = false;
    new MutationObserver(() => {
      if (w.destroyed && document.querySelector('[data-nimbus-deployment="ghost-demo"]')) {
        w.ghostSeen++;
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  });
  await card.getByRole('button', { name: 'Destroy' }).click();
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Destroy' }).click();
  await expect(card).toHaveCount(0);
  await page.evaluate(() => ((window as unknown as { destroyed: boolean }).destroyed = true));

  await lists.release(); // the old answer arrives now, and later polls (every second here)
  await page.waitForResponse(isList);
  await page.waitForTimeout(2500);
  expect(await page.evaluate(() => (window as unknown as { ghostSeen: number }).ghostSeen)).toBe(0);
  await expect(card).toHaveCount(0);
  await expect(panel.locator('[data-nimbus="deployments"]')).toContainText('No deployments yet');
});
