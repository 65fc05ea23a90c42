// The deploy form's targets and their options come from GET /nimbus/api/targets: each option rendered
// by its declared type with its default shown, and sent to the kernel as {name: value}.
import { expect, test } from '@jupyterlab/galata';

import { cleanup, notebookWith, openPanel, PIPELINE, shot } from './nimbus';

test.afterEach(() => cleanup('opts-demo'));

const TARGETS = {
  default: 'local',
  targets: [
    {
      name: 'local', title: 'Local (127.0.0.1)', stages: ['serialize', 'package', 'start', 'smoke test'], capabilities: ['operate'],
      options: [{ name: 'workers', flag: '--workers', type: 'int', default: 2, help: 'worker processes', choices: null, metavar: 'N' }]
    },
    {
      name: 'aws', title: 'AWS Lambda', stages: ['serialize', 'layer', 'synth', 'deploy', 'smoke test'], capabilities: ['operate', 'discover'],
      options: [
        { name: 'memory', flag: '--memory', type: 'int', default: 2048, help: 'Lambda memory in MB', choices: null, metavar: 'MB' },
        { name: 'arch', flag: '--arch', type: 'choice', default: 'x86_64', help: 'Lambda architecture', choices: ['x86_64', 'arm64'], metavar: null },
        { name: 'region', flag: '--region', type: 'str', default: null, help: 'the AWS region', choices: null, metavar: 'REGION' },
        { name: 'throttle_rate', flag: '--rate', type: 'float', default: null, help: 'requests/s', choices: null, metavar: 'RPS' },
        { name: 'keep_warm', flag: '--keep-warm', type: 'bool', default: false, help: 'ping it every 5 min', choices: null, metavar: null }
      ]
    }
  ]
};

test('targets and their options come from GET /nimbus/api/targets; options are sent as {name: value}', async ({ page }) => {
  await page.route(/\/nimbus\/api\/targets/, route => route.fulfill({ json: TARGETS }));
  await page.goto();
  const sent: string[] = [];
  page.on('websocket', ws => ws.on('framesent', frame => {
    const text = typeof frame.payload === 'string' ? frame.payload : frame.payload.toString('utf8');
    if (text.includes('deploy_from_sidebar')) {
      sent.push(text);
    }
  }));
  await notebookWith(page, 'targets.ipynb', [PIPELINE]);
  const panel = await openPanel(page);
  await page.sidebar.setWidth(250);
  await panel.locator('[data-nimbus-pipeline="nlp"]').getByRole('button', { name: 'Deploy…' }).click();

  // The select offers every target by its title, starts on the default, and has its arrow.
  const target = panel.locator('select[data-nimbus="deploy-target"]');
  await expect(target.locator('option')).toHaveText(['Local (127.0.0.1)', 'AWS Lambda']);
  await expect(target).toHaveValue('local');
  await expect(panel.locator('.jp-NimbusPanel-form > label .jp-HTMLSelect svg')).toBeVisible();
  const workers = panel.locator('[data-nimbus-option="workers"]');
  await expect(workers.locator('input')).toHaveValue('2');
  await expect(workers).toContainText('worker processes · default 2');

  // Another target: its own fields, each by its type, defaults shown.
  await target.selectOption('aws');
  await expect(workers).toHaveCount(0);
  const field = (name: string) => panel.locator(`[data-nimbus-option="${name}"]`);
  await expect(field('memory').locator('input[type="number"]')).toHaveValue('2048');
  await expect(field('arch').locator('select')).toHaveValue('x86_64');
  await expect(field('arch').locator('select option')).toHaveText(['x86_64', 'arm64']);
  await expect(field('arch').locator('.jp-HTMLSelect svg')).toBeVisible();
  await expect(field('region').locator('input[type="text"]')).toHaveAttribute('placeholder', 'REGION (target default)');
  await expect(field('region')).toContainText('default: the target decides');
  await expect(field('throttle_rate').locator('input[type="number"]')).toHaveValue('');
  await expect(field('keep_warm').locator('input[type="checkbox"]')).not.toBeChecked();
  await field('memory').locator('input').fill('1.5');
  await panel.locator('[data-nimbus="deploy-go"]').click();
  await expect(field('memory')).toContainText('--memory takes a whole number, not "1.5"');
  await expect(panel.locator('[data-nimbus="deploy-progress"]')).toHaveCount(0);
  await shot(panel, 'targets-aws-options-250');

  // Back to local: one worker, deployed. The kernel is asked with options={"workers": 1}.
  await target.selectOption('local');
  await workers.locator('input').fill('1');
  await panel.locator('[data-nimbus="deploy-name"]').fill('opts-demo');
  await panel.locator('[data-nimbus="deploy-go"]').click();
  const progress = panel.locator('[data-nimbus="deploy-progress"]');
  await expect(progress).toBeVisible();
  // The target's stages show before the kernel says anything.
  await expect(progress.locator('[data-nimbus-stage]')).toHaveCount(4);
  await expect.poll(() => sent.length).toBeGreaterThan(0);
  // The execute_request's code, out of the kernel protocol frame.
  const code = JSON.parse(`"${/"code":"((?:[^"\\]|\\.)*)"/.exec(sent[0])![1]}"`) as string;
  const call = /deploy_from_sidebar\("nlp", "opts-demo", "local", options=__import__\('json'\)\.loads\((".*")\)\)$/.exec(code);
  expect(call, code).not.toBeNull();
  expect(JSON.parse(JSON.parse(call![1]))).toEqual({ workers: 1 });
  await expect(progress).toHaveAttribute('data-state', 'done', { timeout: 120000 });
  await shot(panel, 'targets-deployed-with-options');
});
