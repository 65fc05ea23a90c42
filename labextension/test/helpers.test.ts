// Unit tests of the sidebar's pure helpers, with node's own test runner (no browser, no JupyterLab).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  applyProgress,
  deployCode,
  errorText,
  formatBytes,
  formatTime,
  fractionDone,
  isRepeat,
  withoutRepeats,
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
  assert.ok(code.endsWith('deploy_from_sidebar("nlp", "it\\"s\\\\x", "local")'), code);
  assert.ok(!code.includes('\n'));
});

test('deploy code passes target options as {name: value} through json.loads', () => {
  const code = deployCode('nlp', 'n', 'aws', { memory: 2048, arch: 'arm64', verbose: true, note: 'a "b"' });
  const m = /, options=__import__\('json'\)\.loads\((".*")\)\)$/.exec(code);
  assert.ok(m, code);
  // The Python string literal is a JSON string literal too: decode it twice to get the options back.
  assert.deepEqual(JSON.parse(JSON.parse(m[1])), { memory: 2048, arch: 'arm64', verbose: true, note: 'a "b"' });
  assert.ok(!deployCode('nlp', 'n', 'local', {}).includes('options='), 'no options: the call every kernel takes');
});

test('sizes and dates read well', () => {
  assert.equal(formatBytes(0), 'no weights');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1_500_000), '1.5 MB');
  assert.equal(formatBytes(560_000_000), '560 MB');
});

test('times name their time zone', () => {
  assert.equal(formatTime('2026-11-29T22:51:17Z', { timeZone: 'UTC' }), '2026-11-29 22:51 UTC');
  assert.equal(formatTime('2026-11-29T22:51:17+00:00', { timeZone: 'UTC', seconds: true }), '2026-11-29 22:51:17 UTC');
  // The viewer's zone, named: the same instant an hour later in Berlin, five hours earlier in New York.
  assert.equal(formatTime('2026-11-29T22:51:17Z', { timeZone: 'Europe/Berlin' }), '2026-11-29 23:51 GMT+1');
  assert.equal(formatTime('2026-11-29T22:51:17Z', { timeZone: 'America/New_York' }), '2026-11-29 17:51 EST');
  assert.equal(formatTime('2026-11-29T00:05:00Z', { timeZone: 'UTC' }), '2026-11-29 00:05 UTC', 'midnight is 00, not 24');
  assert.match(formatTime('2026-11-29T22:51:17Z'), /^2026-11-\d\d \d\d:\d\d \S+$/, 'the default zone is named too');
  assert.equal(formatTime(''), '');
  assert.equal(formatTime('yesterday'), 'yesterday');
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
    'last hour: 120 req · 2 err · 3 4xx · 1 throttled · p50 12 ms · p99 80 ms',
    'last day: 120 req · 2 err · 3 4xx · p50 — · p99 —',
    'cost: n/a (local target: no cost)'
  ]);
  const aws = { ...status, health: 'down', health_detail: 'no answer', last_hour: null, last_day: null,
    metrics_detail: 'metrics unavailable: no credentials', cost_this_month_usd: 1.5, cost_detail: 'Lambda',
    checked_at: '2026-11-29T22:51:17Z' };
  assert.deepEqual(statusLines(aws, [], 'UTC'), ['health: down (3.3 ms) — no answer', 'last hour: no metrics', 'last day: no metrics',
    'metrics unavailable: no credentials', 'cost: $1.50 this month (Lambda)', 'checked at 2026-11-29 22:51:17 UTC']);
  assert.equal(windowSummary({ ...hour, cold_starts: 4 }), '120 req · 2 err · 3 4xx · 1 throttled · p50 12 ms · p99 80 ms · 4 cold');
  assert.equal(windowSummary({ ...hour, client_errors: 0 }), '120 req · 2 err · 0 4xx · 1 throttled · p50 12 ms · p99 80 ms');
});

test('a dead deployment says why once: Status leaves out what the row shows already', () => {
  const reason = 'the server at 127.0.0.1:8123 does not answer (connection refused); run %nimbus_deploy again to restart it';
  const down: IStatus = {
    name: 'r', target: 'local', version: 1, health: 'down', health_detail: 'the server at 127.0.0.1:8123 does not answer (connection refused)',
    health_ms: null, last_hour: null, last_day: null, cost_this_month_usd: null, cost_detail: '',
    metrics_detail: 'the server at 127.0.0.1:8123 does not answer (connection refused).', checked_at: '', url: ''
  };
  const lines = statusLines(down, [reason]);
  assert.deepEqual(lines, ['health: down', 'last hour: no metrics', 'last day: no metrics', 'cost: n/a']);
  assert.equal(lines.join('\n').includes('connection refused'), false);
  assert.equal(isRepeat('Connection  refused.', [reason]), true, 'case, spaces and end punctuation do not matter');
  assert.equal(isRepeat('disk full', [reason]), false);
  assert.equal(isRepeat('', []), true);
  assert.equal(isRepeat('x', [null, undefined, '']), false);
});

test('Status keeps only what is new when its detail joins the row\'s reason to its own', () => {
  // What the server sends for a local deployment whose process was killed: the reason on the row, and a
  // health detail made of the client's error and that same reason.
  const reason = 'the server process 4242 is not running (see /work/test-artifacts/ui-nimbus-home/deployments/narrow-demo/server.log); run %nimbus_deploy again to restart it';
  const health = 'the endpoint http://127.0.0.1:40123 did not answer: connection refused; ' + reason;
  assert.equal(withoutRepeats(health, [reason]), 'the endpoint http://127.0.0.1:40123 did not answer: connection refused');
  assert.equal(withoutRepeats('metrics unavailable: the endpoint http://127.0.0.1:40123 did not answer: connection refused',
    [reason, 'the endpoint http://127.0.0.1:40123 did not answer: connection refused']), '');
  assert.equal(withoutRepeats('metrics unavailable: no credentials', [reason]), 'metrics unavailable: no credentials');
  const down: IStatus = {
    name: 'narrow-demo', target: 'local', version: 1, health: 'down', health_detail: health, health_ms: 1.5,
    last_hour: null, last_day: null, cost_this_month_usd: null, cost_detail: '', checked_at: '', url: '',
    metrics_detail: 'metrics unavailable: the endpoint http://127.0.0.1:40123 did not answer: connection refused'
  };
  const text = statusLines(down, [reason]).join('\n');
  assert.equal(text.split('is not running').length - 1, 0);
  assert.equal(text.split('connection refused').length - 1, 1);
});
