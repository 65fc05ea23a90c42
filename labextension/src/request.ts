import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { IErrorInfo } from './models';

/** An error answer from the server extension, with its readable message and what to do. */
export class NimbusAPIError extends Error {
  constructor(
    readonly status: number,
    readonly info: IErrorInfo
  ) {
    super(info.message);
    this.todo = info.todo;
  }
  readonly todo: string;
}

/**
 * The one way the sidebar talks to the server: GET/POST/DELETE under /nimbus/api/, authenticated by
 * ServerConnection (token and XSRF), JSON both ways, errors as NimbusAPIError.
 */
export async function requestAPI<T>(endpoint: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'nimbus', 'api', endpoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new NimbusAPIError(0, {
      error: 'network',
      message: `The Jupyter server did not answer (${String(error)}).`,
      todo: 'check that JupyterLab is still running'
    });
  }
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const info = body as Partial<IErrorInfo> | null;
    if (response.status === 404 && !info?.error) {
      throw new NimbusAPIError(404, {
        error: 'no_extension',
        message: 'The nimbus_jupyter server extension is not running.',
        todo: 'pip install nimbus-jupyter in the environment that runs JupyterLab, then restart JupyterLab'
      });
    }
    throw new NimbusAPIError(response.status, {
      error: info?.error ?? 'http_error',
      message: info?.message ?? `${response.status} ${response.statusText}`,
      todo: info?.todo ?? ''
    });
  }
  return body as T;
}
