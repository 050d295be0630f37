"""Where the model runs: `model.device` and `model.dtype` resolved (auto: CUDA, else mps, else the CPU; bf16
on a CUDA GPU that has it, fp32 on CPUs as before), a device that is not there is a one-line error rather
than a silent fall-back to the CPU, and — on a machine with a CUDA GPU — the tiny model's ingest cycle runs
on it with results close to the CPU's."""

import pytest
import torch

from model_runtime import loading
from seal.errors import InputError
from tests.conftest import DOCUMENT, QUESTIONS


def test_auto_resolves_to_what_the_machine_has():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert loading.device("auto").type == expected
    assert loading.dtype("auto", torch.device("cpu")) == torch.float32, "CPUs keep fp32 weights"
    assert loading.dtype("bfloat16", torch.device("cpu")) == torch.bfloat16


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_device_is_a_one_line_error_not_a_fallback(learned):
    with pytest.raises(InputError, match="model.device = 'cuda:1', but torch sees 0 CUDA"):
        loading.device("cuda:1")
    run = learned.run("--set", "model.device=cuda", "ask", "Who built the lighthouse?")
    err = run.stderr.decode().strip()
    assert run.returncode == 1 and len(err.splitlines()) == 1 and "model.device = 'cuda'" in err, err
    bad = learned.run("--set", "model.device=gpu0", "ask", "Who?")
    assert bad.returncode == 1 and "model.device = 'gpu0': use 'auto', 'cpu'" in bad.stderr.decode()
    env = learned.run("env", "--json")
    assert env.returncode == 0 and '"device": "cpu (' in env.stdout.decode()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_ingest_cycle_runs_on_cuda(tmp_path, tiny_model_dir, monkeypatch):
    """A document learned end to end with the model on the GPU (bf16 weights): committed, and asked again."""
    from agent import workspace
    from agent.answer import ask
    from agent.ingest import DocumentInput, ingest
    from agent.workspace import Workspace
    from seal import config as seal_config
    from tests.conftest import TINY_CONFIG

    (tmp_path / "config.toml").write_text(TINY_CONFIG.format(model=tiny_model_dir))
    monkeypatch.setenv("SEAL_HOME", str(tmp_path))
    workspace._MODELS.clear()
    ws = Workspace.open(seal_config.load({"model": {"device": "cuda"}}))
    assert ws.lm.device.type == "cuda" and ws.lm.base.dtype == torch.bfloat16
    supplied = tuple((q["question"], q["answer"]) for q in QUESTIONS)
    [result] = ingest(ws, [DocumentInput("doc.md", "Lighthouse", DOCUMENT, supplied)])
    assert result.status == "committed" and ask(ws, QUESTIONS[0]["question"]).version == 1
    workspace._MODELS.clear()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_matches_the_cpu(tiny_model_dir):
    """The same examples (cross-entropy and distillation) trained on the CPU in fp32 and on the GPU under bf16
    autocast: the same first loss within tolerance, and both learn (the loss falls, the adapter drifts)."""
    from agent.adapt import lora_config
    from model_runtime import LanguageModel, TrainingExample, divergence, train_lora
    from seal.config import ModelConfig, TrainConfig

    cfg = TrainConfig(epochs=3, batch_size=2, bf16=True)
    examples = [TrainingExample("", DOCUMENT), TrainingExample("Q: Who built it?\nA:", " Morwen Hale",
                                                                teacher=DOCUMENT + "\nQ: Who built it?\nA:")]
    runs = {}
    for where in ("cpu", "cuda"):
        model, tokenizer, name = loading.load(ModelConfig(path=str(tiny_model_dir), device=where, dtype="float32"),
                                              tiny_model_dir)
        lm = LanguageModel(model, tokenizer, name)
        torch.manual_seed(0)
        lm.add_adapter("a", lora_config(cfg, lm.base))
        result = train_lora(lm, "a", examples, cfg)
        runs[where] = (result.losses, divergence(lm, examples, "a"))
    (cpu_losses, cpu_drift), (gpu_losses, gpu_drift) = runs["cpu"], runs["cuda"]
    # The first step starts from the identity update (B = 0) on both: the same loss up to bf16 rounding; after
    # it the two initial A matrices may differ (each device draws its own), so the curves need only both fall.
    assert gpu_losses[0] == pytest.approx(cpu_losses[0], rel=0.02)
    assert gpu_losses[-1] < gpu_losses[0] and cpu_losses[-1] < cpu_losses[0]
    assert gpu_drift > 0 and cpu_drift > 0


def test_float16_where_a_gpu_lacks_bfloat16(monkeypatch):
    """model.dtype = auto on a CUDA GPU without bfloat16 loads float16 weights (training then scales its loss)."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert loading.dtype("auto", torch.device("cuda")) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert loading.dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert loading.dtype("float16", torch.device("cpu")) == torch.float16


def test_4bit_base_weights_need_a_cuda_gpu_and_bitsandbytes(tiny_model_dir, monkeypatch):
    """model.quantize = 4bit (QLoRA) where it cannot run is a one-line error naming the fix, before any weight
    is read: on a CPU, and on a CUDA device without bitsandbytes installed."""
    from seal.config import ModelConfig

    with pytest.raises(InputError, match="needs a CUDA GPU .*set model.quantize = 'none'"):
        loading.load(ModelConfig(path=str(tiny_model_dir), device="cpu", quantize="4bit"), tiny_model_dir)
    monkeypatch.setattr(loading.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"pip install 'seal-runtime\[qlora\]'"):
        loading.quantization(ModelConfig(quantize="4bit"), torch.device("cuda"), torch.bfloat16)
    assert loading.quantization(ModelConfig(), torch.device("cuda"), torch.bfloat16) is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_qlora_trains_on_a_4bit_base(tiny_model_dir):
    """On a CUDA GPU with bitsandbytes, a 4-bit base trains a fp32 LoRA that changes its answers' loss."""
    pytest.importorskip("bitsandbytes")
    from agent.adapt import lora_config
    from model_runtime import LanguageModel, TrainingExample, train_lora
    from seal.config import ModelConfig, TrainConfig

    model, tokenizer, name = loading.load(ModelConfig(path=str(tiny_model_dir), device="cuda", quantize="4bit"),
                                          tiny_model_dir)
    lm = LanguageModel(model, tokenizer, name)
    cfg = TrainConfig(epochs=4, learning_rate=1e-2)
    lm.add_adapter("cand", lora_config(cfg, lm.base))
    result = train_lora(lm, "cand", [TrainingExample("", "Morwen Hale built the lighthouse in 1847.")], cfg)
    assert result.losses[-1] < result.losses[0]
    assert all(p.dtype == torch.float32 for n, p in lm.peft.named_parameters() if "lora_" in n)


def _model_copy(tiny_model_dir, tmp_path, **config_changes):
    import json
    import shutil

    directory = tmp_path / "model"
    shutil.copytree(tiny_model_dir, directory)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, **config_changes}))
    return directory


def test_a_model_that_cannot_load_is_one_error_before_any_weight_is_read(tiny_model_dir, tmp_path, monkeypatch):
    """An architecture transformers does not know, one that is not a causal LM, and weights larger than the
    device's free memory (counted from the safetensors headers) are each an InputError naming the fix."""
    from seal.config import ModelConfig

    unknown = _model_copy(tiny_model_dir, tmp_path / "a", model_type="nosuchmodel")
    with pytest.raises(InputError, match="cannot read model type 'nosuchmodel'.*upgrade transformers"):
        loading.load(ModelConfig(path=str(unknown), device="cpu"), tmp_path)
    encoder = _model_copy(tiny_model_dir, tmp_path / "b", model_type="t5")
    with pytest.raises(InputError, match="'t5' model is not a causal language model"):
        loading.load(ModelConfig(path=str(encoder), device="cpu"), tmp_path)

    count = loading.parameters(tiny_model_dir)
    model, _, _ = loading.load(ModelConfig(path=str(tiny_model_dir), device="cpu"), tmp_path)
    assert count == sum(p.numel() for p in model.parameters())
    monkeypatch.setattr(loading, "free_memory", lambda where: count * 4)  # the fp32 weights, no room to work
    monkeypatch.setattr(loading.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("loaded"))
    with pytest.raises(InputError, match=r"need ~.* GiB in float32 but cpu has .* GiB free; use a smaller model"):
        loading.load(ModelConfig(path=str(tiny_model_dir), device="cpu"), tmp_path)
