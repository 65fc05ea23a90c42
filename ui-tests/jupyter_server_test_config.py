"""JupyterLab for the galata UI test: a temporary root, no token, 127.0.0.1 only (galata's own settings)."""
from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821 - `c` is the config object Jupyter passes in
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = 8917  # the default; playwright.config.js passes a free port on the command line
c.ServerApp.port_retries = 0
c.ServerApp.allow_root = True
c.ServerApp.open_browser = False
