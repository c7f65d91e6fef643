"""The ONNX path for inference (docs/onnx.md): export a trained run's
classifier with ``torch.onnx.export`` and score batches with onnxruntime instead of PyTorch.

What goes into the graph:

- AIRL family (``airl``, ``airl_rgb``, ``airl_freq``, ``airl_nocon``, ``airl_early``): the whole detector
  on the aligned, resized face image ``image`` ``[B,3,S,S]`` in [0, 1]. The backbone normalises inside
  the graph, and the block DCT of the frequency stream (AIRL (Parihar), §III-B) is a matrix product
  (:mod:`fakescope.models.dct`), so it is in the graph too.
- INFER family: the head on precomputed inputs (INFER §3.2-3.5, anonymous NeurIPS-format
  submission): the INR heatmaps
  ``heatmaps`` ``[B,L,R,R]`` (fitted per face by an optimisation loop, which cannot be a graph) and the
  frozen image embedding ``clip`` ``[B,D]``; plus ``image`` for the ablations that read pixels. The
  engine computes heatmaps and embeddings in PyTorch exactly as the torch engine does
  (:func:`fakescope.inference.inputs.batch_for_crops`).

The file is self-contained: its ``metadata_props`` hold the provenance (detector, image size,
normalisation, validation thresholds, the source checkpoint's weights SHA-256, fakescope version) and
the run's resolved config, so ``--engine onnx`` needs nothing else from the run. The one outside part
is the frozen embedding backbone of the INFER detectors that read ``clip``: it is rebuilt from its
pretrained source and checked against the SHA-256 of the run's frozen weights recorded at export, so
export refuses a run whose frozen backbone is random (``model.pretrained=false``).

Every export is checked before it is written: onnxruntime must reproduce the PyTorch scores of the
export inputs within :data:`EXPORT_TOLERANCE`, so a graph that traced wrongly is refused, not shipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fakescope import __version__
from fakescope.config import ExperimentConfig, config_from_dict
from fakescope.errors import FakescopeError, ModelLoadError
from fakescope.utils.atomic import atomic_write_bytes
from fakescope.utils.hashing import file_sha256

__all__ = [
    "ONNX_FORMAT",
    "AIRL_FAMILY",
    "EXPORT_TOLERANCE",
    "OnnxExportError",
    "OnnxClassifier",
    "export_onnx",
    "export_detector",
    "load_onnx_detector",
    "graph_input_names",
    "state_sha256",
]

ONNX_FORMAT = "fakescope-onnx/1"
#: Detectors whose whole forward (RGB backbone and DCT stream) is exported on the face image.
AIRL_FAMILY = ("airl", "airl_rgb", "airl_freq", "airl_nocon", "airl_early")
#: Largest |P(fake)| difference between onnxruntime and PyTorch that export accepts.
EXPORT_TOLERANCE = 1e-3
#: Graph inputs in the order they are declared; a detector uses a subset.
_INPUT_ORDER = ("image", "clip", "heatmaps")
#: Opset 17: LayerNormalization is native, and onnxruntime 1.16+ runs every op used here.
OPSET = 17
NORMALISATION = (
    "image: aligned face crop resized to image_size (INTER_AREA down, INTER_CUBIC up), RGB, float32 "
    "[B,3,S,S] in [0,1]; the backbone's mean/std normalisation is inside the graph"
)


class OnnxExportError(FakescopeError):
    """A run cannot be exported to ONNX (unsupported detector family, a frozen backbone that the engine
    could not rebuild, or a graph that does not reproduce PyTorch's scores)."""


def state_sha256(module: nn.Module) -> str:
    """SHA-256 over a module's ``state_dict`` (names, dtypes, shapes and bytes, in name order)."""
    h = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        t = value.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def graph_input_names(detector: nn.Module) -> list[str]:
    """The batch keys the exported graph takes, or :class:`OnnxExportError` saying why it cannot be
    exported (only the AIRL family and the INFER-family heads are)."""
    from fakescope.models.infer import InferFamily

    name = str(getattr(detector, "name", type(detector).__name__))
    if name in AIRL_FAMILY:
        return ["image"]
    if isinstance(detector, InferFamily):
        return [k for k in _INPUT_ORDER if k in detector.inputs]
    family = getattr(detector, "family", "") or "no family"
    raise OnnxExportError(
        f"detector {name} ({family}) has no ONNX export: only the AIRL family "
        f"({', '.join(AIRL_FAMILY)}) and the INFER-family heads are exported; "
        "score it with --engine torch"
    )


class _GraphForward(nn.Module):
    """Positional tensors → the detector's batch dict → ``(prob, logits)``: the traced function."""

    def __init__(self, detector: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.detector = detector
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.detector(dict(zip(self.names, tensors, strict=True)))
        return out["prob"], out["logits"]


def _example_inputs(detector: nn.Module, cfg: ExperimentConfig, names: list[str]) -> list[torch.Tensor]:
    """Random inputs of the shapes ``detect`` builds (batch 3, so no axis is traced as size 1)."""
    gen = torch.Generator().manual_seed(0)
    s, b = int(cfg.data.image_size), 3
    shapes = {"image": (b, 3, s, s)}
    if "clip" in names:
        shapes["clip"] = (b, int(detector.backbone.out_dim))
    if "heatmaps" in names:
        r = int(cfg.inr.resolution)
        shapes["heatmaps"] = (b, int(detector.heatmap_encoder.num_maps), r, r)
    return [torch.rand(shapes[n], generator=gen) for n in names]


def _embedding_backbone_meta(detector: nn.Module, cfg: ExperimentConfig, names: list[str]) -> dict[str, str]:
    """For heads fed ``clip``: which frozen backbone the engine rebuilds, and the SHA-256 of the run's
    frozen weights that the rebuilt one must match. ``cfg.model.pretrained`` says whether the run's
    backbone came from a named source (the loaded detector is built without fetching it)."""
    if "clip" not in names:
        return {}
    backbone = detector.backbone
    if not cfg.model.pretrained:
        raise OnnxExportError(
            f"detector {detector.name}: its frozen image backbone {backbone.spec.name} is randomly initialised "
            "(model.pretrained=false), so the ONNX engine could not rebuild the embeddings its head was "
            "trained on; export a run whose frozen backbone is pretrained (e.g. model.backbone=lite0)"
        )
    return {"embedding_backbone": backbone.spec.name, "embedding_backbone_sha256": state_sha256(backbone)}


def _trace(wrapper: nn.Module, examples: list[torch.Tensor], names: list[str], name: str) -> bytes:
    """``torch.onnx.export`` (TorchScript tracer, dynamic batch axis) → the serialised model."""
    dynamic = {n: {0: "batch"} for n in [*names, "prob", "logits"]}
    with tempfile.TemporaryDirectory(prefix="fakescope-onnx-") as tmp:
        path = Path(tmp) / "model.onnx"
        try:
            with warnings.catch_warnings():
                # The tracer warns about every Python-level shape check in the models; they are constant
                # for a fixed image size, which is what the graph is exported for.
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    wrapper, tuple(examples), str(path), input_names=names,
                    output_names=["prob", "logits"], dynamic_axes=dynamic, opset_version=OPSET,
                    dynamo=False,
                )  # fmt: skip
        except Exception as err:  # the exporter raises many types; the CLI needs one line
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise OnnxExportError(f"detector {name}: torch.onnx.export failed ({first})") from None
        return path.read_bytes()


def _check_parity(data: bytes, wrapper: nn.Module, examples: list[torch.Tensor], names: list[str]) -> float:
    """Max |P(fake)| difference between onnxruntime and PyTorch on ``examples``."""
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(["prob"], {n: t.numpy() for n, t in zip(names, examples, strict=True)})[0]
    with torch.no_grad():
        want = wrapper(*examples)[0].float().numpy()
    return float(np.max(np.abs(got - want)))


def _with_metadata(data: bytes, props: dict[str, str]) -> bytes:
    import onnx

    model = onnx.load_from_string(data)
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name, model.producer_version = "fakescope", __version__
    return model.SerializeToString()


def _quantize_int8(data: bytes) -> bytes:
    """Dynamic int8 quantisation of the weights (onnxruntime ``quantize_dynamic``): MatMul/Gemm and
    Conv weights become int8, activations are quantised per batch at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="fakescope-onnx-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(data)
        root = logging.getLogger()
        level = root.level
        # quantize_dynamic logs a root-logger warning per tensor it leaves in float (shape slices of the
        # padding): dozens of lines that say nothing about the result, whose effect docs/onnx.md measures.
        root.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        return dst.read_bytes()


def export_onnx(
    run_dir_or_checkpoint: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    quantize: str | None = None,
    prefer: str = "best",
) -> dict[str, Any]:
    """Export a trained run's classifier (its ``best`` checkpoint, loaded without pickle by
    :func:`~fakescope.inference.checkpoint.load_detector`) to ``out_path``, written atomically.

    ``quantize="int8"`` applies onnxruntime's dynamic int8 quantisation after the fp32 graph has passed
    the parity check. Returns the metadata written (plus ``max_abs_diff``, the fp32 check's figure).
    Raises :class:`OnnxExportError` for a detector that cannot be exported and
    :class:`~fakescope.errors.ModelLoadError` for a run that cannot be loaded.
    """
    from fakescope.inference.checkpoint import load_detector, resolve_checkpoint

    if quantize not in (None, "int8"):
        raise OnnxExportError(f"quantize={quantize!r}: only int8 (dynamic) is supported")
    detector, cfg, meta = load_detector(run_dir_or_checkpoint, "cpu", prefer=prefer)
    source = resolve_checkpoint(run_dir_or_checkpoint, prefer)
    if not meta.get("weights_sha256"):
        # A checkpoint saved before checkpoints recorded their hash: hash the weights file itself.
        weights = source.with_name(source.name.removesuffix(".json") + ".safetensors")
        meta = {**meta, "weights_sha256": file_sha256(weights)}
    return export_detector(detector, cfg, meta, out_path, quantize, str(source))


def export_detector(
    detector: nn.Module,
    cfg: ExperimentConfig,
    meta: dict[str, Any],
    out_path: str | os.PathLike[str],
    quantize: str | None = None,
    source: str = "",
) -> dict[str, Any]:
    """:func:`export_onnx` for a detector already in memory (``meta``: the checkpoint's metadata, or
    ``{"detector": name, "val_threshold": None}`` for the random weights ``fakescope bench`` times)."""
    if quantize not in (None, "int8"):
        raise OnnxExportError(f"quantize={quantize!r}: only int8 (dynamic) is supported")
    detector = detector.to("cpu").eval()
    name = str(meta.get("detector") or cfg.model.name)
    names = graph_input_names(detector)
    props = {
        "fakescope.format": ONNX_FORMAT,
        "fakescope.version": __version__,
        "detector": name,
        "family": str(getattr(detector, "family", "")),
        "backbone": str(getattr(detector, "backbone_name", None) or cfg.model.backbone),
        "inputs": json.dumps(names),
        "outputs": json.dumps(["prob", "logits"]),
        "image_size": str(int(cfg.data.image_size)),
        "normalisation": NORMALISATION,
        "val_threshold": json.dumps(meta.get("val_threshold")),
        "source_checkpoint": source,
        "source_weights_sha256": str(meta.get("weights_sha256")),
        "source_epoch": str(meta.get("epoch")),
        "source_step": str(meta.get("step")),
        "quantization": "int8-dynamic" if quantize == "int8" else "none",
        "opset": str(OPSET),
        **_embedding_backbone_meta(detector, cfg, names),
        "config": json.dumps(cfg.model_dump(mode="json"), sort_keys=True),
    }
    wrapper = _GraphForward(detector, names).eval()
    examples = _example_inputs(detector, cfg, names)
    data = _trace(wrapper, examples, names, name)
    diff = _check_parity(data, wrapper, examples, names)
    if not diff <= EXPORT_TOLERANCE:
        raise OnnxExportError(
            f"detector {name}: the exported graph gives scores {diff:.2g} away from PyTorch on the export "
            f"inputs (tolerance {EXPORT_TOLERANCE:g}); not written"
        )
    if quantize == "int8":
        data = _quantize_int8(data)
    atomic_write_bytes(out_path, _with_metadata(data, props))
    return {**props, "max_abs_diff": diff}


class OnnxClassifier(nn.Module):
    """Stands in for a detector module in :class:`fakescope.api.FaceForgeryDetector`: it has the
    detector's ``name``, ``inputs`` and (INFER heads fed ``clip``) its frozen ``backbone`` for the
    embeddings, so :func:`~fakescope.inference.inputs.batch_for_crops` builds the same batch as for the
    torch engine; ``forward`` runs the batch through onnxruntime and returns ``prob`` and ``logits``."""

    engine = "onnx"
    freeze_backbone = True

    def __init__(
        self,
        session: Any,
        name: str,
        graph_inputs: list[str],
        backbone: nn.Module | None = None,
        family: str = "",
        backbone_name: str | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.name = name
        self.family = family
        self.graph_inputs = list(graph_inputs)
        self.inputs = frozenset(self.graph_inputs) | {"image"}
        self.backbone = backbone
        self.uses_image_embedding = backbone is not None
        #: The detector's image backbone (inside the graph for the AIRL family), for bench's table.
        self.backbone_name = backbone_name

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        feeds = {}
        for key in self.graph_inputs:
            value = batch.get(key)
            if value is None:
                raise ModelLoadError(f"ONNX model of {self.name} needs batch[{key!r}]")
            feeds[key] = np.ascontiguousarray(value.detach().float().cpu().numpy())
        prob, logits = self.session.run(["prob", "logits"], feeds)
        return {"prob": torch.from_numpy(prob), "logits": torch.from_numpy(logits)}

    def gradcam_layer(self) -> None:
        return None


def _read_model(path: Path) -> Any:
    import onnx

    if not path.is_file():
        raise ModelLoadError(
            f"{path}: no such ONNX file (write one with fakescope export --run RUN --onnx FILE)"
        )
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf's DecodeError and friends
        raise ModelLoadError(
            f"{path}: not a readable ONNX model ({type(err).__name__}); re-export it"
        ) from None
    props = {p.key: p.value for p in model.metadata_props}
    if props.get("fakescope.format") != ONNX_FORMAT:
        raise ModelLoadError(
            f"{path}: not a fakescope ONNX export (no {ONNX_FORMAT} metadata); write one with fakescope export"
        )
    return model, props


def _session(data: bytes, device: torch.device, path: Path) -> Any:
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    # The same thread count as the torch engine, so the two engines compare on equal terms.
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    try:
        return ort.InferenceSession(data, sess_options=options, providers=providers)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"{path}: onnxruntime cannot load it ({first})") from None


def _embedding_backbone(cfg: ExperimentConfig, props: dict[str, str], path: Path) -> nn.Module:
    from fakescope.models.features import image_backbone_for

    backbone = image_backbone_for(cfg.model)
    same = backbone.spec.name == props.get("embedding_backbone")
    if not same or state_sha256(backbone) != props.get("embedding_backbone_sha256"):
        raise ModelLoadError(
            f"{path}: the frozen embedding backbone rebuilt here ({backbone.backbone_id}) differs from the "
            f"run's {props.get('embedding_backbone')} that the head was trained on; embeddings would not match"
        )
    return backbone.eval()


def load_onnx_detector(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[OnnxClassifier, ExperimentConfig, dict[str, Any]]:
    """Load an export for the ONNX engine: ``(classifier, the run's config, meta)`` shaped like
    :func:`~fakescope.inference.checkpoint.load_detector`'s result. onnxruntime runs on the CPU, or with
    the CUDA provider when ``device`` is CUDA and onnxruntime has it. Raises
    :class:`~fakescope.errors.ModelLoadError` with one line for a missing, corrupt or foreign file."""
    path = Path(path)
    device = torch.device(device)
    model, props = _read_model(path)
    try:
        cfg = config_from_dict(json.loads(props["config"]), str(path))
        names = json.loads(props["inputs"])
        threshold = json.loads(props.get("val_threshold", "null"))
    except (KeyError, ValueError, FakescopeError) as err:
        raise ModelLoadError(f"{path}: damaged fakescope metadata ({err})") from None
    backbone = _embedding_backbone(cfg, props, path).to(device) if "clip" in names else None
    session = _session(model.SerializeToString(), device, path)
    classifier = OnnxClassifier(
        session, props["detector"], names, backbone, props.get("family", ""), props.get("backbone")
    )
    meta = {
        "detector": props["detector"],
        "val_threshold": threshold,
        "weights_sha256": props.get("source_weights_sha256"),
        "onnx": {k: v for k, v in props.items() if k != "config"},
    }
    return classifier, cfg, meta
