"""Helpers of the test suite: plain functions, classes and constants, imported one way from every test folder.

setup.cfg's ``pythonpath = tests`` puts this folder's parent on ``sys.path``, so a test, a conftest.py or another
helper writes ``from helpers.hub import Hub`` wherever it lives. Fixtures are not defined here: they live in the
conftest.py files (tests/conftest.py for those more than one folder uses). Each module is named for what it
helps with:

- ``ci``: skip locally, fail under CI=true
- ``ports``: the one ``free_port``
- ``processes``: a Jupyter server (lab, notebook, server) as a subprocess, started, awaited and stopped
- ``postgres``: a throw-away PostgreSQL server (initdb, pg_ctl) on loopback
- ``wheel``: the project's wheel, built and installed into a fresh venv without node
- ``totp``: the user's authenticator app (``Device``)
- ``core``: the core tests' clock, harness and pyotp-computed codes
- ``gate``: the server gate tests' browser over ``jp_fetch``
- ``hub``: a real JupyterHub behind configurable-http-proxy, and a browser for it
- ``ldap``: a real OpenLDAP ``slapd`` on loopback
- ``browser``: Chromium's settings and a real ``jupyter lab`` behind the gate
- ``cli``: ``jupyter 2fa`` as a subprocess
- ``widgets``: a gated ``jupyter server`` and notebooks run by nbclient in its kernels
"""
