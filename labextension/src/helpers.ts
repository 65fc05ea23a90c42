/**
 * Pure helpers: no JupyterLab imports, so they are unit tested with node's test runner.
 */
import type { IPipeline, IProgressMessage, IStatus, IWindow } from './models';

/** The same rule as nimbus_jupyter.api.NAME_PATTERN. */
export const NAME_PATTERN = /^[a-z][a-z0-9-]{0,39}$/;

/** Why a deployment name is refused, or null when it is fine. */
export function nameProblem(name: string): string | null {
  if (NAME_PATTERN.test(name)) {
    return null;
  }
  return 'Use lowercase letters, digits and hyphens, starting with a letter, at most 40 characters.';
}

/** The default deployment name for a variable, as the magic makes it (underscores become hyphens). */
export function suggestName(variable: string): string {
  let name = variable.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  if (!/^[a-z]/.test(name)) {
    name = 'p-' + name;
  }
  return name.slice(0, 40).replace(/-+$/, '') || 'my-pipeline';
}

export function formatBytes(bytes: number): string {
  if (!bytes) {
    return 'no weights';
  }
  const units = ['B', 'kB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/**
 * "2026-11-29T22:51:17Z" -> "2026-11-29 23:51 GMT+1": the viewer's own time zone (or ``timeZone``), always
 * named, so a time read off the panel is never ambiguous. Text that is not a time is returned as it is.
 */
export function formatTime(iso: string, options: { timeZone?: string; seconds?: boolean } = {}): string {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) {
    return iso || '';
  }
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone: options.timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: options.seconds ? '2-digit' : undefined,
    timeZoneName: 'short'
  });
  const part: Record<string, string> = {};
  for (const { type, value } of format.formatToParts(date)) {
    part[type] = value;
  }
  const clock = `${part.hour}:${part.minute}${options.seconds ? `:${part.second}` : ''}`;
  return `${part.year}-${part.month}-${part.day} ${clock} ${part.timeZoneName}`;
}

/** A Python string literal for any text (JSON string escapes are valid Python escapes). */
export function pyString(text: string): string {
  return JSON.stringify(text);
}

/** The silent execute that lists the kernel's pipelines; it leaves no names in the user's namespace. */
export const PROBE_CODE = "__import__('nimbus_jupyter.faces.kernel_probe', fromlist=['_']).publish_pipelines()";

/**
 * The execute that deploys from the panel: nimbus_jupyter.deploy, the magic's own code path. Target options
 * go as ``options={name: value}`` (a JSON object read with json.loads, so true/false/null stay exact), and
 * only when there are some: with none the call is the one every kernel_probe version takes.
 */
export function deployCode(
  variable: string,
  name: string,
  target: string,
  options: Record<string, unknown> = {}
): string {
  const extra = Object.keys(options).length
    ? `, options=__import__('json').loads(${pyString(JSON.stringify(options))})`
    : '';
  return (
    "__import__('nimbus_jupyter.faces.kernel_probe', fromlist=['_']).deploy_from_sidebar(" +
    `${pyString(variable)}, ${pyString(name)}, ${pyString(target)}${extra})`
  );
}

/** Reads the probe's bundle; throws a readable error on anything else. */
export function parsePipelines(data: unknown): IPipeline[] {
  const pipelines = (data as { pipelines?: unknown })?.pipelines;
  if (!Array.isArray(pipelines)) {
    throw new Error('The kernel answered with something that is not a list of pipelines.');
  }
  return pipelines as IPipeline[];
}

export type StageState = 'pending' | 'running' | 'done' | 'failed' | 'skipped';

export interface IStageView {
  stage: string;
  state: StageState;
  detail: string;
  seconds: number | null;
}

/** Everything the panel shows about one deploy in flight (or just finished). */
export interface IDeployProgress {
  name: string;
  stages: IStageView[];
  messages: string[];
  finished: boolean;
  error: string | null;
  url: string | null;
}

export function newProgress(name: string, stages: string[] = []): IDeployProgress {
  return {
    name,
    stages: stages.map(stage => ({ stage, state: 'pending', detail: '', seconds: null })),
    messages: [],
    finished: false,
    error: null,
    url: null
  };
}

/** Applies one progress message; returns a new state (the old one is not changed). */
export function applyProgress(
  progress: IDeployProgress,
  message: IProgressMessage
): IDeployProgress {
  const next: IDeployProgress = {
    ...progress,
    stages: progress.stages.map(s => ({ ...s })),
    messages: [...progress.messages]
  };
  switch (message.kind) {
    case 'start':
      return { ...newProgress(message.name, message.stages) };
    case 'stage': {
      let stage = next.stages.find(s => s.stage === message.stage);
      if (!stage) {
        stage = { stage: message.stage, state: 'pending', detail: '', seconds: null };
        next.stages.push(stage);
      }
      stage.state = message.state as StageState;
      stage.detail = message.detail;
      stage.seconds = message.seconds;
      break;
    }
    case 'progress': {
      const stage = next.stages.find(s => s.stage === message.stage);
      if (stage) {
        stage.detail = `${message.done}/${message.total} ${message.detail}`.trim();
      }
      break;
    }
    case 'message':
      next.messages.push(message.text);
      break;
    case 'done':
      next.finished = true;
      next.url = message.deployment ? message.deployment.url : null;
      if (message.text) {
        next.messages.push(message.text);
      }
      break;
    case 'error':
      next.finished = true;
      next.error = message.text;
      break;
  }
  return next;
}

/** The fraction of stages finished (done or skipped), for the progress bar. */
export function fractionDone(progress: IDeployProgress): number {
  if (!progress.stages.length) {
    return progress.finished ? 1 : 0;
  }
  const finished = progress.stages.filter(s => s.state === 'done' || s.state === 'skipped').length;
  return finished / progress.stages.length;
}

/** One line per result, for the Test box: entities, top category, else tokens or sentences. */
export function summarizeResult(result: Record<string, unknown>): string {
  const parts: string[] = [];
  const ents = result.ents as Array<{ text: string; label: string }> | undefined;
  if (Array.isArray(ents)) {
    parts.push(ents.length ? ents.map(e => `${e.text} (${e.label})`).join(', ') : 'no entities');
  }
  const cats = result.cats as Record<string, number> | undefined;
  if (cats && typeof cats === 'object') {
    const top = Object.entries(cats).sort((a, b) => b[1] - a[1]);
    if (top.length) {
      parts.push(top.slice(0, 3).map(([label, score]) => `${label} ${score.toFixed(2)}`).join(' · '));
    }
  }
  const sents = result.sents as unknown[] | undefined;
  if (Array.isArray(sents)) {
    parts.push(`${sents.length} sentence(s)`);
  }
  const tokens = result.tokens as Array<{ text?: string }> | undefined;
  if (Array.isArray(tokens) && !parts.length) {
    const shown = tokens.slice(0, 8).map(t => t.text ?? '?').join(' · ');
    parts.push(`${tokens.length} token(s): ${shown}${tokens.length > 8 ? ' …' : ''}`);
  }
  return parts.join(' | ') || JSON.stringify(result);
}

/** A readable message for anything thrown (server errors carry message and todo). */
export function errorText(error: unknown): string {
  if (error && typeof error === 'object') {
    const e = error as { message?: string; todo?: string };
    if (e.message) {
      return e.todo ? `${e.message} → ${e.todo}` : e.message;
    }
  }
  return String(error);
}

function formatMs(ms: number | null): string {
  if (ms === null || ms === undefined) {
    return '—';
  }
  return ms >= 10 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
}

/** "120 req · 2 err · 3 4xx · 1 throttled · p50 12 ms · p99 80 ms" for one window (4xx: the callers' mistakes). */
export function windowSummary(w: IWindow | null): string {
  if (!w) {
    return 'no metrics';
  }
  const parts = [`${w.requests} req`, `${w.errors} err`, `${w.client_errors ?? 0} 4xx`];
  if (w.throttled) {
    parts.push(`${w.throttled} throttled`);
  }
  parts.push(`p50 ${formatMs(w.p50_ms)}`, `p99 ${formatMs(w.p99_ms)}`);
  if (w.cold_starts !== null && w.cold_starts !== undefined) {
    parts.push(`${w.cold_starts} cold`);
  }
  return parts.join(' · ');
}

/**
 * The lines the deployment row shows under "Status": health, the last hour, the last day, cost, when it was
 * checked. ``shown``: error text the row shows already (the deployment's reason), not repeated here.
 */
export function statusLines(s: IStatus, shown: string[] = [], timeZone?: string): string[] {
  const healthDetail = withoutRepeats(s.health_detail, shown);
  const detail = healthDetail ? ` — ${healthDetail}` : '';
  const health = `health: ${s.health}${s.health_ms !== null ? ` (${formatMs(s.health_ms)})` : ''}${detail}`;
  const lines = [health, `last hour: ${windowSummary(s.last_hour)}`, `last day: ${windowSummary(s.last_day)}`];
  const metricsDetail = withoutRepeats(s.metrics_detail, [...shown, healthDetail]);
  if (metricsDetail) {
    lines.push(metricsDetail);
  }
  const cost = s.cost_this_month_usd === null
    ? `cost: n/a${s.cost_detail ? ` (${s.cost_detail})` : ''}`
    : `cost: $${s.cost_this_month_usd.toFixed(2)} this month${s.cost_detail ? ` (${s.cost_detail})` : ''}`;
  lines.push(cost);
  if (s.checked_at) {
    lines.push(`checked at ${formatTime(s.checked_at, { timeZone, seconds: true })}`);
  }
  return lines;
}

function squash(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').replace(/[\s.;:,→—-]+$/, '').trim();
}

/**
 * Whether ``text`` says nothing that ``shown`` does not already say (the same words, or words contained
 * in one shown): the panel shows each error once, where it belongs.
 */
export function isRepeat(text: string, shown: Array<string | null | undefined>): boolean {
  const t = squash(text);
  if (!t) {
    return true;
  }
  return shown.some(s => {
    const other = s ? squash(s) : '';
    return other !== '' && other.includes(t);
  });
}

/**
 * ``text`` without the clauses (parts between "; ") that ``shown`` says already, a clause's "label: "
 * aside: "down; the server process 7 is not running (see …)" next to a row that shows "the server
 * process 7 is not running (see …)" keeps only "down". Empty when nothing new is left.
 */
export function withoutRepeats(text: string, shown: Array<string | null | undefined>): string {
  if (!text) {
    return '';
  }
  const kept = text.split(/;\s+/).filter(clause => {
    const colon = clause.indexOf(': ');
    const rest = colon > 0 ? clause.slice(colon + 2) : '';
    return !isRepeat(clause, shown) && !(rest && isRepeat(rest, shown));
  });
  return kept.join('; ');
}
