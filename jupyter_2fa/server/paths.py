"""Files shipped with the gate."""

from pathlib import Path

HERE = Path(__file__).parent
TEMPLATES = HERE.parent / "templates"
OPENAPI = HERE / "openapi.yaml"
