"""The faces: how people reach the api. ``magics`` (``%nimbus_*``), ``notebook`` (``nimbus_jupyter.deploy``
with a live view), ``ui/`` (the deploy and status views, widget and text), ``server_extension/`` (the
sidebar's REST routes), ``kernel_probe`` (what the sidebar runs in a kernel) and ``sidebar_models``
(the messages they exchange). Faces render and parse; the api decides.
"""
