from pathlib import Path

import pytest

from fakescope.config import load_config, save_config
from fakescope.errors import ConfigError


def test_defaults_follow_design():
    cfg = load_config()
    assert cfg.inr.width == 128 and cfg.inr.depth == 3 and cfg.inr.omega0 == 30.0
    assert cfg.inr.target_psnr == 35.0
    assert cfg.train.supcon_weight == 0.5 and cfg.train.supcon_temperature == 0.07


def test_yaml_and_overrides(tmp_path: Path):
    f = tmp_path / "x.yaml"
    f.write_text("train:\n  lr: 0.001\ninr:\n  resolution: 64\n")
    cfg = load_config(f, ["train.lr=3e-4", "model.pretrained=false", "name=abc"])
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.inr.resolution == 64
    assert cfg.model.pretrained is False
    assert cfg.name == "abc"


def test_unknown_key_names_key_and_file(tmp_path: Path):
    f = tmp_path / "bad.yaml"
    f.write_text("train:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "train.lrr" in str(e.value) and str(f) in str(e.value) and "unknown key" in str(e.value)


def test_wrong_type_and_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(None, ["train.epochs=lots"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_resolved_config_round_trips(tmp_path: Path):
    cfg = load_config(None, ["inr.activation=wire", "seed=7"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg


def test_config_reference_page_is_current():
    from fakescope.config_reference import PAGE_PATH, config_reference_markdown, config_reference_page

    page = (Path(__file__).resolve().parents[1] / PAGE_PATH).read_text(encoding="utf-8")
    assert page == config_reference_page(), "docs/config.md is stale: python -m fakescope.config_reference"
    assert config_reference_markdown() in page


def test_readme_links_the_config_reference():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "docs/config.md" in readme
