"""``%nimbus_rotate_key NAME`` and the notebook's ``nimbus_jupyter.rotate_key(name)``: each step printed as
it happens (the wait for API Gateway to accept the new key can take seconds). A Magics class of its own,
registered beside ``NimbusMagics``, so the main magics module stays as it is."""
from __future__ import annotations

from typing import Optional

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..api.keys import KEY_WAIT_S
from ..api.keys import rotate_key as _rotate_key
from ..core.errors import UserInputError
from ..core.operate import KeyRotation
from ..core.registry import Registry


def rotate_key(name: str, registry: Optional[Registry] = None, timeout_s: float = KEY_WAIT_S,
               quiet: bool = False) -> KeyRotation:
    """Rotate the API key of ``name`` without downtime (``--target aws``), printing each step."""
    return _rotate_key(name, registry, on_message=(lambda _line: None) if quiet else print, timeout_s=timeout_s)


@magics_class
class KeyMagics(Magics):
    @line_magic
    @magic_arguments()
    @argument("name", help="the deployment's name")
    @argument("--timeout", type=float, default=KEY_WAIT_S,
              help=f"seconds to wait for API Gateway to accept the new key (default {KEY_WAIT_S:.0f})")
    def nimbus_rotate_key(self, line: str) -> None:
        """Replace the deployment's API key without downtime: a new key works before the old one goes."""
        args = parse_argstring(self.nimbus_rotate_key, line)
        try:
            result = rotate_key(args.name, timeout_s=args.timeout)
        except UserInputError as exc:
            raise UsageError(str(exc))
        print(result.text())
