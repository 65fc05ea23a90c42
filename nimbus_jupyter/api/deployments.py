"""The deployments there are: ``list_deployments``, ``get_deployment``, ``destroy``, over the registry and
each target's ``live_status`` (and, for targets that can discover them, deployments made elsewhere)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, List, Optional

from filelock import Timeout

from ..core.errors import DeploymentNotFound, UserInputError
from ..core.operate import LiveStatus
from ..core.records import DeploymentRecord
from ..core.registry import Registry
from ..targets.base import Discoverable, Recoverable
from ..targets.registry import catalog, get_target
from .deployment import Deployment

STARTING, ORPHAN = "starting", "orphan"  # record states: written before a deploy starts anything; no record at all
PROBES_AT_ONCE = 8  # live statuses probed side by side: a list of ten dead servers takes one probe's timeout, not ten


def acquire(registry: Registry, name: str, timeout: float, busy: str, todo: str) -> Any:
    """The deployment's cross-kernel lock, held; the caller releases it. Busy means a UserInputError."""
    lock = registry.lock_for(name)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise UserInputError(busy, todo)
    return lock


def _live(record: DeploymentRecord, registry: Registry) -> Deployment:
    try:
        target = get_target(record.target, registry)
    except UserInputError as exc:  # its target is not installed (any more), or failed to load: say so
        return Deployment.from_record(record, LiveStatus("unknown", f"{exc.what}; {exc.todo}"), registry)
    if record.status == STARTING:
        return Deployment.from_record(record, _starting(record, registry), registry)
    if record.status == ORPHAN and isinstance(target, Recoverable):
        found = {d.record.name: d.status for d in target.orphans(set())}
        return Deployment.from_record(record, found.get(record.name, LiveStatus(ORPHAN)), registry)
    return Deployment.from_record(record, target.live_status(record), registry)


def _starting(record: DeploymentRecord, registry: Registry) -> LiveStatus:
    """A record written before its deploy started anything: a deploy running now (it holds the deployment's
    lock), or one that never finished (its process was killed, or its last registry write failed)."""
    lock = registry.lock_for(record.name)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return LiveStatus(STARTING, "a deploy is running (maybe in another kernel)")
    lock.release()
    return LiveStatus("interrupted", f"a deploy of {record.name!r} stopped before it finished (its kernel was killed, "
                                     f"or the registry could not be written); %nimbus_destroy {record.name} stops what it "
                                     "started, or deploy it again")


def _recoverers(registry: Registry) -> List[Any]:
    found = []
    for name in catalog().classes:
        try:
            target = get_target(name, registry)
        except UserInputError:
            continue
        if isinstance(target, Recoverable):
            found.append(target)
    return found


def _discoverers(registry: Registry) -> List[Any]:
    found = []
    for name in catalog().classes:
        target = get_target(name, registry)
        if isinstance(target, Discoverable):
            found.append(target)
    return found


def list_deployments(registry: Optional[Registry] = None, remote: bool = True) -> List[Deployment]:
    """Every deployment in the registry, with its live status (probed, never assumed); with ``remote``,
    also those the targets that can discover them find elsewhere (AWS: Nimbus stacks in the default
    account/region that this machine did not deploy)."""
    registry = registry or Registry()
    records = registry.all()
    catalog()  # loaded (and any plugin warning given) here, not in a probe thread
    with ThreadPoolExecutor(max_workers=max(1, min(PROBES_AT_ONCE, len(records))), thread_name_prefix="nimbus-probe") as pool:
        found = list(pool.map(lambda record: _live(record, registry), records))  # the registry's order kept
    for target in _recoverers(registry):  # servers and files nobody has a record of: shown as orphans
        known = {d.name for d in found}
        found += [Deployment.from_record(d.record, d.status, registry) for d in target.orphans(known)]
    if remote:
        for target in _discoverers(registry):
            known = {d.name for d in found}
            found += [Deployment.from_record(d.record, d.status, registry) for d in target.remote_deployments(known)]
    return found


def get_record(name: str, registry: Registry) -> DeploymentRecord:
    """The registry record of ``name``; one made elsewhere that a target can discover is adopted into it;
    an orphan's (a deployment folder without a record) is returned as it is, not recorded."""
    record = registry.get(name)
    if record is None:
        for target in _discoverers(registry):
            record = target.adopt(name)
            if record is not None:
                registry.put(record)
                break
    if record is None:
        for target in _recoverers(registry):
            record = target.orphan(name)
            if record is not None:
                break
    if record is None:
        known = ", ".join(r.name for r in registry.all()) or "none yet"
        raise DeploymentNotFound(f"no deployment named {name!r} (deployments: {known})",
                                 "check the name with %nimbus_list, or deploy it with %nimbus_deploy")
    return record


def get_deployment(name: str, registry: Optional[Registry] = None) -> Deployment:
    registry = registry or Registry()
    return _live(get_record(name, registry), registry)


def destroy(name: str, registry: Optional[Registry] = None) -> str:
    """Stop ``name``'s endpoint and remove everything it made; returns what was done."""
    registry = registry or Registry()
    record = get_record(name, registry)
    lock = acquire(registry, name, 5, f"a deploy of {name!r} is running", "wait for it to finish, then destroy")
    try:
        done = get_target(record.target, registry).destroy(record)
        if registry.get(name) is not None:  # an orphan has no record to remove
            registry.remove(name)
        _forget_checkpoints(name, registry)
    finally:
        lock.release()
    return f"destroyed {name!r}" + (" (an orphan: it had no registry record)" if record.status == ORPHAN else "") + f": {done}"


def _forget_checkpoints(name: str, registry: Registry) -> None:
    from .checkpoints import forget_deployment

    forget_deployment(registry.home, name)  # never raises: a damaged or unwritable store only warns
