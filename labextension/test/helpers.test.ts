// Unit tests of the sidebar's pure helpers, with node's own test runner (no browser, no JupyterLab).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  applyProgress,
  deployCode,
  errorText,
  formatBytes,
  formatCreated,
  fractionDone,
  nameProblem,
  newProgress,
  parsePipelines,
  statusLines,
  suggestName,
  summarizeResult,
  windowSummary
} from '../src/helpers';
import type { IProgressMessage, IStatus } from '../src/models';

function msg(partial: Partial<IProgressMessage>): IProgressMessage {
  return {
    kind: 'stage', name: 'n', stages: [], stage: '', state: '', detail: '', seconds: null,
    done: 0, total: 0, text: '', deployment: null, ...partial
  };
}

test('names follow the same rule as the Python API', () => {
  assert.equal(nameProblem('reviews-2'), null);
  for (const bad of ['', 'Reviews', '2nd', 'a_b', 'a'.repeat(41)]) {
    assert.match(nameProblem(bad) ?? '', /lowercase letters/);
  }
});

test('suggested names are valid', () => {
  assert.equal(suggestName('nlp'), 'nlp');
  assert.equal(suggestName('my_NLP'), 'my-nlp');
  assert.equal(suggestName('_2'), 'p-2');
  for (const v of ['x', 'nlp_v2', 'A__B', '9lives', 'a'.repeat(60)]) {
    assert.equal(nameProblem(suggestName(v)), null, v);
  }
});

test('deploy code quotes every argument as a Python string', () => {
  const code = deployCode('nlp', 'it"s\\x', 'local');
  assert.ok(code.includes('deploy_from_sidebar("nlp", "it\\"s\\\\x", "local")'), code);
  assert.ok(!code.includes('\n'));
});

test('sizes and dates read well', () => {
  assert.equal(formatBytes(0), 'no weights');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1_500_000), '1.5 MB');
  assert.equal(formatBytes(560_000_000), '560 MB');
  assert.equal(formatCreated('2026-11-29T22:51:17+00:00'), '2026-11-29 22:51');
  assert.equal(formatCreated(''), '');
});

test('progress messages drive the stages, the bar and the outcome', () => {
  let p = newProgress('n');
  p = applyProgress(p, msg({ kind: 'start', stages: ['serialize', 'package', 'start', 'smoke test'] }));
  assert.equal(p.stages.length, 4);
  assert.equal(fractionDone(p), 0);
  const before = p;
  p = applyProgress(p, msg({ stage: 'serialize', state: 'done', detail: '1 MB', seconds: 0.4 }));
  assert.equal(before.stages[0].state, 'pending', 'the old state is not changed');
  p = applyProgress(p, msg({ stage: 'package', state: 'skipped', detail: 'unchanged' }));
  p = applyProgress(p, msg({ kind: 'progress', stage: 'start', done: 1, total: 2, detail: 'workers' }));
  assert.equal(p.stages[2].detail, '1/2 workers');
  assert.equal(fractionDone(p), 0.5);
  p = applyProgress(p, msg({ kind: 'message', text: 'hello' }));
  const deployment = { name: 'n', url: 'http://127.0.0.1:9/' } as IProgressMessage['deployment'];
  p = applyProgress(p, msg({ kind: 'done', deployment, text: 'parity: OK' }));
  assert.deepEqual([p.finished, p.error, p.url, p.messages], [true, null, 'http://127.0.0.1:9/', ['hello', 'parity: OK']]);
  const failed = applyProgress(newProgress('n'), msg({ kind: 'error', text: 'bad name' }));
  assert.deepEqual([failed.finished, failed.error], [true, 'bad name']);
});

test('the probe bundle is checked', () => {
  const pipelines = [{ variable: 'nlp', lang: 'en', components: ['sentencizer'], size_bytes: 0 }];
  assert.deepEqual(parsePipelines({ pipelines }), pipelines);
  assert.throws(() => parsePipelines({}), /not a list of pipelines/);
});

test('results are summarized the spaCy way', () => {
  assert.equal(summarizeResult({ ents: [{ text: 'Apple', label: 'ORG' }] }), 'Apple (ORG)');
  assert.equal(summarizeResult({ cats: { POS: 0.9, NEG: 0.1 } }), 'POS 0.90 · NEG 0.10');
  assert.equal(summarizeResult({ tokens: [{ text: 'Hi' }, { text: '!' }] }), '2 token(s): Hi · !');
  assert.equal(summarizeResult({ sents: ['a', 'b'] }), '2 sentence(s)');
});

test('errors read as message and what to do', () => {
  assert.equal(errorText({ message: 'no such deployment', todo: 'deploy it' }), 'no such deployment → deploy it');
  assert.equal(errorText(new Error('boom')), 'boom');
  assert.equal(errorText('plain'), 'plain');
});

test('status lines show health, traffic, latency and cost', () => {
  const hour = { window: '1h', requests: 120, errors: 2, client_errors: 3, throttled: 1, p50_ms: 12.4, p99_ms: 80, cold_starts: null };
  const status: IStatus = {
    name: 'r', target: 'local', version: 2, health: 'ok', health_detail: '', health_ms: 3.25,
    last_hour: hour, last_day: { ...hour, window: '24h', throttled: 0, p50_ms: null, p99_ms: null },
    cost_this_month_usd: null, cost_detail: 'local target: no cost', metrics_detail: '', checked_at: '', url: ''
  };
  assert.deepEqual(statusLines(status), [
    'health: ok (3.3 ms)',
    'last hour: 120 req · 2 err · 1 throttled · p50 12 ms · p99 80 ms',
    'last day: 120 req · 2 err · p50 — · p99 —',
    'cost: n/a (local target: no cost)'
  ]);
  const aws = { ...status, health: 'down', health_detail: 'no answer', last_hour: null, last_day: null,
    metrics_detail: 'metrics unavailable: no credentials', cost_this_month_usd: 1.5, cost_detail: 'Lambda' };
  assert.deepEqual(statusLines(aws), ['health: down (3.3 ms) — no answer', 'last hour: no metrics', 'last day: no metrics',
    'metrics unavailable: no credentials', 'cost: $1.50 this month (Lambda)']);
  assert.equal(windowSummary({ ...hour, cold_starts: 4 }), '120 req · 2 err · 1 throttled · p50 12 ms · p99 80 ms · 4 cold');
});
