"""An ensemble of trained detectors as one detector: the mean of the members' temperature-scaled
log-odds.

Detectors built on different evidence (RGB appearance, the block-DCT spectrum, SRM noise residuals)
can fail on different faces, so their combination may rank better than either. Their raw scores are
not on one scale, so each member's log-odds ``z_m = logit_fake - logit_real`` are first divided by
its own temperature ``T_m`` (fitted on validation, Guo et al., ICML 2017, §4.2) and then averaged:
``z = mean_m z_m / T_m``, and the ensemble's P(fake) is ``sigmoid(z)``. This is the combination
:func:`fakescope.eval.ensemble.combine` measures on saved scores, as a module, so an ensemble run is
scored, calibrated, explained and served like any other run. The temperatures are fixed numbers of the
config (``model.member_temperatures``), not trained.

The ensemble returns two-class logits ``[-z/2, z/2]`` (whose softmax is ``sigmoid(z)``) and the
members' penultimate features side by side; its members are ``members.0``, ``members.1``, ... in its
state dict, each the member run's own weights. ``fakescope ensemble`` builds such a run from trained
runs (:func:`fakescope.eval.ensemble.build_ensemble_run`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from fakescope.errors import ConfigError
from fakescope.models.detector import Detector, output_dict
from fakescope.models.registry import build_detector, register_detector

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig
    from fakescope.models.spec import InputSpec

__all__ = ["LogitEnsemble"]


@register_detector("ensemble", listed=False)
class LogitEnsemble(Detector):
    """``model.members`` (two or more detectors that read the face crop alone), combined as the mean of
    their log-odds divided by ``model.member_temperatures``."""

    family: ClassVar[str] = "ensemble"
    description: ClassVar[str] = "mean of the members' temperature-scaled log-odds"
    paper_ref: ClassVar[str] = "Guo et al., ICML 2017, §4.2 (temperature scaling)"

    def __init__(self, config: ModelConfig, input_spec: InputSpec) -> None:
        super().__init__(config, input_spec)
        members, temps = config.members, config.member_temperatures
        if len(members) < 2:
            raise ConfigError(f"model.members: an ensemble needs at least two members, got {len(members)}")
        if len(temps) != len(members):
            raise ConfigError(
                f"model.member_temperatures: {len(temps)} temperatures for {len(members)} members"
            )
        if any(not t > 0 for t in temps):
            raise ConfigError(f"model.member_temperatures: every temperature must be > 0, got {temps}")
        nested = [m.name for m in members if m.name == "ensemble"]
        if nested:
            raise ConfigError("model.members: an ensemble cannot hold another ensemble")
        # A member is loaded from its run's weights: it never fetches pretrained weights of its own
        # when the ensemble does not (load_detector builds every run with pretrained=False).
        built = [
            build_detector(
                m.model_copy(update={"pretrained": m.pretrained and config.pretrained}), input_spec
            )
            for m in members
        ]
        for m, det in zip(members, built, strict=True):
            if set(det.inputs) - {"image"}:
                raise ConfigError(
                    f"model.members: {m.name} reads {sorted(det.inputs)}; an ensemble's members read "
                    "the face crop alone (batch['image'])"
                )
        self.members = nn.ModuleList(built)
        self.temperatures = [float(t) for t in temps]
        self.inputs = frozenset({"image"})

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        z = None
        features = []
        for member, t in zip(self.members, self.temperatures, strict=True):
            out = member(batch)
            logits = out["logits"].float()
            term = (logits[:, 1] - logits[:, 0]) / t
            z = term if z is None else z + term
            features.append(out["features"].float())
        assert z is not None
        z = z / len(self.members)
        return output_dict(torch.stack([-z / 2, z / 2], dim=1), torch.cat(features, dim=1))

    def backbone_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.members for p in m.backbone_parameters()]

    def gradcam_layer(self) -> nn.Module | None:
        # Grad-CAM explains the ensemble's score through its first member's last feature map (the
        # gradient of the mean reaches it scaled by 1 / (n T_0)); the other members are not shown.
        return self.members[0].gradcam_layer()

    def train(self, mode: bool = True) -> LogitEnsemble:
        super().train(mode)
        for m in self.members:
            m.train(mode)
        return self
