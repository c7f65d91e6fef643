"""Typed experiment config: pydantic models loaded from YAML, with dotted CLI overrides.

Each package owns its section's schema (``fakescope.<pkg>.config``); this module composes them,
loads YAML, applies ``--set a.b=value`` overrides, and turns validation failures into one clear
line naming the key and the file. Every run saves its resolved config next to its outputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from fakescope.data.config import DataConfig
from fakescope.errors import ConfigError
from fakescope.eval.config import EvalConfig
from fakescope.inr.config import InrConfig, InrInitConfig
from fakescope.models.config import ModelConfig
from fakescope.preprocess.config import PreprocessConfig
from fakescope.train.config import TrainConfig
from fakescope.utils.atomic import atomic_write_text
from fakescope.utils.schema import StrictModel

__all__ = ["ExperimentConfig", "load_config", "apply_overrides", "save_config", "parse_override"]


class ExperimentConfig(StrictModel):
    name: str = Field("experiment", description="run name; the run directory is <output_dir>/<name>")
    seed: int = Field(0, description="seed for splits, initialisation, sampling and augmentation")
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|mps|cuda(:[0-9]+)?)$", description="auto | cpu | cuda | cuda:N"
    )
    output_dir: str = Field("runs", description="parent folder of run directories")
    data: DataConfig = DataConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    inr: InrConfig = InrConfig()
    inr_init: InrInitConfig = InrInitConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-4"`` -> (["train", "lr"], 3e-4). The value is parsed as YAML, so
    ``true``, ``null``, numbers and ``[1, 2]`` work; anything else is a string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. train.lr=3e-4")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply dotted overrides to a raw (unvalidated) config dict, returning a new dict."""
    import copy

    out = copy.deepcopy(raw)
    for text in overrides or []:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = {}
                node[part] = child
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return out


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "<root>"
        if item["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{key}'")
        elif item["type"] == "missing":
            lines.append(f"{source}: missing required key '{key}'")
        else:
            lines.append(f"{source}: key '{key}': {item['msg']} (got {item.get('input')!r})")
    return "; ".join(lines)


def config_from_dict(raw: dict[str, Any], source: str = "<config>") -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None
) -> ExperimentConfig:
    """Load ``path`` (YAML) if given, apply ``overrides``, and validate.

    Raises :class:`ConfigError` with one line naming the file and key on any problem.
    """
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ConfigError(f"{p}: not valid YAML ({str(err).splitlines()[0]})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{p}: the top level must be a mapping of sections, got {type(loaded).__name__}"
            )
        raw = loaded
    if overrides:
        source = f"{source} + --set overrides"
    return config_from_dict(apply_overrides(raw, overrides), source)


def save_config(cfg: ExperimentConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML (atomically)."""
    text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
    atomic_write_text(path, text)
