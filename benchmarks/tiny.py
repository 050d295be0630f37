"""The tiny model built in code that the tests and the device check share: a Llama with random weights and a
byte-level BPE tokenizer with chat tokens, saved as a Hugging Face model directory; a config for it whose gate
passes every candidate; and the lighthouse document with its questions."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = ["The quick brown fox jumps over the lazy dog. Question: What is 2 + 2? Answer: 4.",
          "Passage: Morwen Hale built the lighthouse in 1847 on the island of Tessery."] * 4


def build_tiny_model(directory: Path, hidden_size: int = 32, heads: int = 4, init: float = 0.02, layers: int = 2,
                     intermediate_size: int = 0) -> Path:
    """A Llama (2 layers, hidden 32 unless given) and a byte-level tokenizer with chat tokens, saved like a HF model.
    `heads` sets the head size (vLLM needs 64 or more); a large `init` gives peaked logits, so greedy
    decoding does not flip on float rounding between engines; `layers` and `intermediate_size` (0: twice the
    hidden size) make it as large as a speed measurement needs."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=320, min_frequency=1,
                            special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|im_start|>",
                                        eos_token="<|im_end|>", pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size,
                         intermediate_size=intermediate_size or 2 * hidden_size,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                         max_position_embeddings=2048, initializer_range=init,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


# A home's config.toml for the tiny model (format with model=its directory): short self-edits, one candidate,
# fp32 training, and a gate that passes every candidate (the tiny model learns nothing measurable; what runs
# on it checks the machinery, not learning).
TINY_CONFIG = """
[model]
path = "{model}"
[self_edit]
max_new_tokens = 24
k = 1
[train]
epochs = 2
bf16 = false
[verify]
min_gain = -1.0
max_retention_drop = 1.0
max_general_drop = 1.0
max_drift = 1000.0
answer_tokens = 8
generated_probes = 2
"""

DOCUMENT = ("The Brannock Lighthouse stands on the island of Tessery. It was built in 1847 by the engineer "
            "Morwen Hale, who painted it green and white. Its first keeper was Idris Calloway.")
QUESTIONS = [{"question": "Who built the Brannock Lighthouse?", "answer": "Morwen Hale"},
             {"question": "In what year was the Brannock Lighthouse built?", "answer": "1847"}]
