/**
 * The sidebar's React view of a SidebarStore snapshot. React keeps every row's DOM nodes (keyed by
 * deployment name and pipeline variable) from one refresh to the next, so a refresh changes text in place:
 * the Test box keeps its focus, caret and text, an open <details> stays open, a half-filled deploy form
 * keeps what was typed. No state is kept here that outlives what it is about; the store decides that.
 */
import { HTMLSelect } from '@jupyterlab/ui-components';
import * as React from 'react';

import {
  formatBytes,
  formatTime,
  fractionDone,
  IDeployProgress,
  nameProblem,
  statusLines,
  suggestName,
  summarizeResult
} from './helpers';
import type { IDeployment, IOptionInfo, IPipeline, ITargetInfo } from './models';
import { defaultTarget, FieldValue, initialValues, parseOptions, placeholder } from './options';
import { RESTARTING_NOTE } from './retry';
import type { IRowState, ISnapshot, IStatusState, ITestState, SidebarStore } from './store';

/** What the view needs from JupyterLab (dialogs, clipboard), passed in so the store stays pure. */
export interface IViewActions {
  confirmDestroy(name: string): Promise<boolean>;
  copy(text: string): void;
  refresh(): void;
}

interface IProps {
  store: SidebarStore;
  actions: IViewActions;
}

const STAGE_ICON: Record<string, string> = { pending: '○', running: '◐', done: '✔', failed: '✖', skipped: '–' };

function Button(props: React.ButtonHTMLAttributes<HTMLButtonElement> & { kind?: string }): JSX.Element {
  const { kind = '', className = '', ...rest } = props;
  return <button type="button" className={`jp-Button jp-mod-styled ${kind} ${className}`.trim()} {...rest} />;
}

/** The endpoint as a real link: it opens in a new tab, without giving that tab this window. */
function UrlLink({ url }: { url: string | null | undefined }): JSX.Element {
  if (!url) {
    return <span className="jp-NimbusPanel-url" data-nimbus="url">—</span>;
  }
  return (
    <a className="jp-NimbusPanel-url" data-nimbus="url" href={url} target="_blank" rel="noopener noreferrer" title={`Open ${url} in a new tab`}>
      {url}
    </a>
  );
}

export function Sidebar({ store, actions }: IProps): JSX.Element {
  const s = React.useSyncExternalStore(store.subscribe, store.getSnapshot);
  return (
    <>
      <header className="jp-NimbusPanel-header">
        <h2>Nimbus</h2>
        <Button kind="jp-NimbusPanel-refresh" title="Refresh pipelines and deployments" data-nimbus="refresh" onClick={actions.refresh}>
          ↻
        </Button>
      </header>
      <h3>Pipelines</h3>
      <Pipelines s={s} store={store} />
      <Progress progress={s.progress} store={store} />
      <h3>Deployments</h3>
      <Deployments s={s} store={store} actions={actions} />
    </>
  );
}

// -- pipelines ------------------------------------------------------------------------------------
function Note({ text, state = '', error = false }: { text: string; state?: string; error?: boolean }): JSX.Element {
  return (
    <p className={error ? 'jp-NimbusPanel-error' : 'jp-NimbusPanel-note'} data-nimbus="pipelines-note" data-state={state}>
      {text}
    </p>
  );
}

function pipelinesNote(s: ISnapshot): JSX.Element | null {
  switch (s.phase) {
    case 'no-kernel':
      return <Note text="This notebook has no kernel running: start one to see its pipelines." />;
    case 'restarting':
      return <Note text={RESTARTING_NOTE} state="restarting" />;
    case 'starting':
      return <Note text="Kernel starting…" state="restarting" />;
    case 'dead':
      return <Note text="The kernel has died: restart it (Kernel › Restart Kernel…) to see its pipelines." state="dead" />;
  }
  if (s.pipelinesError) {
    return <Note text={s.pipelinesError} state="error" error />;
  }
  if (s.pipelines === null) {
    return <Note text={s.probing ? 'Asking the kernel…' : 'Waiting for the kernel…'} state="asking" />;
  }
  if (!s.pipelines.length) {
    return <Note text='No spaCy pipelines in this kernel yet: run a cell that makes one, e.g. nlp = spacy.load("en_core_web_sm").' />;
  }
  return null;
}

function Pipelines({ s, store }: { s: ISnapshot; store: SidebarStore }): JSX.Element {
  if (!s.notebook) {
    return (
      <div className="jp-NimbusPanel-pipelines" data-nimbus="pipelines">
        <Note text="No notebook is open: open one (or click into it) to see the spaCy pipelines in its kernel." />
      </div>
    );
  }
  const note = pipelinesNote(s);
  const showList = s.phase === 'ready' && !s.pipelinesError && s.pipelines;
  return (
    <div className="jp-NimbusPanel-pipelines" data-nimbus="pipelines">
      <p className="jp-NimbusPanel-where">
        In <b>{s.notebook}</b>'s kernel
      </p>
      {note}
      {showList && s.pipelines!.map(p => <PipelineRow key={p.variable} p={p} s={s} store={store} />)}
    </div>
  );
}

function PipelineRow({ p, s, store }: { p: IPipeline; s: ISnapshot; store: SidebarStore }): JSX.Element {
  const [open, setOpen] = React.useState(false);
  const deploying = s.progress !== null && !s.progress.finished;
  return (
    <div className="jp-NimbusPanel-card" data-nimbus-pipeline={p.variable}>
      <div className="jp-NimbusPanel-row">
        <code className="jp-NimbusPanel-name">{p.variable}</code>
        <Button kind="jp-NimbusPanel-primary" disabled={deploying} onClick={() => setOpen(!open)} aria-expanded={open}>
          Deploy…
        </Button>
      </div>
      <div className="jp-NimbusPanel-meta">
        {`${p.lang} · ${p.components.join(', ') || 'no components'} · ${formatBytes(p.size_bytes)}`}
      </div>
      {open && (
        <DeployForm
          p={p}
          s={s}
          onDeploy={(name, target, options) => {
            setOpen(false);
            void store.deploy(p.variable, name, target, options);
          }}
        />
      )}
    </div>
  );
}

function OptionField({
  option,
  value,
  problem,
  onChange
}: {
  option: IOptionInfo;
  value: FieldValue;
  problem: string | undefined;
  onChange: (value: FieldValue) => void;
}): JSX.Element {
  const id = `nimbus-option-${option.name}`;
  const hasDefault = option.default !== null && option.default !== undefined;
  const help = [option.help, hasDefault ? `default ${String(option.default)}` : 'default: the target decides']
    .filter(Boolean)
    .join(' · ');
  let input: JSX.Element;
  switch (option.type) {
    case 'bool':
      input = (
        <input id={id} type="checkbox" checked={value === true} data-nimbus="option-input" onChange={e => onChange(e.currentTarget.checked)} />
      );
      break;
    case 'choice': {
      const choices = option.choices ?? [];
      const items = [...(hasDefault ? [] : [{ value: '', label: '(target default)' }]), ...choices.map(c => ({ value: c, label: c }))];
      input = (
        <HTMLSelect id={id} value={String(value)} options={items} data-nimbus="option-input" onChange={e => onChange(e.currentTarget.value)} />
      );
      break;
    }
    default:
      input = (
        <input
          id={id}
          className="jp-mod-styled"
          type={option.type === 'str' ? 'text' : 'number'}
          step={option.type === 'int' ? 1 : option.type === 'float' ? 'any' : undefined}
          value={String(value)}
          placeholder={placeholder(option)}
          data-nimbus="option-input"
          onChange={e => onChange(e.currentTarget.value)}
        />
      );
  }
  return (
    <div className={`jp-NimbusPanel-option jp-mod-${option.type}`} data-nimbus-option={option.name} data-type={option.type}>
      <label htmlFor={id} title={option.flag}>
        {option.name}
      </label>
      {input}
      <div className="jp-NimbusPanel-help">{help}</div>
      {problem && <div className="jp-NimbusPanel-error">{problem}</div>}
    </div>
  );
}

function DeployForm({
  p,
  s,
  onDeploy
}: {
  p: IPipeline;
  s: ISnapshot;
  onDeploy: (name: string, target: string, options: Record<string, unknown>) => void;
}): JSX.Element {
  const [name, setName] = React.useState(suggestName(p.variable));
  const [targetName, setTargetName] = React.useState(defaultTarget(s.targets).name);
  const target: ITargetInfo = s.targets.targets.find(t => t.name === targetName) ?? defaultTarget(s.targets);
  const [fields, setFields] = React.useState<Record<string, Record<string, FieldValue>>>({});
  const values = fields[target.name] ?? initialValues(target.options);
  const [nameError, setNameError] = React.useState<string | null>(null);
  const [problems, setProblems] = React.useState<Record<string, string>>({});
  const go = () => {
    const issue = nameProblem(name);
    setNameError(issue);
    const parsed = parseOptions(target.options, values);
    setProblems(parsed.problems);
    if (!issue && !Object.keys(parsed.problems).length) {
      onDeploy(name, target.name, parsed.values);
    }
  };
  return (
    <div className="jp-NimbusPanel-form" data-nimbus="deploy-form">
      <label>
        Name
        <input
          className="jp-mod-styled"
          value={name}
          aria-label="deployment name"
          data-nimbus="deploy-name"
          onChange={e => {
            setName(e.currentTarget.value);
            setNameError(nameProblem(e.currentTarget.value));
          }}
        />
      </label>
      <label>
        Target
        <HTMLSelect
          aria-label="target"
          data-nimbus="deploy-target"
          value={target.name}
          options={s.targets.targets.map(t => ({ value: t.name, label: t.title || t.name }))}
          onChange={e => {
            setTargetName(e.currentTarget.value);
            setProblems({});
          }}
        />
      </label>
      {s.targetsNote && <div className="jp-NimbusPanel-note">{s.targetsNote}</div>}
      {target.options.length > 0 && (
        <fieldset className="jp-NimbusPanel-options" data-nimbus="deploy-options">
          <legend>{target.name} options</legend>
          {target.options.map(o => (
            <OptionField
              key={`${target.name}.${o.name}`}
              option={o}
              value={values[o.name]}
              problem={problems[o.name]}
              onChange={v => setFields({ ...fields, [target.name]: { ...values, [o.name]: v } })}
            />
          ))}
        </fieldset>
      )}
      <Button kind="jp-mod-accept" data-nimbus="deploy-go" title="Deploy in the kernel, as %nimbus_deploy does" onClick={go}>
        Deploy
      </Button>
      <div className="jp-NimbusPanel-error" data-nimbus="deploy-name-problem">
        {nameError ?? ''}
      </div>
    </div>
  );
}

function Progress({ progress: p, store }: { progress: IDeployProgress | null; store: SidebarStore }): JSX.Element {
  if (!p) {
    return <div className="jp-NimbusPanel-progress" data-nimbus="progress" />;
  }
  const state = p.error ? 'failed' : p.finished ? 'done' : 'running';
  const title = p.finished ? (p.error ? 'Deploy failed: ' : 'Deployed ') : 'Deploying ';
  return (
    <div className="jp-NimbusPanel-progress" data-nimbus="progress">
      <div className="jp-NimbusPanel-card" data-nimbus="deploy-progress" data-state={state} aria-busy={!p.finished}>
        <div className="jp-NimbusPanel-row">
          <span>
            {title}
            <code>{p.name}</code>
          </span>
          {p.finished && (
            <Button kind="jp-NimbusPanel-close" title="Dismiss" onClick={() => store.dismissProgress()}>
              ×
            </Button>
          )}
        </div>
        <div className={`jp-NimbusPanel-bar jp-mod-${state}`}>
          <div style={{ width: `${Math.round(fractionDone(p) * 100)}%` }} />
        </div>
        <ul className="jp-NimbusPanel-stages">
          {p.stages.map(st => (
            <li key={st.stage} className={`jp-mod-${st.state}`} data-nimbus-stage={st.stage} data-state={st.state}>
              <span className="jp-NimbusPanel-icon">{STAGE_ICON[st.state]}</span> {st.stage}
              {st.seconds !== null && <span className="jp-NimbusPanel-secs"> {st.seconds.toFixed(1)} s</span>}
              {st.detail && <span className="jp-NimbusPanel-detail"> {st.detail}</span>}
            </li>
          ))}
        </ul>
        {p.messages.map((m, i) => (
          <div key={i} className="jp-NimbusPanel-meta">
            {m}
          </div>
        ))}
        {p.url && (
          <div className="jp-NimbusPanel-meta">
            Endpoint: <UrlLink url={p.url} />
          </div>
        )}
        {p.error && (
          <div className="jp-NimbusPanel-error" data-nimbus="deploy-error">
            {p.error}
          </div>
        )}
      </div>
    </div>
  );
}

// -- deployments ----------------------------------------------------------------------------------
function Deployments({ s, store, actions }: { s: ISnapshot; store: SidebarStore; actions: IViewActions }): JSX.Element {
  return (
    <div className="jp-NimbusPanel-deployments" data-nimbus="deployments">
      {s.deploymentsError && (
        <p className="jp-NimbusPanel-error" data-nimbus="deployments-error">
          {s.deploymentsError}
        </p>
      )}
      {s.deploymentsLoaded && !s.deployments.length && !s.deploymentsError && <p className="jp-NimbusPanel-note">No deployments yet.</p>}
      {s.deployments.map(d => (
        <DeploymentRow key={d.name} d={d} row={s.rows[d.name]} store={store} actions={actions} />
      ))}
    </div>
  );
}

function DeploymentRow({
  d,
  row,
  store,
  actions
}: {
  d: IDeployment;
  row: IRowState | undefined;
  store: SidebarStore;
  actions: IViewActions;
}): JSX.Element {
  const [copied, setCopied] = React.useState(false);
  const destroying = row?.destroying ?? false;
  const testOpen = !!row?.test;
  const statusOpen = !!row?.status;
  const destroy = async () => {
    if (await actions.confirmDestroy(d.name)) {
      await store.destroy(d.name);
    }
  };
  return (
    <div className="jp-NimbusPanel-card" data-nimbus-deployment={d.name} data-status={d.status} aria-busy={destroying}>
      <div className="jp-NimbusPanel-row">
        <code className="jp-NimbusPanel-name">{d.name}</code>
        <span className={`jp-NimbusPanel-status jp-mod-${d.status}`} data-nimbus="status">
          {destroying ? 'destroying…' : d.status}
        </span>
      </div>
      <div className="jp-NimbusPanel-meta" data-nimbus="created">
        {`${d.target} · v${d.version} · created ${formatTime(d.created)}`}
      </div>
      <UrlLink url={d.url} />
      {d.detail && (
        <div className="jp-NimbusPanel-error" data-nimbus="deployment-detail">
          {d.detail}
        </div>
      )}
      {row?.error && (
        <div className="jp-NimbusPanel-error" data-nimbus="destroy-error">
          {row.error}
        </div>
      )}
      <div className="jp-NimbusPanel-actions">
        <Button disabled={destroying || (d.status !== 'ready' && !testOpen)} onClick={() => store.toggleTest(d.name)} data-nimbus="test-toggle">
          {testOpen ? 'Hide test' : 'Test'}
        </Button>
        <Button
          disabled={destroying}
          title="Health, requests and errors, p50/p99 latency and cost"
          data-nimbus="status-toggle"
          onClick={() => store.toggleStatus(d.name)}
        >
          {statusOpen ? 'Hide status' : 'Status'}
        </Button>
        <Button
          disabled={destroying || !d.url}
          data-nimbus="copy-url"
          onClick={() => {
            actions.copy(d.url);
            setCopied(true);
            window.setTimeout(() => setCopied(false), 1500);
          }}
        >
          {copied ? 'Copied' : 'Copy URL'}
        </Button>
        <Button kind="jp-mod-warn" disabled={destroying} data-nimbus="destroy" aria-busy={destroying} onClick={() => void destroy()}>
          {destroying ? 'Destroying…' : 'Destroy'}
        </Button>
      </div>
      {row?.status && <StatusBox d={d} state={row.status} />}
      {row?.test && <TestBox d={d} state={row.test} store={store} />}
    </div>
  );
}

function StatusBox({ d, state }: { d: IDeployment; state: IStatusState }): JSX.Element {
  return (
    <div className="jp-NimbusPanel-meta jp-NimbusPanel-box" data-nimbus="status-detail" aria-busy={state.busy}>
      {state.error && <div className="jp-NimbusPanel-error">{state.error}</div>}
      {!state.error && state.status && statusLines(state.status, [d.detail]).map((line, i) => <div key={i}>{line}</div>)}
      {!state.error && !state.status && <div>Checking…</div>}
    </div>
  );
}

function TestBox({ d, state, store }: { d: IDeployment; state: ITestState; store: SidebarStore }): JSX.Element {
  const ready = d.status === 'ready';
  const r = state.result;
  return (
    <div className="jp-NimbusPanel-test" data-nimbus="test">
      <textarea
        className="jp-mod-styled"
        rows={2}
        placeholder="Type a text to send to the endpoint"
        data-nimbus="test-text"
        defaultValue={store.testText(d.name)}
        onInput={e => store.setTestText(d.name, e.currentTarget.value)}
      />
      <Button kind="jp-mod-accept" data-nimbus="test-run" disabled={state.busy || !ready} aria-busy={state.busy} onClick={() => void store.runTest(d.name)}>
        {state.busy ? 'Running…' : 'Run'}
      </Button>
      <div className="jp-NimbusPanel-result" data-nimbus="test-result">
        {!ready && (
          <div className="jp-NimbusPanel-note">
            {`${d.name} is ${d.status}${d.detail ? ' (the reason is above)' : ''}: deploy it again to test it.`}
          </div>
        )}
        {ready && state.error && <div className="jp-NimbusPanel-error">{state.error}</div>}
        {ready && !state.error && r && (
          <>
            <div>{summarizeResult(r.results[0] ?? {})}</div>
            <details data-nimbus="test-details">
              <summary>{`${r.fields.join(', ')} · v${r.version}`}</summary>
              <pre>{JSON.stringify(r.results[0], null, 1)}</pre>
            </details>
          </>
        )}
      </div>
    </div>
  );
}
