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

/** WindowInfo: traffic over one window (operate.WindowStats). */
export interface IWindow {
  window: string; // 1h | 24h
  requests: number;
  errors: number; // 5xx and function errors
  client_errors: number; // 4xx other than 429
  throttled: number; // 429
  p50_ms: number | null;
  p99_ms: number | null;
  cold_starts: number | null; // AWS only
}

/** StatusInfo: GET /nimbus/api/deployments/{name}/status (operate.StatusReport). */
export interface IStatus {
  name: string;
  target: string;
  version: number;
  health: string; // ok | down | unknown
  health_detail: string;
  health_ms: number | null;
  last_hour: IWindow | null;
  last_day: IWindow | null;
  cost_this_month_usd: number | null; // null: not applicable (local) or not known
  cost_detail: string;
  metrics_detail: string;
  checked_at: string;
  url: string;
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

/** OptionInfo: one option a target takes (the flag the magic takes, and its `name` for {name: value}). */
export interface IOptionInfo {
  name: string; // snake_case: the key the sidebar sends
  flag: string; // --workers
  type: 'int' | 'float' | 'str' | 'bool' | 'choice';
  default: number | string | boolean | null;
  help: string;
  choices: string[] | null;
  metavar: string | null;
}

/** TargetInfo: a deploy target, its stages and its options. */
export interface ITargetInfo {
  name: string;
  title: string;
  stages: string[];
  capabilities: string[]; // operate | discover | ...
  options: IOptionInfo[];
}

/** GET /nimbus/api/targets */
export interface ITargetList {
  targets: ITargetInfo[];
  default: string;
}

/** What the sidebar uses while the server has no GET /nimbus/api/targets (404): only the local target. */
export const LOCAL_ONLY: ITargetList = {
  targets: [
    { name: 'local', title: 'Local (127.0.0.1)', stages: [], capabilities: [], options: [] }
  ],
  default: 'local'
};
