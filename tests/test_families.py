"""Chat models of five families, each a tiny model built in code with its family's chat template, special
tokens and end-of-sequence settings (Llama 3 lists three end ids; Gemma ends a turn on <end_of_turn> and
has no system role; Phi-3 on <|end|>): generation stops at the end of the turn, and a document goes through
ingest → commit → ask → rollback on each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from model_runtime import LanguageModel
from tests.conftest import CORPUS, DOCUMENT, QUESTIONS, TINY_CONFIG, seal

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
          "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
          "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
MISTRAL = ("{{ bos_token }}{% set ns = namespace(system='') %}{% for m in messages %}"
           "{% if m['role'] == 'system' %}{% set ns.system = m['content'] + '\n\n' %}"
           "{% elif m['role'] == 'user' %}[INST] {{ ns.system }}{{ m['content'] }} [/INST]{% set ns.system = '' %}"
           "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}")
GEMMA = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
         "{% endif %}{% for m in messages %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
         "<start_of_turn>{{ role }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
         "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
PHI3 = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")

# family: (model classes, chat template, special tokens, bos, the tokenizer's eos, the config's eos (one or a
# list), the generation config's eos, the end-of-turn token)
FAMILIES = {
    "llama3": (LlamaConfig, LlamaForCausalLM, LLAMA3,
               ["<|begin_of_text|>", "<|end_of_text|>", "<|eom_id|>", "<|eot_id|>", "<|start_header_id|>",
                "<|end_header_id|>"], "<|begin_of_text|>", "<|end_of_text|>",
               ["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"], ["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"],
               "<|eot_id|>"),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, CHATML, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None,
              "<|im_end|>", "<|endoftext|>", ["<|im_end|>", "<|endoftext|>"], "<|im_end|>"),
    "mistral": (MistralConfig, MistralForCausalLM, MISTRAL, ["<unk>", "<s>", "</s>"], "<s>", "</s>", "</s>", "</s>",
                "</s>"),
    "gemma2": (Gemma2Config, Gemma2ForCausalLM, GEMMA, ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"],
               "<bos>", "<eos>", "<eos>", ["<eos>", "<end_of_turn>"], "<end_of_turn>"),
    "phi3": (Phi3Config, Phi3ForCausalLM, PHI3, ["<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"],
             None, "<|endoftext|>", "<|endoftext|>", ["<|endoftext|>", "<|end|>"], "<|end|>"),
}


def build_family(directory: Path, family: str, end_of_turn_first: bool = False) -> Path:
    """A 2-layer model of `family` with a byte-level tokenizer and the family's chat settings, saved like a HF
    model. With `end_of_turn_first`, its output head prefers the end-of-turn token after any prompt."""
    config_class, model_class, template, specials, bos, eos, config_eos, generation_eos, end = FAMILIES[family]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=320, min_frequency=1, special_tokens=specials)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=bos, eos_token=eos, pad_token=eos)
    tokenizer.chat_template = template
    ids = lambda value: ([tokenizer.convert_tokens_to_ids(t) for t in value] if isinstance(value, list)
                         else tokenizer.convert_tokens_to_ids(value))
    torch.manual_seed(0)
    config = config_class(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=2048,
                          tie_word_embeddings=not end_of_turn_first, bos_token_id=ids(bos or eos),
                          eos_token_id=ids(config_eos), pad_token_id=ids(eos))
    model = model_class(config)
    model.generation_config = GenerationConfig(eos_token_id=ids(generation_eos), bos_token_id=ids(bos or eos))
    if end_of_turn_first:
        # One residual direction dominates every position, and only the end-of-turn logit reads it.
        with torch.no_grad():
            model.get_input_embeddings().weight[:, 0] += 10.0
            model.get_output_embeddings().weight[ids(end), 0] = 10.0
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_stops_at_the_families_end_of_turn(family, tmp_path):
    from model_runtime import loading
    from seal.config import ModelConfig

    lm = LanguageModel(*loading.load(ModelConfig(path=str(build_family(tmp_path, family, True))), tmp_path)[:2])
    end = lm.tokenizer.convert_tokens_to_ids(FAMILIES[family][-1])
    assert end in lm.stop_ids
    prompt = lm.chat_prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who?"}])
    assert "Be brief." in prompt and "Who?" in prompt  # a template with no system role gets it in the user turn
    inputs = lm.tokenizer([prompt], return_tensors="pt", add_special_tokens=False)
    ids = lm.base.generate(**inputs, generation_config=lm._generation_config(16, 0.0, 1.0, 1.0))
    assert ids[0, inputs["input_ids"].shape[1]:].tolist() == [end]  # the model's first token ends the turn
    assert lm.generate([prompt], max_new_tokens=16, temperature=0.0) == [""]
    # Stopping only on the tokenizer's eos, the same greedy answer would run on to its token limit.
    if lm.tokenizer.eos_token_id != end:
        config = lm._generation_config(16, 0.0, 1.0, 1.0)
        config.eos_token_id = [lm.tokenizer.eos_token_id]
        assert lm.base.generate(**inputs, generation_config=config).shape[1] == inputs["input_ids"].shape[1] + 16


@pytest.mark.parametrize("family", FAMILIES)
def test_a_document_is_learned_asked_and_rolled_back(family, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(TINY_CONFIG.format(model=build_family(tmp_path / "model", family)))
    (tmp_path / "doc.md").write_text(DOCUMENT)
    (tmp_path / "doc.qa.json").write_text(json.dumps(QUESTIONS))
    run = lambda *args: seal(home, *args, capsys=capsys, monkeypatch=monkeypatch)
    ingested = run("ingest", str(tmp_path / "doc.md"), "--qa", str(tmp_path / "doc.qa.json"))
    assert ingested.returncode == 0, ingested.stderr.decode()
    assert b"committed" in ingested.stdout
    asked = run("ask", "Who built the Brannock Lighthouse?")
    assert asked.returncode == 0, asked.stderr.decode()
    assert json.loads(run("versions", "list", "--json").stdout)["active"] == 1
    rolled = run("versions", "rollback", "v0")
    assert rolled.returncode == 0, rolled.stderr.decode()
    assert json.loads(run("versions", "list", "--json").stdout)["active"] == 0


def test_a_model_without_a_chat_template_is_one_clear_error(tmp_path, monkeypatch, capsys):
    directory = build_family(tmp_path / "model", "llama3")
    config = json.loads((directory / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    (directory / "chat_template.jinja").unlink(missing_ok=True)
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(TINY_CONFIG.format(model=directory))
    result = seal(home, "ask", "Who?", capsys=capsys, monkeypatch=monkeypatch)
    assert result.returncode != 0
    assert b"model.chat_template" in result.stderr and len(result.stderr.decode().strip().splitlines()) == 1
    # Given the template in the configuration, the same model answers.
    (home / "config.toml").write_text(TINY_CONFIG.format(model=directory).replace(
        "[model]\n", f"[model]\nchat_template = '''{LLAMA3}'''\n"))
    assert seal(home, "ask", "Who?", capsys=capsys, monkeypatch=monkeypatch).returncode == 0


@pytest.mark.parametrize("family, expected", [("llama3", ["down_proj", "gate_proj", "up_proj"]),
                                              ("gemma2", ["down_proj", "gate_proj", "up_proj"]),
                                              ("phi3", ["down_proj", "gate_up_proj"])])
def test_a_knowledge_adapter_trains_the_feed_forward_projections_of_each_family(family, expected, tmp_path):
    from agent.adapt import lora_config, mlp_modules
    from model_runtime import loading
    from seal.config import ModelConfig, TrainConfig

    lm = LanguageModel(*loading.load(ModelConfig(path=str(build_family(tmp_path, family))), tmp_path)[:2])
    assert mlp_modules(lm.base) == expected
    lm.add_adapter("knowledge", lora_config(TrainConfig(modules="mlp"), lm.base))
    lm.add_adapter("policy", lora_config(TrainConfig(modules="all"), lm.base))
    assert mlp_modules(lm.base) == expected  # the same once LoRA layers wrap them
    layers = lambda adapter: {".".join(name.split(".lora_A.")[0].split(".")[-2:])
                              for name, _ in lm.peft.named_parameters() if f".lora_A.{adapter}." in name}
    assert layers("knowledge") == {f"mlp.{m}" for m in expected}
    assert layers("knowledge") < layers("policy") and any(layer.startswith("self_attn.") for layer in layers("policy"))
