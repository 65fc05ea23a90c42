// A target's options as form fields: defaults shown, {name: value} sent, each type read its own way.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { IOptionInfo, ITargetList } from '../src/models';
import { LOCAL_ONLY } from '../src/models';
import { defaultTarget, initialValues, parseOptions, parseTargets, placeholder } from '../src/options';

function option(partial: Partial<IOptionInfo>): IOptionInfo {
  return { name: 'x', flag: '--x', type: 'str', default: null, help: '', choices: null, metavar: null, ...partial };
}

const AWS: IOptionInfo[] = [
  option({ name: 'memory', flag: '--memory', type: 'int', default: 1024, metavar: 'MB' }),
  option({ name: 'throttle_rate', flag: '--throttle-rate', type: 'float', default: null, metavar: 'RPS' }),
  option({ name: 'region', flag: '--region', type: 'str', default: null, metavar: 'REGION' }),
  option({ name: 'arch', flag: '--arch', type: 'choice', default: 'x86_64', choices: ['x86_64', 'arm64'] }),
  option({ name: 'keep_warm', flag: '--keep-warm', type: 'bool', default: false })
];

test('fields start with the declared defaults, shown', () => {
  assert.deepEqual(initialValues(AWS), { memory: '1024', throttle_rate: '', region: '', arch: 'x86_64', keep_warm: false });
  assert.equal(placeholder(AWS[1]), 'RPS (target default)');
  assert.equal(placeholder(AWS[0]), '1024');
});

test('an untouched form sends no options; changed fields are sent as {name: value} in their type', () => {
  assert.deepEqual(parseOptions(AWS, initialValues(AWS)), { values: {}, problems: {} });
  const fields = { ...initialValues(AWS), memory: ' 2048 ', throttle_rate: '12.5', region: 'eu-west-1', arch: 'arm64', keep_warm: true };
  assert.deepEqual(parseOptions(AWS, fields), {
    values: { memory: 2048, throttle_rate: 12.5, region: 'eu-west-1', arch: 'arm64', keep_warm: true },
    problems: {}
  });
  // Set back to the default: left out again (the target applies its own default).
  assert.deepEqual(parseOptions(AWS, { ...fields, memory: '1024', arch: 'x86_64', keep_warm: false }).values,
    { throttle_rate: 12.5, region: 'eu-west-1' });
});

test('text that does not fit an option type is refused with the flag and what it takes', () => {
  const { values, problems } = parseOptions(AWS, { memory: '2 GB', throttle_rate: 'fast', arch: 'sparc' });
  assert.deepEqual(values, {});
  assert.deepEqual(problems, {
    memory: '--memory takes a whole number, not "2 GB"',
    throttle_rate: '--throttle-rate takes a number, not "fast"',
    arch: '--arch is one of x86_64, arm64, not "sparc"'
  });
  assert.deepEqual(parseOptions(AWS, { memory: '1.5' }).problems, { memory: '--memory takes a whole number, not "1.5"' });
});

test('the target list is read with care, and the default target is the one it names', () => {
  const list: ITargetList = parseTargets({
    targets: [
      { name: 'local', title: 'Local (127.0.0.1)', stages: ['serialize'], capabilities: ['operate'], options: [AWS[0]] },
      { name: 'aws', title: '', stages: null, capabilities: undefined, options: undefined }
    ],
    default: 'aws'
  });
  assert.equal(defaultTarget(list).name, 'aws');
  assert.deepEqual(list.targets[1], { name: 'aws', title: 'aws', stages: [], capabilities: [], options: [] });
  assert.equal(defaultTarget({ ...list, default: 'gone' }).name, 'local');
  assert.throws(() => parseTargets({ targets: [] }), /no list of targets/);
  assert.throws(() => parseTargets(null), /no list of targets/);
  assert.deepEqual(defaultTarget(LOCAL_ONLY), { name: 'local', title: 'Local (127.0.0.1)', stages: [], capabilities: [], options: [] });
});
