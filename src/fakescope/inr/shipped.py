"""Which shared initialisation an INR fit starts from, and at which learning rate.

Not in the paper: docs/design.md ("Fitting") allows a fixed seed or a learned initialisation file. fakescope
ships one learned init per supported resolution (``SHIPPED_RESOLUTIONS``), meta-learned with
``fakescope learn-inr-init`` (Reptile, :mod:`fakescope.inr.learned_init`) on the training split of the
shared DFDC faces; each file records its provenance in its safetensors metadata. ``inr.init_file``:

- ``"shipped"`` (default): the shipped init learned at the supported resolution nearest to
  ``inr.resolution`` (coordinates are always [-1, 1]², so an init carries across sizes: docs/inr.md),
  when the config's INR is the one it was learned for (every field of ``INIT_MATCHING_FIELDS``);
  otherwise the seeded init. A Gauss or WIRE INR, or another width, therefore still starts from its
  seeded init, as before.
- ``None``: the seeded init (``inr.init_seed``). Run configs written before the shipped init existed
  record this, so old runs keep their heatmaps.
- a path: that file (``fakescope.inr.models.load_init`` checks it fits the INR).

``inr.lr = None`` means the init's own rate: the ``fit_lr`` a file records when one was chosen for it,
else the ``inner_lr`` it was learned with, else (seeded init) ``SEEDED_LR``. The shipped files record
``fit_lr`` 3e-3, chosen on validation faces of two sources (docs/inr.md "The shipped initialisation"):
at the inner rate 1e-3 the init halves the steps on DFDC video faces but needs 3-5x *more* on sharp
FFHQ photographs at 128-224 px; at 3e-3 it is 1.6-2x faster on video faces and about as fast on
photographs (except at 224 px: 24 % more steps). The cache key (:func:`fakescope.inr.cache.config_key`) uses the
resolved file's content and the resolved rate, so a "shipped" fit that falls back to the seeded init
shares its cache entries with an explicit ``init_file: null, lr: 3e-3`` run.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from fakescope.errors import ConfigError, InputError
from fakescope.inr.config import INIT_MATCHING_FIELDS, InrConfig

__all__ = ["SHIPPED", "SHIPPED_RESOLUTIONS", "SEEDED_LR", "shipped_init_path", "resolve_init_file", "fit_lr",
           "init_metadata_of"]  # fmt: skip

SHIPPED = "shipped"
SHIPPED_RESOLUTIONS = (64, 128, 224)
#: Adam rate of a fit from the seeded init (docs/inr.md "Faster fitting": 3e-3 reached 35 dB in the
#: fewest steps among the rates tried; SIREN's own 1e-4 is far slower).
SEEDED_LR = 3e-3


def _shipped_file(resolution: int) -> Path:
    return Path(
        str(resources.files("fakescope") / "resources" / f"inr_init_siren_{resolution}px.safetensors")
    )


@lru_cache(maxsize=32)
def _metadata(path: str, mtime_ns: int) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as fh:
        return dict(fh.metadata() or {})


def init_metadata_of(path: str | Path) -> dict[str, str]:
    """The safetensors metadata of an init file (cached per file version); an unreadable file is one
    :class:`~fakescope.errors.InputError` line, as ``load_init`` reports it."""
    p = Path(path)
    try:
        return _metadata(str(p), p.stat().st_mtime_ns)
    except Exception as err:
        raise InputError(f"{p}: not a readable safetensors initialisation ({err})") from None


def shipped_init_path(cfg: InrConfig) -> Path | None:
    """The shipped init for ``cfg`` (nearest supported resolution), or None when ``cfg``'s INR is not the
    one the shipped inits were learned for."""
    nearest = min(SHIPPED_RESOLUTIONS, key=lambda r: (abs(r - cfg.resolution), r))
    path = _shipped_file(nearest)
    if not path.is_file():
        raise ConfigError(
            f"inr.init_file=shipped: {path.name} is missing from this installation (reinstall fakescope), "
            "or set inr.init_file=null for the seeded init"
        )
    made_for = json.loads(init_metadata_of(path)["inr"])
    if any(made_for.get(k) != getattr(cfg, k) for k in INIT_MATCHING_FIELDS):
        return None
    return path


def resolve_init_file(cfg: InrConfig) -> Path | None:
    """The init file a fit with ``cfg`` starts from; None means the seeded init."""
    if cfg.init_file is None:
        return None
    if cfg.init_file == SHIPPED:
        return shipped_init_path(cfg)
    return Path(cfg.init_file)


def fit_lr(cfg: InrConfig) -> float:
    """``inr.lr``, or when it is None the init's own rate (see the module docstring)."""
    if cfg.lr is not None:
        return cfg.lr
    path = resolve_init_file(cfg)
    if path is None or not path.is_file():  # a missing explicit file is reported by load_init
        return SEEDED_LR
    meta = init_metadata_of(path)
    return float(meta.get("fit_lr", meta.get("inner_lr", SEEDED_LR)))
