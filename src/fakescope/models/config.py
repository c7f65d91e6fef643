"""The ``model`` config section: which registered detector to build and how."""

from __future__ import annotations

from pydantic import Field

from fakescope.utils.schema import StrictModel


class ModelConfig(StrictModel):
    name: str = Field("airl", description="registered detector name (see `fakescope models`)")
    backbone: str = Field("efficientnet_b4", description="image backbone for RGB / CLIP branches")
    pretrained: bool = Field(True, description="load real pretrained weights; fails clearly when offline")
    weights_path: str | None = Field(None, description="local weights file instead of the hub")
