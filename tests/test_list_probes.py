"""Listing deployments probes their servers side by side: three hung servers (SIGSTOPped, so their
ports accept connections that nobody answers) cost one probe's timeout, not three, and each is shown
as not answering. Why it matters: the sidebar and %nimbus_list ask for the list after every cell."""
from __future__ import annotations

import os
import signal
import threading
from typing import Iterator, List, Set

import psutil
import pytest

import nimbus_jupyter as nj
from nimbus_jupyter.targets.local.process import deployment_processes
from nimbus_jupyter.targets.registry import get_target

NAMES = ["hung-a", "hung-b", "hung-c"]


@pytest.fixture(scope="module")
def hung(nimbus_home, textcat_nlp) -> Iterator[List[int]]:
    servers = []
    for name in NAMES:
        nj.deploy(textcat_nlp, name, samples=["fine"], workers=1, show=False)
        (server,) = deployment_processes(get_target("local").files(name))["server"]
        servers.append(server)
    for pid in servers:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield servers
    finally:
        for pid in servers:
            os.kill(pid, signal.SIGCONT)


def _ports_probed_at_once(ports: Set[int], done: threading.Event) -> int:
    """The most of ``ports`` this process held a connection to at one moment, while ``done`` is unset."""
    me, most = psutil.Process(), 0
    while not done.wait(0.02):
        open_to = {c.raddr.port for c in me.net_connections(kind="tcp") if c.raddr and c.raddr.port in ports}
        most = max(most, len(open_to))
    return most


def test_hung_servers_are_probed_side_by_side_and_each_shown_not_answering(hung) -> None:
    ports = {int(d.url.rsplit(":", 1)[1]) for d in nj.list_deployments(remote=False) if d.name in NAMES}
    assert len(ports) == 3
    done, listed = threading.Event(), {}

    def list_them() -> None:
        try:
            listed.update({d.name: d for d in nj.list_deployments(remote=False)})
        finally:
            done.set()

    lister = threading.Thread(target=list_them)
    lister.start()
    most = _ports_probed_at_once(ports, done)
    lister.join(30)
    assert most == 3, f"the three hung servers were probed one after another (at most {most} at once)"
    for name in NAMES:
        assert listed[name].status == "dead" and "does not answer" in listed[name].detail, listed[name]
    assert [d.name for d in nj.list_deployments(remote=False) if d.name in NAMES] == NAMES  # the registry's order
