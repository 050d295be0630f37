"""The GPU check (benchmarks/device_check.py) stays runnable where no GPU is: its parity part runs on the CPU
against itself, and its wheel list for a bare GPU box carries what the ingest path imports."""

import json
import sys

import pytest
import torch

from benchmarks import device_check


def test_the_device_check_runs_on_the_cpu_and_its_parity_holds(tmp_path, capsys):
    """`--device cpu --quick`: the tiny model's ingest on the CPU in fp32 and again with bf16 training, each
    committed as v1 with the same first loss (within tolerance) and an adapter that loads; the markdown is
    printed, and the JSON and markdown are written under --out with the fields a reader compares."""
    code = device_check.main(["--device", "cpu", "--quick", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "cpu.json").read_text())
    parity = result["parity"]
    assert code == 0 and parity["holds"], f"parity failed: {parity['problems']}"
    assert "Parity: holds" in printed and (tmp_path / "cpu.md").read_text() in printed
    assert set(result["machine"]) >= {"device", "name", "torch", "transformers", "peft", "memory_gib"}
    assert len(parity["runs"]) == 2 and "timings" not in result, "--quick runs parity only, on the CPU twice"
    for name, run in parity["runs"].items():
        assert run["status"] == "committed" and run["version"] == 1, (name, run["reason"])
        assert run["first_loss_rel_diff"] <= run["tolerance"] <= parity["tolerance"], (name, run["losses"][:1])
        assert run["adapter"]["loads"] and run["adapter"]["finite"] and run["adapter"]["max_logit_change"] > 0, name
        assert set(run["stages"]) == set(device_check.STAGES), f"{name}: a stage recorded no time: {run['stages']}"
        assert run["weights_dtype"] == "float32" and run["weights_device"] == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_cuda_device_is_a_one_line_error(tmp_path, capsys):
    code = device_check.main(["--device", "cuda", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and err.startswith("Error: --device cuda: "), err
    assert not list(tmp_path.iterdir()), "nothing is written when the device is missing"


def test_the_wheels_carry_what_the_ingest_path_imports_and_not_torch():
    """The bare GPU box has torch, transformers and peft; the wheels bring the store and the graph (SQLAlchemy,
    alembic, langgraph and its checkpointer) and what they need, at the versions tested here, and nothing that
    the documents' readers (pypdf, trafilatura, python-docx) or the server would pull in."""
    specs, left_out = device_check.wheel_list(f"{sys.version_info.major}.{sys.version_info.minor}")
    names = {spec.split("==")[0] for spec in specs}
    assert {"sqlalchemy", "alembic", "langgraph", "langgraph-checkpoint-sqlite", "langchain-core", "pydantic"} <= names
    assert not names & device_check.ON_THE_BOX, names & device_check.ON_THE_BOX
    assert not names & {"pypdf", "trafilatura", "lxml", "python-docx", "fastapi", "uvicorn", "gguf"}, (
        "a document reader or the server is imported on the ingest path: make its import lazy")
    assert all("==" in spec for spec in specs if spec.split("==")[0] in {"sqlalchemy", "langgraph"}), specs
