"""Deployment targets: where an endpoint runs. ``local`` (the default, no account needed), ``aws``, and
any target another package registers.

``base``: the contract (``Target``, ``TargetOption``, the ``Operable`` and ``Discoverable`` capabilities).
``registry``: finds targets by entry point (group ``nimbus_jupyter.targets``) and checks their options.
``local/`` and ``aws/``: the two built in; neither imports the other, and nothing outside them imports
either (the registry loads them by name). This package imports nothing on its own, so the local
server's worker processes, which live under it, stay light.
"""
