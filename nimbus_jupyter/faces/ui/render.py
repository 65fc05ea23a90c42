"""Deployment lists as table rows; sample and parity renderers live with the results (``api.results``)."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

from ...api.results import parity_html, samples_html, samples_text

__all__ = ["deployments_rows", "parity_html", "samples_html", "samples_text"]


def deployments_rows(deployments: Sequence[Any]) -> List[Dict[str, Any]]:
    return [{
        "name": d.name, "target": d.target, "status": d.status, "url": d.url,
        "components": ", ".join(d.components), "version": d.version, "created": d.created,
        "detail": d.detail,
    } for d in deployments]
