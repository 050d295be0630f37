"""The LoRA training loop on the tiny model: what trains, what stays frozen, what carries the loss."""

import math

import pytest
import torch

from agent.adapt import lora_config
from model_runtime import LanguageModel, TrainingExample, train_lora, training
from model_runtime import lm as lm_module
from model_runtime.loading import load
from model_runtime.training import IGNORE, encode, forward, frozen_weights_in, masked_loss, pack, targets, token_losses
from seal.config import ModelConfig, TrainConfig


def tiny_lm(tiny_model_dir) -> LanguageModel:
    model, tokenizer, name = load(ModelConfig(path=str(tiny_model_dir)), tiny_model_dir)
    return LanguageModel(model, tokenizer, name)


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16-autocast"])
def test_lora_changes_and_base_does_not(tiny_model_dir, monkeypatch, bf16):
    """After training, every LoRA matrix of the trained adapter changed; no base weight and no other
    adapter's weight did, in fp32 and under bf16 autocast (where frozen layers train on bf16 copies)."""
    monkeypatch.setattr(training, "native_bf16", lambda: True)  # emulated here if need be: the tiny model is cheap
    lm = tiny_lm(tiny_model_dir)
    cfg = TrainConfig(epochs=3, batch_size=2, learning_rate=1e-2, bf16=bf16)
    lm.add_adapter("other", lora_config(cfg, lm.base))
    lm.add_adapter("cand", lora_config(cfg, lm.base))
    before = {n: p.detach().clone() for n, p in lm.peft.named_parameters()}
    examples = [TrainingExample("", "Morwen Hale built the lighthouse in 1847."),
                TrainingExample("Q: who? A:", " Hale"), TrainingExample("", "It is green and white.")]
    result = train_lora(lm, "cand", examples, cfg)
    assert result.steps == 6 and len(result.losses) == 6 and result.tokens > 0
    changed = {n for n, p in lm.peft.named_parameters() if not torch.equal(p, before[n])}
    lora = {n for n in before if "lora_" in n and ".cand." in n}
    # lora_B starts at zero and lora_A gets gradient only once B is non-zero; both move within 6 steps.
    assert lora and changed == lora, f"unexpected: {sorted(changed ^ lora)[:5]}"
    assert not any(p.requires_grad for p in lm.peft.parameters()), "training must leave everything frozen"
    assert all(p.dtype == torch.float32 for p in lm.peft.parameters()), "the model's own weights stay fp32"


def test_frozen_weights_are_cast_once_and_given_back(tiny_model_dir):
    """Under bf16 autocast a frozen layer computes the same with a bf16 copy of its weight as with the cast
    autocast makes each forward; the trainable LoRA weights stay fp32, and every layer gets its own weight
    back after the block, however it ends (the tied output head is tied again)."""
    lm = tiny_lm(tiny_model_dir)
    lm.add_adapter("cand", lora_config(TrainConfig(), lm.base))
    model = lm.peft
    for name, param in model.named_parameters():  # as train_lora marks them
        param.requires_grad = "lora_" in name
    before = dict(model.named_parameters())
    batch = pack([encode(lm, TrainingExample("", "Morwen Hale built the lighthouse in 1847."), "all", 64)])
    up_proj = model.base_model.model.model.layers[0].mlp.up_proj
    with torch.no_grad(), training.autocast(torch.bfloat16):
        plain = forward(model, batch)
        with pytest.raises(RuntimeError, match="a failing step"), frozen_weights_in(model, torch.bfloat16):
            assert up_proj.base_layer.weight.dtype == torch.bfloat16 and up_proj.lora_A["cand"].weight.dtype == torch.float32
            assert model.get_output_embeddings().weight.dtype == torch.bfloat16
            assert model.get_input_embeddings().weight.dtype == torch.float32, "the embedding lookup is not a matmul"
            assert torch.equal(forward(model, batch), plain)
            raise RuntimeError("a failing step")
    assert all(param is before[name] for name, param in model.named_parameters())
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight


def test_packed_rows_do_not_see_each_other(tiny_model_dir):
    """Packing a batch into one row changes nothing a row computes: each row's logits equal its logits
    alone, the packed loss equals the loss over the rows' own positions, and no row is trained to
    predict the start of the next one."""
    lm = tiny_lm(tiny_model_dir)
    rows = [encode(lm, TrainingExample("", text), "all", 64)
            for text in ("green and white", "The Brannock Lighthouse was built in 1847 by Morwen Hale.", "Skelling")]
    batch = pack(rows)
    with torch.no_grad():
        packed = forward(lm.base, batch)
        alone = [forward(lm.base, pack([r])) for r in rows]
    start = 0
    for (ids, _), logits in zip(rows, alone):
        torch.testing.assert_close(packed[0, start:start + len(ids)], logits[0], msg="a packed row saw another row")
        assert batch["labels"][0, start] == IGNORE, "a row's first token must not be a target of the previous row"
        start += len(ids)
    # The output head runs only where a target is predicted, and gives the same logits there.
    where, target = targets(batch)
    with torch.no_grad():
        kept = forward(lm.base, batch, keep=where)[0]
    torch.testing.assert_close(kept, packed[0, where])
    assert where.numel() == sum(len(ids) - 1 for ids, _ in rows), "every position but a row's last predicts a target"
    # The packed loss is the mean over every row's own next-token positions.
    losses = [torch.nn.functional.cross_entropy(logits[0, :-1], torch.tensor(ids[1:]), reduction="sum")
              for (ids, _), logits in zip(rows, alone)]
    targets_in_rows = sum(len(ids) - 1 for ids, _ in rows)
    torch.testing.assert_close(masked_loss(token_losses(kept, target)), sum(losses) / targets_in_rows)
    # Weighted by sequence, each row's own mean counts once, however long the row.
    means = [loss / (len(ids) - 1) for (ids, _), loss in zip(rows, losses)]
    torch.testing.assert_close(masked_loss(token_losses(kept, target), batch["rows"][0, 1:][where]), sum(means) / len(means),
                               msg="loss_weighting='sequence' must be the mean of the rows' own mean losses")


def test_prompt_tokens_are_masked_when_configured(tiny_model_dir):
    """loss_on='completion' masks the prompt; 'all' trains on it too."""
    lm = tiny_lm(tiny_model_dir)
    example = TrainingExample("Who built it? ", "Morwen Hale")
    prompt_len = len(lm.tokenizer("Who built it? ", add_special_tokens=False)["input_ids"])
    ids, labels = encode(lm, example, "completion", 64)
    assert labels[:prompt_len] == [IGNORE] * prompt_len and labels[prompt_len:] == ids[prompt_len:]
    ids, labels = encode(lm, example, "all", 64)
    assert labels == ids


def test_adapter_save_load_round_trip_is_exact(tiny_model_dir, tmp_path):
    """A saved adapter loads back to identical weights and identical greedy output."""
    lm = tiny_lm(tiny_model_dir)
    cfg = TrainConfig(epochs=2, learning_rate=1e-2, bf16=False)
    lm.add_adapter("first", lora_config(cfg, lm.base))
    train_lora(lm, "first", [TrainingExample("", "Morwen Hale built the lighthouse in 1847.")], cfg)
    prompts = [lm.chat_prompt([{"role": "user", "content": "Who built it?"}])]
    out = lm.generate(prompts, adapter="first", max_new_tokens=8)
    lm.save_adapter("first", tmp_path / "first")
    lm.load_adapter("second", tmp_path / "first")
    assert lm.generate(prompts, adapter="second", max_new_tokens=8) == out
    base = lm.generate(prompts, adapter=None, max_new_tokens=8)
    lm.delete_adapter("first")
    lm.delete_adapter("second")
    assert lm.peft is None and lm.generate(prompts, max_new_tokens=8) == base


def test_mixed_batch_equals_one_adapter_at_a_time(tiny_model_dir):
    """Decoding rows with different adapters in one batch gives each row the answer its own adapter gives."""
    lm = tiny_lm(tiny_model_dir)
    cfg = TrainConfig(epochs=3, learning_rate=5e-2, bf16=False)
    lm.add_adapter("first", lora_config(cfg, lm.base))
    train_lora(lm, "first", [TrainingExample("", "Morwen Hale built the lighthouse in 1847.")], cfg)
    prompts = [lm.chat_prompt([{"role": "user", "content": q}]) for q in ("Who built it?", "When?", "What is 2 + 2?")]
    base = lm.generate(prompts, adapter=None, max_new_tokens=8)
    tuned = lm.generate(prompts, adapter="first", max_new_tokens=8)
    assert base != tuned, "training must change what the adapter says"
    mixed = lm.generate(prompts + prompts, adapter=[None] * 3 + ["first"] * 3, max_new_tokens=8)
    assert mixed == base + tuned
    # Batches form in order of length, and the answers come back in the caller's order.
    long = lm.chat_prompt([{"role": "user", "content": "Passage: Morwen Hale built the lighthouse in 1847. " * 6 + "Who?"}])
    rows, names = [long, *prompts, long], [None, "first", None, "first", "first"]
    assert lm.generate(rows, adapter=names, max_new_tokens=8, batch_size=2) == [
        lm.generate([p], adapter=a, max_new_tokens=8)[0] for p, a in zip(rows, names)]


def test_a_shared_prefix_decodes_what_left_padding_decodes(tiny_model_dir, monkeypatch):
    """Prompts that open alike are laid out [prefix][pads][rest] with the prefix computed once per adapter:
    every step's logits match the left-padded batch's, for the base model, one adapter and a mixed batch."""
    lm = tiny_lm(tiny_model_dir)
    cfg = TrainConfig(epochs=3, learning_rate=5e-2, bf16=False)
    lm.add_adapter("first", lora_config(cfg, lm.base))
    train_lora(lm, "first", [TrainingExample("", "Morwen Hale built the lighthouse in 1847.")], cfg)
    system = {"role": "system", "content": "Answer from what you know, in one short sentence."}
    prompts = [lm.chat_prompt([system, {"role": "user", "content": q}])
               for q in ("Who built it?", "When was the lighthouse on the cliff built?", "What is 2 + 2?")]
    for adapter, names in ((None, None), ("first", None), ([None, "first", "first"], ["__base__", "first", "first"])):
        with lm.using("*" if names else adapter) as module, torch.inference_mode():
            shared = lm.encode_shared_prefix(module, prompts, names)
            assert shared is not None and shared["cache"].get_seq_length() >= lm_module.MIN_SHARED_PREFIX
            padded = lm.encode_left_padded(prompts) | ({"adapter_names": names} if names else {})
            config = lm._generation_config(6, 0.0, 1.0, 1.0)
            runs = [module.generate(**enc, generation_config=config, output_logits=True, return_dict_in_generate=True)
                    for enc in (padded, shared)]
        assert len(runs[0].logits) == len(runs[1].logits)
        for left, prefixed in zip(runs[0].logits, runs[1].logits):
            torch.testing.assert_close(prefixed, left, atol=1e-4, rtol=1e-4)
        texts = lm.generate(prompts, adapter=adapter, max_new_tokens=6)
        monkeypatch.setattr(lm_module, "MIN_SHARED_PREFIX", 10**6)
        assert lm.generate(prompts, adapter=adapter, max_new_tokens=6) == texts
        monkeypatch.undo()


def test_bfloat16_weights_generate_and_train(tiny_model_dir):
    """model.dtype = bfloat16 loads bf16 weights that generate and train a LoRA."""
    model, tokenizer, name = load(ModelConfig(path=str(tiny_model_dir), dtype="bfloat16"), tiny_model_dir)
    lm = LanguageModel(model, tokenizer, name)
    assert next(lm.base.parameters()).dtype == torch.bfloat16
    cfg = TrainConfig(epochs=2, learning_rate=1e-2, bf16=True)
    lm.add_adapter("first", lora_config(cfg, lm.base))
    result = train_lora(lm, "first", [TrainingExample("", "Morwen Hale built the lighthouse in 1847.")], cfg)
    assert result.steps == 2 and all(loss == loss for loss in result.losses), "losses must be finite numbers"
    assert len(lm.generate([lm.chat_prompt([{"role": "user", "content": "Who?"}])], adapter="first", max_new_tokens=4)) == 1


def test_rows_stream_what_each_row_decodes_alone(tiny_model_dir):
    """stream_rows decodes rows with different adapters and token limits together; each row's pieces join to
    what that row's prompt decodes alone (greedy), cut at its own limit, and each row ends exactly once."""
    lm = tiny_lm(tiny_model_dir)
    cfg = TrainConfig(epochs=3, learning_rate=5e-2, bf16=False)
    lm.add_adapter("first", lora_config(cfg, lm.base))
    train_lora(lm, "first", [TrainingExample("", "Morwen Hale built the lighthouse in 1847.")], cfg)
    prompts = [lm.chat_prompt([{"role": "user", "content": q}]) for q in ("Who built it?", "When?", "What is 2 + 2?")]
    adapters, limits = [None, "first", "first"], [6, 3, 9]
    texts, ended = ["", "", ""], []
    for row, piece in lm.stream_rows(prompts, adapters=adapters, max_new_tokens=limits):
        if piece is None:
            ended.append(row)
        else:
            texts[row] += piece
    assert sorted(ended) == [0, 1, 2]
    alone = [lm.generate([p], adapter=a, max_new_tokens=n, repetition_penalty=1.1)[0]
             for p, a, n in zip(prompts, adapters, limits)]
    assert [t.strip() for t in texts] == alone
    # Every row on one adapter takes the unmixed path: the same replies.
    same = ["", "", ""]
    for row, piece in lm.stream_rows(prompts, adapters=["first"] * 3, max_new_tokens=limits):
        same[row] += piece or ""
    assert [t.strip() for t in same] == [lm.generate([p], adapter="first", max_new_tokens=n, repetition_penalty=1.1)[0]
                                         for p, n in zip(prompts, limits)]


def test_bf16_autocast_only_where_native(monkeypatch):
    """train.bf16 turns on bfloat16 autocast only on a CPU that multiplies bf16 in hardware; elsewhere oneDNN
    emulates it ~50x slower than fp32, so training must stay in fp32."""
    from model_runtime import training

    monkeypatch.setattr(training, "native_bf16", lambda: False)
    assert training.autocast_dtype(True) is None, "emulated bf16 must not be used"
    monkeypatch.setattr(training, "native_bf16", lambda: True)
    assert training.autocast_dtype(True) == torch.bfloat16
    assert training.autocast_dtype(False) is None, "bf16 = false means fp32"
    with training.autocast(torch.bfloat16):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    with training.autocast(None):
        assert not torch.is_autocast_enabled("cpu")



def test_cuda_without_bf16_trains_in_float16(monkeypatch):
    """On a CUDA GPU without bfloat16, mixed precision is float16 (with the loss scaled in training)."""
    from model_runtime import training

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert training.autocast_dtype(True, torch.device("cuda")) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert training.autocast_dtype(True, torch.device("cuda")) == torch.bfloat16


def test_float16_training_scales_the_loss(tiny_model_dir, monkeypatch):
    """Under float16 autocast the loss is scaled before backward (a GradScaler that is on) and the LoRA still
    learns: finite losses, changed matrices, fp32 LoRA weights."""
    scalers = []

    class Recording(torch.amp.GradScaler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            scalers.append(self)

    monkeypatch.setattr(training, "autocast_dtype", lambda bf16, device=None: torch.float16)
    monkeypatch.setattr(torch.amp, "GradScaler", Recording)
    lm = tiny_lm(tiny_model_dir)
    cfg = TrainConfig(epochs=3, learning_rate=1e-2)
    lm.add_adapter("cand", lora_config(cfg, lm.base))
    before = {n: p.detach().clone() for n, p in lm.peft.named_parameters() if "lora_B" in n}
    result = train_lora(lm, "cand", [TrainingExample("", "Morwen Hale built the lighthouse in 1847.")], cfg)
    assert [s.is_enabled() for s in scalers] == [True] and scalers[0].get_scale() > 1
    assert all(math.isfinite(loss) for loss in result.losses) and result.losses[-1] < result.losses[0]
    after = dict(lm.peft.named_parameters())
    assert all(not torch.equal(after[n], p) and after[n].dtype == torch.float32 for n, p in before.items())


def test_gradient_checkpointing_trains_the_same(tiny_model_dir):
    """train.gradient_checkpointing recomputes activations in backward: the same losses and LoRA weights as
    keeping them (fp32), and the model is left without checkpointing for generation."""
    results = []
    for checkpointing in (False, True):
        lm = tiny_lm(tiny_model_dir)
        cfg = TrainConfig(epochs=3, batch_size=2, learning_rate=1e-2, bf16=False, gradient_checkpointing=checkpointing)
        torch.manual_seed(0)  # the same initial LoRA A matrices
        lm.add_adapter("cand", lora_config(cfg, lm.base))
        examples = [TrainingExample("", "Morwen Hale built the lighthouse in 1847."),
                    TrainingExample("Q: who? A:", " Hale"), TrainingExample("", "It is green and white.")]
        losses = train_lora(lm, "cand", examples, cfg).losses
        assert not lm.base.is_gradient_checkpointing
        results.append((losses, {n: p.detach() for n, p in lm.peft.named_parameters() if "lora_" in n}))
    (plain, weights), (recomputed, weights_recomputed) = results
    assert recomputed == pytest.approx(plain, rel=1e-5)
    for name, value in weights.items():
        torch.testing.assert_close(weights_recomputed[name], value, atol=1e-6, rtol=1e-5)
