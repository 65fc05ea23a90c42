"""Run a notebook headless (nbclient) and print what it showed as text: the README's main job.

Usage: python example_notebooks/run.py example_notebooks/quickstart.ipynb [--save OUT.ipynb]
(--save writes the executed notebook, outputs and widget state included, as Jupyter would save it.)
"""
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def text_of(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", []))
    return output.get("data", {}).get("text/plain", "")


def main(path: str, save: str = "") -> int:
    notebook = Path(path).resolve()
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}})
    failed = None
    try:
        client.execute()
    except CellExecutionError as exc:
        failed = exc
    if save:
        nbformat.write(nb, save)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = [text_of(o) for o in cell.get("outputs", [])]
        if any(o.strip() for o in outputs):
            print(f"In [{cell.get('execution_count')}]: {cell.source.splitlines()[0] if cell.source else ''}")
            print("\n".join(o.rstrip() for o in outputs if o.strip()))
            print()
    if failed:
        print(f"FAILED: {str(failed).splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"{notebook.name}: all cells ran")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    out = ""
    if "--save" in args:
        at = args.index("--save")
        out, args = args[at + 1], args[:at] + args[at + 2:]
    sys.exit(main(args[0] if args else "example_notebooks/quickstart.ipynb", out))
