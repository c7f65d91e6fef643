"""Render every config field (key, type, default, description) as a Markdown table.

The README's configuration reference is generated from the pydantic schema with
``python -m fakescope.config_reference``, and a test keeps the README in step with the code.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from fakescope.config import ExperimentConfig


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation)
    return text.replace("typing.", "").replace("NoneType", "None")


def _rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(_rows(ann, key + "."))
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        rows.append((key, _type_name(ann), json.dumps(default, default=str), field.description or ""))
    return rows


def config_reference_markdown() -> str:
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, typ, default, desc in _rows(ExperimentConfig):
        typ = typ.replace("|", "\\|")
        lines.append(f"| `{key}` | `{typ}` | `{default}` | {desc.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(config_reference_markdown(), end="")
