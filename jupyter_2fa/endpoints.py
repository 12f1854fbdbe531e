"""How code in a notebook kernel finds the 2FA API: the environment variables its server sets.

A gated single server (the extension) exports :data:`API_URL_ENV` and :data:`STATUS_TOKEN_ENV` to its
kernels; a JupyterHub single-user server's kernels find the hub from ``JUPYTERHUB_API_URL``.
"""

API_URL_ENV = "JUPYTER_2FA_API_URL"  # e.g. http://127.0.0.1:8888/2fa/api/
STATUS_TOKEN_ENV = "JUPYTER_2FA_STATUS_TOKEN"  # noqa: S105 (a variable name) reads GET status only
STATUS_TOKEN_HEADER = "X-Jupyter-2FA-Status-Token"  # noqa: S105 (a header name)
