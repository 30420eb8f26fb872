"""A tiny causal LM built from a config (no download, trains in seconds), saved where litlab
expects the prepared embedded model, so the fine-tuning code runs unchanged on it."""

from __future__ import annotations

import json
from pathlib import Path

from agentlab.citations import NOT_IN_LIBRARY

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
WORDS = ("the a of and is are to in model models attention heads layer layers uses use eight "
         "six two dropout rate learning adapter rank low lora transformer encoder decoder "
         "what which how many does say about library sources source question answer "
         "paper papers [1] [2] [3] . , ? : ( ) sentinel " + NOT_IN_LIBRARY).split()


def tiny_model(home: Path, name: str = "smollm2-135m-instruct") -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from agentlab.models import MARKER

    path = home / "models" / name
    if (path / MARKER).exists():
        return path
    specials = ["<unk>", "<pad>", "<s>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(specials + WORDS))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token="<|end|>")
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=1024, pad_token_id=1, bos_token_id=2,
                      eos_token_id=3, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    (path / MARKER).write_text(json.dumps({"name": name, "tiny": True}))
    return path
