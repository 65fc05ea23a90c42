"""When to show widgets: only for what is live (deploy progress, Reveal, Refresh), and only where a kernel
carries them to a frontend. Everything else is a value that displays itself (``core.display``).

A shell with a ``kernel`` (ipykernel: JupyterLab, Notebook, VS Code, nbclient) can carry widgets over its
comms, and its displays can be updated in place (``display_id``), so even a headless run (nbclient,
nbconvert) keeps the text twin each live display carries. Without one (a terminal IPython, a script) text
is printed as things happen. This asks what the shell can do, never what its class is called.
"""
from __future__ import annotations

from typing import Any, Dict


def can_show_widgets(shell: Any) -> bool:
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def widget_bundle(widget: Any, text: str, html: str = "") -> Dict[str, Any]:
    """A display bundle for a live widget with its text (and HTML) twins: the frontend shows the widget,
    nbconvert and saved notebooks read as text show the text, a frontend without widgets the HTML."""
    bundle: Dict[str, Any] = {
        "application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 0,
                                                     "model_id": widget.model_id},
        "text/plain": text,
    }
    if html:
        bundle["text/html"] = html
    return bundle
