"""Adapter store: atomic version folders, checksums verified on load, safe version names."""

import json

import pytest

from adapters_store import AdapterStore, parse_version
from seal.errors import InputError, IntegrityError


def fake_adapter(directory):
    directory.mkdir()
    (directory / "adapter_model.safetensors").write_bytes(b"weights" * 100)
    (directory / "adapter_config.json").write_text("{}")
    return directory


def test_write_is_complete_and_checksummed(tmp_path):
    store = AdapterStore(tmp_path / "adapters")
    sums = store.write("knowledge", 1, fake_adapter(tmp_path / "src"), {"parent": 0})
    folder = store.path("knowledge", 1)
    assert folder.name == "v0001"
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json", "adapter_model.safetensors", "seal.json"]
    meta = json.loads((folder / "seal.json").read_text())
    assert meta["sha256"] == sums and meta["parent"] == 0 and meta["version"] == 1
    assert store.verified("knowledge", 1, sums) == folder
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tmp")], "temp folder left behind"


def test_tampered_and_missing_files_are_refused(tmp_path):
    store = AdapterStore(tmp_path / "adapters")
    sums = store.write("knowledge", 1, fake_adapter(tmp_path / "src"), {})
    weights = store.path("knowledge", 1) / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[10] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="v1.*adapter_model.safetensors.*sha256"):
        store.verified("knowledge", 1, sums)
    weights.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        store.verified("knowledge", 1, sums)


def test_write_refuses_a_folder_without_safetensors(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "adapter_model.bin").write_bytes(b"pickle")
    with pytest.raises(IntegrityError, match="safetensors"):
        AdapterStore(tmp_path / "adapters").write("knowledge", 1, source, {})


def test_version_names():
    assert parse_version("v3") == parse_version("3") == parse_version("v0003") == 3
    for bad in ("../x", "v3/../../etc", "latest", "", "v-1"):
        with pytest.raises(InputError):
            parse_version(bad)
