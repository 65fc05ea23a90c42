/**
 * A target's options as form fields: what each field starts with (the declared default), and the
 * {name: value} a deploy sends. Pure, so the rules are unit tested without a browser.
 */
import type { IOptionInfo, ITargetInfo, ITargetList } from './models';

/** What a field holds while the user edits it: text for typed fields, a flag for bool. */
export type FieldValue = string | boolean;

/** The value a field starts with: the option's default, shown rather than hidden. */
export function initialValue(option: IOptionInfo): FieldValue {
  if (option.type === 'bool') {
    return option.default === true;
  }
  return option.default === null || option.default === undefined ? '' : String(option.default);
}

export function initialValues(options: IOptionInfo[]): Record<string, FieldValue> {
  return Object.fromEntries(options.map(o => [o.name, initialValue(o)]));
}

/** The placeholder of an empty field: its metavar, and that the target decides when left empty. */
export function placeholder(option: IOptionInfo): string {
  return option.default === null || option.default === undefined
    ? `${option.metavar ?? option.type} (target default)`
    : String(option.default);
}

export interface IParsedOptions {
  /** {name: value} of every option set to something other than its default. */
  values: Record<string, string | number | boolean>;
  /** name -> why its text is refused. */
  problems: Record<string, string>;
}

/**
 * Reads the fields: ints and floats parsed, choices checked; empty fields and fields equal to their
 * default are left out (the target applies its defaults itself), so an untouched form sends {}.
 */
export function parseOptions(options: IOptionInfo[], fields: Record<string, FieldValue>): IParsedOptions {
  const values: IParsedOptions['values'] = {};
  const problems: IParsedOptions['problems'] = {};
  for (const option of options) {
    const raw = fields[option.name] ?? initialValue(option);
    if (option.type === 'bool') {
      const flag = raw === true;
      if (flag !== (option.default === true)) {
        values[option.name] = flag;
      }
      continue;
    }
    const text = String(raw).trim();
    if (!text) {
      continue;
    }
    let value: string | number;
    if (option.type === 'int') {
      if (!/^[+-]?\d+$/.test(text)) {
        problems[option.name] = `${option.flag} takes a whole number, not "${text}"`;
        continue;
      }
      value = Number.parseInt(text, 10);
    } else if (option.type === 'float') {
      value = Number(text);
      if (!Number.isFinite(value)) {
        problems[option.name] = `${option.flag} takes a number, not "${text}"`;
        continue;
      }
    } else {
      value = text;
      if (option.type === 'choice' && option.choices && !option.choices.includes(text)) {
        problems[option.name] = `${option.flag} is one of ${option.choices.join(', ')}, not "${text}"`;
        continue;
      }
    }
    if (option.default !== null && option.default !== undefined && value === option.default) {
      continue;
    }
    values[option.name] = value;
  }
  return { values, problems };
}

/** The target a new deploy form starts on: the list's default if it names one, else the first. */
export function defaultTarget(list: ITargetList): ITargetInfo {
  return list.targets.find(t => t.name === list.default) ?? list.targets[0];
}

/** Checks an answer of GET /nimbus/api/targets; throws a readable error on anything else. */
export function parseTargets(body: unknown): ITargetList {
  const list = body as Partial<ITargetList> | null;
  if (!list || !Array.isArray(list.targets) || !list.targets.length) {
    throw new Error('The server answered GET /nimbus/api/targets with no list of targets.');
  }
  const targets = list.targets.map(t => ({
    ...t,
    title: t.title || t.name,
    stages: Array.isArray(t.stages) ? t.stages : [],
    capabilities: Array.isArray(t.capabilities) ? t.capabilities : [],
    options: Array.isArray(t.options) ? t.options : []
  }));
  return { targets, default: typeof list.default === 'string' ? list.default : targets[0].name };
}
