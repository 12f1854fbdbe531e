"""The installed version: one for the Python package and the Lab extension, set in labextension/package.json
(pyproject.toml's [tool.hatch.version])."""

from importlib.metadata import version

__version__ = version("jupyter-2fa")
