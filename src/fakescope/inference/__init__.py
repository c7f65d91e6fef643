"""Face crop → model inputs → scores, shared by training, evaluation and ``detect``
(docs/architecture.md).

- :mod:`fakescope.inference.inputs`: resizing to ``data.image_size``, INR heatmaps and frozen image
  embeddings through their caches, the batch dict of docs/CONTRACTS.md;
- :mod:`fakescope.inference.predict`: the eval-mode forward pass with the run's autocast setting;
- :mod:`fakescope.inference.checkpoint`: safetensors + JSON checkpoints and :func:`load_detector`.

Names are imported lazily (PEP 562), so ``fakescope --help`` does not pay for importing torch.
"""

from __future__ import annotations

from fakescope.utils.lazy import lazy_getattr

_EXPORTS = {
    "ModelInputs": "fakescope.inference.inputs",
    "batch_for_crops": "fakescope.inference.inputs",
    "compute_inputs": "fakescope.inference.inputs",
    "detector_inputs": "fakescope.inference.inputs",
    "feature_cache_dir": "fakescope.inference.inputs",
    "images_to_tensor": "fakescope.inference.inputs",
    "model_image": "fakescope.inference.inputs",
    "precompute_inputs": "fakescope.inference.inputs",
    "autocast_context": "fakescope.inference.predict",
    "iter_predictions": "fakescope.inference.predict",
    "predict_batch": "fakescope.inference.predict",
    "to_device": "fakescope.inference.predict",
    "load_detector": "fakescope.inference.checkpoint",
    "save_checkpoint": "fakescope.inference.checkpoint",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr("fakescope.inference", _EXPORTS)
