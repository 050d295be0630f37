"""Configuration: defaults are valid, every problem is reported at once, overrides and TOML round-trip."""

import tomllib

import pytest

from seal import config
from seal.errors import ConfigError


def test_defaults_are_valid():
    """The defaults must pass validation unchanged."""
    cfg = config.Config()
    assert config.validate(cfg) is cfg


def test_every_problem_is_reported_at_once():
    """One ConfigError names each bad setting, so a user fixes them all in one go."""
    with pytest.raises(ConfigError) as err:
        config.from_dict({"train": {"epochs": 0, "loss_on": "prompt", "modules": "attention"}, "self_edit": {"format": "poem"},
                          "verify": {"bogus": 1}, "model": {"dtype": 3}})
    message = str(err.value)
    for needle in ("train.epochs = 0", "train.loss_on = 'prompt'", "train.modules = 'attention'", "self_edit.format = 'poem'",
                   "verify.bogus: unknown setting", "model.dtype = 3: must be str"):
        assert needle in message, f"{needle!r} missing from: {message}"


def test_overrides_parse_toml_values_and_bare_words():
    """--set values are read as TOML (numbers, booleans), else as plain strings."""
    assert config.parse_overrides(["train.epochs=3", "train.bf16=false", "self_edit.format=self_qa"]) == {
        "train": {"epochs": 3, "bf16": False}, "self_edit": {"format": "self_qa"}}
    with pytest.raises(ConfigError, match="section.key=value"):
        config.parse_overrides(["epochs"])


def test_file_then_overrides(monkeypatch, tmp_path):
    """Defaults < config.toml < overrides; an int is accepted where a float is expected."""
    monkeypatch.setenv("SEAL_HOME", str(tmp_path))
    (tmp_path / "config.toml").write_text("[train]\nepochs = 4\nlearning_rate = 1\n[verify]\nmin_gain = 0\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        config.load()
    (tmp_path / "config.toml").write_text("[train]\nepochs = 4\n[verify]\nmin_gain = 0\n")
    cfg = config.load({"train": {"rank": 8}})
    assert (cfg.train.epochs, cfg.train.rank, cfg.verify.min_gain) == (4, 8, 0.0)


def test_toml_rendering_round_trips():
    """`seal config show` output is valid TOML that loads back to the same configuration."""
    cfg = config.Config()
    assert config.from_dict(tomllib.loads(config.to_toml(cfg))) == cfg


def test_non_finite_numbers_and_bad_nesting_are_refused():
    with pytest.raises(ConfigError, match="self_edit.temperature = nan: must be a finite number"):
        config.from_dict(config.parse_overrides(["self_edit.temperature=nan"]))
    with pytest.raises(ConfigError, match="train is set to a value"):
        config.parse_overrides(["train=5", "train.epochs=3"])


def test_the_gpu_profile_sits_under_the_file_and_overrides(monkeypatch, tmp_path):
    """profile = "gpu" (in config.toml or via --set) brings the GPU-sized defaults; the file's own settings and
    --set still win; the default profile is the dataclasses' own; an unknown profile is one error naming both."""
    monkeypatch.setenv("SEAL_HOME", str(tmp_path))
    assert config.load() == config.Config()
    gpu = config.load({"profile": "gpu"})
    assert (gpu.profile, gpu.train.rank, gpu.train.alpha, gpu.train.epochs, gpu.self_edit.k) == ("gpu", 32, 64, 10, 3)
    (tmp_path / "config.toml").write_text('profile = "gpu"\n[train]\nrank = 8\n')
    cfg = config.load({"train": {"epochs": 2}})
    assert (cfg.train.rank, cfg.train.epochs, cfg.train.alpha) == (8, 2, 64)
    assert config.load({"profile": "cpu"}).train.alpha == config.Config().train.alpha
    with pytest.raises(ConfigError, match="profile = 'tpu': use 'cpu' or 'gpu'"):
        config.load({"profile": "tpu"})
    for name, values in config.PROFILES.items():  # every profile is a valid configuration
        assert config.from_dict({**values, "profile": name}).profile == name


def test_model_quantize_and_dtype_values_are_checked():
    with pytest.raises(ConfigError, match="model.quantize = '8bit': use 'none' or '4bit'"):
        config.from_dict({"model": {"quantize": "8bit"}})
    assert config.from_dict({"model": {"dtype": "float16"}}).model.dtype == "float16"
