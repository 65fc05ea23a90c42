"""The Lambda function's handler module (``nimbus_jupyter.runtime.lambda_entry.handler``).

It loads the model at import, in Lambda's init phase (full CPU, its own 10 s budget), so the first
request does not pay for it:
- inline: the bundle is in the function code, at ``$NIMBUS_BUNDLE_DIR`` (``/var/task/bundle``);
- s3: the bundle is the zip object ``s3://$NIMBUS_MODEL_BUCKET/$NIMBUS_MODEL_KEY`` (the CDK asset), unzipped
  into ``/tmp/nimbus-bundle``. This is the one place the runtime uses something beyond spaCy and the
  standard library: boto3, which the Lambda Python runtime provides; it is imported only in s3 mode.

It loads only on Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is set) or when ``NIMBUS_LOAD_AT_IMPORT=1``, so tests
and tools can import it. A failure at init prints one line saying what failed to stderr (CloudWatch
Logs) and re-raises, so Lambda reports the init error instead of serving without a model.

Init imports only what serving needs (``defer_spacy_cli``): ``import spacy`` runs ``from .cli.info import
info``, which imports spaCy's whole command line (typer, click, weasel, requests, httpx, a YAML file read)
-- about a fifth of a cold start -- and nothing a pipeline loads or runs uses it.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import types
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

MODEL_BUCKET_ENV, MODEL_KEY_ENV = "NIMBUS_MODEL_BUCKET", "NIMBUS_MODEL_KEY"
LOAD_ENV = "NIMBUS_LOAD_AT_IMPORT"
DEFER_ENV = "NIMBUS_DEFER_SPACY_CLI"  # "0": import spaCy's CLI at init as spaCy does (for comparison)
S3_BUNDLE_NAME = "nimbus-bundle"  # under /tmp (tempfile.gettempdir(): /tmp on Lambda)


def fetch_bundle(bucket: str, key: str, dest: Path) -> Path:
    """Download the bundle zip from S3 and unzip it to ``dest`` (replacing it); return ``dest``.

    The zip is deleted once unpacked, so /tmp holds both only for a moment.
    """
    import shutil
    import zipfile

    import boto3  # only in s3 mode: the Lambda runtime provides it; spaCy + stdlib otherwise

    dest = Path(dest)
    archive = dest.with_name(dest.name + ".zip")
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    boto3.client("s3").download_file(bucket, key, str(archive))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(partial)  # extractall drops absolute paths and '..' parts
    finally:
        archive.unlink(missing_ok=True)
    shutil.rmtree(dest, ignore_errors=True)  # a retried init in the same environment
    partial.rename(dest)
    return dest


def bundle_location() -> str:
    """Where the bundle is: s3 mode fetches it first; inline mode reads ``NIMBUS_BUNDLE_DIR``."""
    bucket, key = os.environ.get(MODEL_BUCKET_ENV), os.environ.get(MODEL_KEY_ENV)
    if bucket and key:
        import tempfile

        return str(fetch_bundle(bucket, key, Path(tempfile.gettempdir()) / S3_BUNDLE_NAME))
    path = os.environ.get(runtime.BUNDLE_ENV)
    if not path:
        raise RuntimeError(f"neither {runtime.BUNDLE_ENV} nor {MODEL_BUCKET_ENV}+{MODEL_KEY_ENV} is set; "
                           "this function was not created by the nimbus CDK app")
    return path


def init() -> Any:
    """Load the model now (idempotent): the handler's state object."""
    return runtime.load(bundle_location())


def _describe_source() -> str:
    bucket, key = os.environ.get(MODEL_BUCKET_ENV), os.environ.get(MODEL_KEY_ENV)
    if bucket and key:
        return f"s3://{bucket}/{key}"
    return os.environ.get("NIMBUS_BUNDLE_DIR") or "(no model location in the function's environment)"


SNAPSTART_ENV = "NIMBUS_SNAPSTART"  # set by the stack when SnapStart is on


def after_restore() -> None:
    """SnapStart resumes every environment from one memory snapshot: reseed what would otherwise repeat in
    all of them. Nothing connected is made before the snapshot (s3 mode's client is gone after the fetch;
    inline mode makes none), so nothing needs reconnecting."""
    import random

    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def register_snapstart_hooks() -> bool:
    """Register ``after_restore`` with the runtime's snapshot_restore_py (shipped with awslambdaric)."""
    if os.environ.get(SNAPSTART_ENV) != "1":
        return False
    from snapshot_restore_py import register_after_restore

    register_after_restore(after_restore)
    return True


# ---------------------------------------------------------------- init imports only what serving needs

DEFERRED = ("spacy.cli", "spacy.cli.info")  # a package, then the one submodule ``import spacy`` reads


class _Deferred(types.ModuleType):
    """A module imported but not run yet. It has what the import system sets (spec, file, ``__path__`` for a
    package, so its submodules import as usual) and what ``_DeferringLoader`` presets; reading anything
    else runs its code in place, once, and answers from the real namespace."""

    def __getattr__(self, name: str) -> Any:  # only for names the module does not have (yet)
        if name.startswith("__") and name.endswith("__") and name != "__all__":
            raise AttributeError(name)  # the import system's probes (``hasattr(m, "__path__")``) must not run it
        run_deferred(self)
        return getattr(self, name)


def run_deferred(module: types.ModuleType) -> types.ModuleType:
    """Run a deferred module's real code now (no-op for a module that has run), then its deferred submodules."""
    if type(module) is not _Deferred:
        return module
    spec = module.__spec__
    real = spec.loader_state["loader"]
    module.__class__ = types.ModuleType
    spec.loader = module.__loader__ = real
    real.exec_module(module)
    for name in DEFERRED:
        child = sys.modules.get(name)
        if child is not None and name.startswith(module.__name__ + "."):
            run_deferred(child)  # e.g. spacy.cli.info registers its typer command when it runs
    return module


def _forwarder(module_name: str, attr: str) -> Callable[..., Any]:
    def forward(*args: Any, **kwargs: Any) -> Any:
        return getattr(run_deferred(sys.modules[module_name]), attr)(*args, **kwargs)

    forward.__name__ = forward.__qualname__ = attr
    forward.__module__ = module_name
    forward.__doc__ = f"{module_name}.{attr}, imported on first call (a Lambda init does not import spaCy's CLI)"
    return forward


class _DeferringLoader(importlib.abc.Loader):
    def __init__(self, real: importlib.abc.Loader, preset: Dict[str, Any]) -> None:
        self.real, self.preset = real, preset

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[types.ModuleType]:
        return self.real.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__.loader_state = {"loader": self.real}
        module.__dict__.update(self.preset)
        module.__class__ = _Deferred


class DeferModules(importlib.abc.MetaPathFinder):
    """Import ``names`` as deferred modules (``presets``: attributes they have before they run, e.g. a
    forwarding ``info``); leaves ``sys.meta_path`` once all are imported."""

    def __init__(self, names: Sequence[str], presets: Dict[str, Dict[str, Any]]) -> None:
        self.todo, self.presets = set(names), presets

    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target: Any = None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname not in self.todo:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec  # not plain source (a .pyc-only or extension layout): import it as it is
        self.todo.discard(fullname)
        if not self.todo and self in sys.meta_path:
            sys.meta_path.remove(self)
        spec.loader = _DeferringLoader(spec.loader, self.presets.get(fullname, {}))
        return spec


def defer_spacy_cli() -> bool:
    """Before spaCy is imported: make ``spacy.cli`` and ``spacy.cli.info`` deferred modules, ``spacy.info``
    a forwarder. Nothing a pipeline loads or runs reads them (spaCy's own modules refer to its CLI only in
    ``__init__``'s ``from .cli.info import info`` and in ``__main__``); the first use imports the real CLI."""
    if "spacy" in sys.modules or os.environ.get(DEFER_ENV) == "0":
        return False
    sys.meta_path.insert(0, DeferModules(DEFERRED, {"spacy.cli.info": {"info": _forwarder("spacy.cli.info", "info")}}))
    return True


_LOAD_NOW = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.environ.get(LOAD_ENV) == "1")
if _LOAD_NOW:
    defer_spacy_cli()
try:
    from . import handler as runtime  # inline on Lambda, this import already loads the bundle

    if _LOAD_NOW:
        init()
        register_snapstart_hooks()
except Exception as exc:
    if _LOAD_NOW:
        print(f"nimbus: init failed: could not load the model from {_describe_source()}: "
              f"{type(exc).__name__}: {exc} (the traceback follows)",
              file=sys.stderr, flush=True)
    raise

def handler(event: Any, context: Any = None) -> Any:
    """API Gateway events go to the runtime handler; a job's shard events (Step Functions) to jobs_shard."""
    if jobs_shard.is_job_event(event):
        return jobs_shard.handle(event, context)
    return runtime.handler(event, context)


from . import jobs_shard  # noqa: E402  (after the model loaded: a shard scores with it)
