// Shared steps of the sidebar's UI tests: what a user does in the lab, as small helpers.
import { expect, IJupyterLabPageFixture } from '@jupyterlab/galata';
import type { Locator, Page, Route } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/** Screenshots land here (gitignored), kept after the run for a person to look at. */
export const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts', 'screenshots');
fs.mkdirSync(ARTIFACTS, { recursive: true });

export async function shot(target: Locator | Page, name: string): Promise<void> {
  await target.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

/** A GET of the deployment list (ServerConnection adds a cache-busting ``?<time>`` to GETs). */
export function isList(r: { url(): string }): boolean {
  return /\/nimbus\/api\/deployments(\?\d*)?$/.test(r.url());
}

/** A GET of one deployment's status. */
export function isStatus(r: { url(): string }, name: string): boolean {
  return new RegExp(`/nimbus/api/deployments/${name}/status(\\?\\d*)?$`).test(r.url());
}

/** The settings a test's lab starts with: the sidebar polls every second (15 s for users). */
export const FAST_POLL = { 'nimbus-jupyter:sidebar': { refreshSeconds: 1 } };

export async function openPanel(page: IJupyterLabPageFixture): Promise<Locator> {
  await page.sidebar.openTab('nimbus-sidebar');
  return page.locator('#nimbus-sidebar');
}

/** A new notebook whose cells are ``cells``, each run in turn. */
export async function notebookWith(page: IJupyterLabPageFixture, name: string, cells: string[]): Promise<void> {
  await page.notebook.createNew(name);
  await page.notebook.setCell(0, 'code', cells[0]);
  await page.notebook.runCell(0, { inplace: true });
  for (const code of cells.slice(1)) {
    await runCode(page, code);
  }
}

/** Adds a cell at the end of the active notebook, runs it, returns its text output. */
export async function runCode(page: IJupyterLabPageFixture, code: string): Promise<string> {
  await page.notebook.addCell('code', code);
  const last = (await page.notebook.getCellCount()) - 1;
  await page.notebook.runCell(last, { inplace: true });
  return ((await page.notebook.getCellTextOutput(last)) ?? []).join('\n');
}

export const PIPELINE = 'import spacy\nnlp = spacy.blank("en")\nnlp.add_pipe("sentencizer")';

/** Deploys ``variable`` as ``name`` with the magic (the panel sees it through the shared registry). */
export async function deployWithMagic(page: IJupyterLabPageFixture, name: string, variable = 'nlp'): Promise<void> {
  const out = await runCode(page, `%load_ext nimbus_jupyter\nd = %nimbus_deploy ${variable} --name ${name} --samples "A kettle."\nprint(d.status)`);
  expect(out).toContain('ready');
}

/** Stops a deployment's server behind Nimbus's back (a crash): the registry still lists it, dead. */
export async function killServer(page: IJupyterLabPageFixture, name: string): Promise<void> {
  await runCode(page, [
    'import os, signal',
    'from nimbus_jupyter.core.registry import Registry',
    `os.killpg(Registry().get("${name}").target_data["pid"], signal.SIGKILL)`
  ].join('\n'));
}

/**
 * Holds every answer to GET /nimbus/api/deployments until ``release()``: the server answers (its body is
 * fetched at once, so it is what the server said then), the browser gets it only later.
 */
export async function holdLists(page: Page): Promise<{ held: () => number; release: () => Promise<void> }> {
  const waiting: Array<() => Promise<void>> = [];
  const pattern = /\/nimbus\/api\/deployments(\?.*)?$/;
  const handler = async (route: Route) => {
    if (route.request().method() !== 'GET') {
      return route.continue();
    }
    const response = await route.fetch();
    const body = await response.text();
    waiting.push(() => route.fulfill({ response, body }));
  };
  await page.route(pattern, handler);
  return {
    held: () => waiting.length,
    release: async () => {
      await page.unroute(pattern, handler);
      for (const fulfill of waiting.splice(0)) {
        await fulfill();
      }
    }
  };
}

/**
 * Records every text ``selector`` shows from now on (each DOM change), so a test can say what never
 * appeared, not only what is there at the end.
 */
export async function recordTexts(page: Page, selector: string, key: string): Promise<() => Promise<string[]>> {
  await page.evaluate(([sel, k]) => {
    const seen: string[] = [];
    (window as unknown as Record<string, string[]>)[k] = seen;
    const note = () => {
      const el = document.querySelector(sel);
      const text = el ? (el as HTMLElement).innerText : '';
      if (seen[seen.length - 1] !== text) {
        seen.push(text);
      }
    };
    note();
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  }, [selector, key]);
  return () => page.evaluate(k => (window as unknown as Record<string, string[]>)[k], key);
}

/** Whether any element of the locator sticks out of ``box`` on the right (text not wrapped). */
export async function overflows(box: Locator): Promise<string[]> {
  return box.evaluate(root => {
    const limit = root.getBoundingClientRect().right + 0.5;
    const out: string[] = [];
    if (root.scrollWidth > root.clientWidth + 1) {
      out.push(`the box scrolls sideways (${root.scrollWidth} > ${root.clientWidth})`);
    }
    root.querySelectorAll('*').forEach(el => {
      const r = el.getBoundingClientRect();
      if (r.width && r.right > limit) {
        out.push(`${el.tagName.toLowerCase()}.${(el as HTMLElement).className}: right ${Math.round(r.right)} > ${Math.round(limit)}`);
      }
    });
    return out;
  });
}

/** Destroys what a test deployed, whether it passed or not, so the next test starts from an empty list. */
export function cleanup(...names: string[]): void {
  const code = [
    'import sys',
    'from nimbus_jupyter import api',
    'from nimbus_jupyter.core.registry import Registry',
    'for name in sys.argv[1:]:',
    '    if Registry().get(name) is not None:',
    '        print(api.destroy(name))'
  ].join('\n');
  execFileSync(process.env.PYTHON || 'python', ['-c', code, ...names], { stdio: 'inherit', env: process.env, timeout: 60000 });
}
