/**
 * Types mirroring nimbus_jupyter/sidebar_models.py: what the server routes and the kernel probe send.
 */

export const PIPELINES_MIME = 'application/vnd.nimbus.pipelines+json';
export const PROGRESS_MIME = 'application/vnd.nimbus.progress+json';

/** DeploymentInfo: one deployment as the sidebar shows it (never the API key). */
export interface IDeployment {
  name: string;
  target: string;
  status: string; // ready | dead | failed | starting | unknown
  url: string;
  version: number;
  created: string;
  updated: string;
  lang: string;
  components: string[];
  workers: number;
  detail: string;
}

/** GET /nimbus/api/deployments */
export interface IDeploymentList {
  deployments: IDeployment[];
  home: string;
}

/** PipelineInfo: a spaCy pipeline in the kernel's namespace. */
export interface IPipeline {
  variable: string;
  lang: string;
  components: string[];
  size_bytes: number;
}

/** PredictRequest / PredictResponse: POST /nimbus/api/deployments/{name}/predict */
export interface IPredictRequest {
  texts: string[];
  fields?: string[];
}

export interface IPredictResponse {
  results: Array<Record<string, unknown>>;
  fields: string[];
  version: string;
}

/** ErrorInfo: the body of every error answer. */
export interface IErrorInfo {
  error: string;
  message: string;
  todo: string;
}

/** ProgressMessage: one message of a deploy started from the sidebar. */
export interface IProgressMessage {
  kind: 'start' | 'stage' | 'progress' | 'message' | 'done' | 'error';
  name: string;
  stages: string[];
  stage: string;
  state: string;
  detail: string;
  seconds: number | null;
  done: number;
  total: number;
  text: string;
  deployment: IDeployment | null;
}
