// A dead deployment in the narrowest sidebar (250 px), light and dark: its reason shown once and
// wrapped inside its box, buttons two by two (never Destroy alone on a row), and a redeploy that leaves
// no red Test error behind.
import { expect, galata, test } from '@jupyterlab/galata';

import { cleanup, deployWithMagic, FAST_POLL, holdLists, killServer, notebookWith, openPanel, overflows, PIPELINE, shot } from './nimbus';

test.use({ mockSettings: { ...galata.DEFAULT_SETTINGS, ...FAST_POLL } });

const NAME = 'narrow-demo';

test.afterEach(() => cleanup(NAME));

test('a dead deployment at 250 px: one copy of its reason, wrapped; redeployed, no stale Test error', async ({ page }) => {
  await notebookWith(page, 'narrow.ipynb', [PIPELINE]);
  await deployWithMagic(page, NAME);
  const panel = await openPanel(page);
  await page.sidebar.setWidth(250);
  const width = await panel.evaluate(el => el.getBoundingClientRect().width);
  expect(Math.abs(width - 250)).toBeLessThanOrEqual(3);
  const card = panel.locator(`[data-nimbus-deployment="${NAME}"]`);
  await expect(card).toHaveAttribute('data-status', 'ready');

  // Four buttons in a 250 px row: two rows of two, Destroy never alone.
  const tops = await card.locator('.jp-NimbusPanel-actions button').evaluateAll(buttons =>
    buttons.map(b => Math.round(b.getBoundingClientRect().top)));
  const destroyTop = tops[3];
  expect(tops.filter(t => t === destroyTop).length).toBeGreaterThanOrEqual(2);
  expect(await overflows(panel)).toEqual([]);

  // The server dies while the panel still shows it ready (its list answers are held): Test fails.
  await card.getByRole('button', { name: 'Test', exact: true }).click();
  await card.locator('[data-nimbus="status-toggle"]').click();
  await expect(card.locator('[data-nimbus="status-detail"]')).toContainText('health: ok');
  const lists = await holdLists(page);
  await killServer(page, NAME);
  await card.locator('[data-nimbus="test-text"]').fill('Great kettle, works fine');
  await card.locator('[data-nimbus="test-run"]').click();
  await expect(card.locator('[data-nimbus="test-result"] .jp-NimbusPanel-error')).toContainText(`is dead`);
  await lists.release();

  // The panel learns it is dead: the reason (a long path to the server's log) once, wrapped in the card.
  await expect(card).toHaveAttribute('data-status', 'dead');
  const reason = card.locator('[data-nimbus="deployment-detail"]');
  await expect(reason).toContainText('is not running (see ');
  await expect(card.locator('[data-nimbus="status-detail"]')).toContainText('health: down');
  await page.waitForTimeout(1500); // a poll or two: Status and Test have answered again
  const text = await card.innerText();
  expect(text.split('is not running').length - 1).toBe(1);
  expect(repeatedClauses(text)).toEqual([]);
  expect(await overflows(panel)).toEqual([]);
  const reasonBox = await reason.boundingBox();
  const cardBox = await card.boundingBox();
  expect(reasonBox!.x + reasonBox!.width).toBeLessThanOrEqual(cardBox!.x + cardBox!.width);
  expect(reasonBox!.height).toBeGreaterThan(30); // wrapped over lines, not cut off
  await shot(panel, 'narrow-250-dead-light');
  await page.theme.setDarkTheme();
  await expect(page.locator('body[data-jp-theme-light="false"]')).toBeAttached();
  const [fg, bg] = await card.locator('.jp-NimbusPanel-name').evaluate(el => {
    const card = el.closest('.jp-NimbusPanel-card')!;
    return [getComputedStyle(el).color, getComputedStyle(card).backgroundColor];
  });
  expect(luminance(fg)).toBeGreaterThan(luminance(bg) + 0.4); // light text on a dark card
  expect(await overflows(panel)).toEqual([]);
  await shot(panel, 'narrow-250-dead-dark');
  await page.theme.setLightTheme();

  // Deploy it again: ready, and the Test box shows no red error from before.
  await page.notebook.activate('narrow.ipynb');
  await deployWithMagic(page, NAME);
  await expect(card).toHaveAttribute('data-status', 'ready');
  await expect(card.locator('[data-nimbus="deployment-detail"]')).toHaveCount(0);
  await expect(card.locator('[data-nimbus="test-result"] .jp-NimbusPanel-error')).toHaveCount(0);
  await expect(card.locator('[data-nimbus="test-text"]')).toHaveValue('Great kettle, works fine');
  await card.locator('[data-nimbus="test-run"]').click();
  await expect(card.locator('[data-nimbus="test-result"]')).toContainText('token(s)');
  await shot(panel, 'narrow-250-redeployed');

  await card.locator('[data-nimbus="destroy"]').click();
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Destroy' }).click();
  await expect(card).toHaveCount(0);
});

/** Clauses (between newlines, "; " and ": ") of some length that the text says more than once. */
function repeatedClauses(text: string): string[] {
  const clauses = text
    .split(/\n|;\s|:\s/)
    .map(c => c.trim().replace(/[\s.→]+$/, ''))
    .filter(c => c.length > 20);
  return clauses.filter((c, i) => clauses.indexOf(c) !== i);
}

/** Relative luminance of a CSS rgb() colour (0 dark .. 1 light). */
function luminance(rgb: string): number {
  const [r, g, b] = (rgb.match(/[\d.]+/g) ?? ['0', '0', '0']).slice(0, 3).map(Number).map(v => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
