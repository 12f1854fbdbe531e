"""Files shipped with the gate."""

from pathlib import Path

OPENAPI = Path(__file__).parent / "openapi.yaml"
