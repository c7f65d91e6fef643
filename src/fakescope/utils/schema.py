"""Base class for every config section: unknown keys are errors, assignments are validated; and
``json_safe`` for JSON that must parse anywhere."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict


def json_safe(obj: Any) -> Any:
    """``obj`` with every NaN / infinite float replaced by ``None``: strict JSON has no NaN, and
    ``json.dumps`` would otherwise print a bare ``NaN`` that most parsers reject."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())
