"""The faces: how people reach the api. ``magics`` (``%nimbus_*``), ``cli/`` (the ``nimbus`` command),
``notebook`` (``nimbus_jupyter.deploy`` with a live view), ``ui/`` (what is live: deploy progress, Reveal,
status Refresh; results display themselves, see ``core.display``), ``server_extension/`` (the sidebar's REST
routes), ``kernel_probe`` (what the sidebar runs in a kernel) and ``sidebar_models`` (the messages they
exchange). Faces render and parse; the api decides.
"""
