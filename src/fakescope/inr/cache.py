"""Content-addressed on-disk cache of INR heatmaps, reconstructions and fit records.

docs/design.md, "Scale": INR fitting shards a manifest across processes or ``torchrun`` ranks into one
shared cache keyed by image hash plus config hash, so a second run fits nothing twice.

Layout: ``<cache_dir>/<config_key>/<image_key[:2]>/<image_key>.safetensors``, one file per image,
holding ``heatmaps`` float32 [L, R, R] and ``reconstruction`` uint8 [R, R, 3], with the FitRecord as
JSON in the safetensors metadata. Every file is written to a temporary sibling and renamed
(fakescope.utils.atomic), so a reader sees a whole file or none; a killed run leaves at most a
stray ``.*.tmp`` file, which readers ignore. Two writers of the same key write the same content
(deterministic fit from the same init), so the last rename winning is harmless: no locks needed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from fakescope.errors import InputError
from fakescope.inr.config import EXECUTION_ONLY_FIELDS, InrConfig
from fakescope.inr.fitting import FitRecord
from fakescope.inr.shipped import fit_lr, resolve_init_file
from fakescope.utils.atomic import atomic_write_bytes, atomic_write_json
from fakescope.utils.hashing import config_hash, file_sha256
from fakescope.utils.paths import output_dir_problem

__all__ = ["HeatmapCache", "InrResult", "image_key", "config_key", "CACHE_FORMAT"]

log = logging.getLogger(__name__)

# Bump when the fitting or heatmap algorithm changes in a way the config does not capture.
CACHE_FORMAT = 2  # 2: omega0 folded into the sine layers' weights (rounding changed)


@dataclass
class InrResult:
    """One image's outputs: heatmaps float32 [L, R, R], reconstruction uint8 [R, R, 3], FitRecord."""

    heatmaps: np.ndarray
    reconstruction: np.ndarray
    record: FitRecord


def image_key(image: np.ndarray) -> str:
    """SHA-256 of an image's pixels, shape and dtype (its content, not its file name)."""
    arr = np.ascontiguousarray(image)
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def config_key(cfg: InrConfig) -> str:
    """Hash of every field that changes the result; an init file counts by its content."""
    fields = cfg.model_dump(mode="json", exclude=set(EXECUTION_ONLY_FIELDS))
    if fields.get("first_layer_map") == "same":
        # 'same' gives exactly the maps made before the field existed: keep their key, so caches filled
        # then stay valid for the runs trained on them.
        del fields["first_layer_map"]
    # The init and rate a fit really uses: a 'shipped' fit that falls back to the seeded init has the
    # key of an explicit seeded one; an init file counts by its content.
    init = resolve_init_file(cfg)
    if init is None:
        fields["init_file"] = None
    elif init.is_file():
        fields["init_file"] = file_sha256(init)
    else:  # missing: load_init reports it when a fit needs it
        fields["init_file"] = str(init)
    fields["lr"] = fit_lr(cfg)
    fields["cache_format"] = CACHE_FORMAT
    return config_hash(fields)


class HeatmapCache:
    """``HeatmapCache(cache_dir, cfg)``: ``get(key)`` -> InrResult | None, ``put(key, result)``.

    Keys come from :func:`image_key`. Safe to share between processes (see module docstring).
    """

    def __init__(self, cache_dir: str | os.PathLike[str], cfg: InrConfig) -> None:
        self.cfg = cfg
        self.root = Path(cache_dir) / config_key(cfg)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # a file where the cache folder should be, a read-only place
            why = output_dir_problem(self.root) or err.strerror
            raise InputError(f"INR cache {cache_dir}: {why}") from None
        info = self.root / "config.json"
        if not info.exists():
            atomic_write_json(info, cfg.model_dump(mode="json"))

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> InrResult | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
            tensors = load_file(str(path))
            record = FitRecord(**json.loads(meta["record"]))
        except (SafetensorError, OSError, KeyError, ValueError, TypeError) as err:
            # Only a foreign or hand-edited file can get here (writes are atomic): refit it.
            log.warning("ignoring unreadable cache entry %s (%s); it will be refitted", path, err)
            return None
        record.cached = True
        return InrResult(tensors["heatmaps"].numpy(), tensors["reconstruction"].numpy(), record)

    def read_heatmaps(self, key: str) -> np.ndarray:
        """The heatmaps of an entry known to exist, float32 [L, R, R], and nothing else of the file:
        the lazy stores of ``fakescope.inference.stores`` read one face at a time through this.
        Raises ``OSError`` / ``SafetensorError`` when the entry is missing or unreadable."""
        from safetensors import safe_open

        with safe_open(str(self.path(key)), framework="numpy") as fh:
            return fh.get_tensor("heatmaps")

    def put(self, key: str, result: InrResult) -> None:
        record = result.record.to_dict()
        record["cached"] = False
        data = save(
            {
                "heatmaps": torch.from_numpy(np.ascontiguousarray(result.heatmaps, dtype=np.float32)),
                "reconstruction": torch.from_numpy(
                    np.ascontiguousarray(result.reconstruction, dtype=np.uint8)
                ),
            },
            metadata={"record": json.dumps(record), "config_key": self.root.name},
        )
        atomic_write_bytes(self.path(key), data)

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.safetensors"))
