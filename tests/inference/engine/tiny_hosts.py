"""Tiny randomly initialised host models with offline word-level tokenizers, for engine tests."""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import BertConfig, GPT2Config, PreTrainedTokenizerFast

from inference.engine.host_models import HostModelHandle, build_from_config

TEXTS = [
    "patient denies chest pain",
    "shortness of breath on exertion , no fever",
    "ct of the chest shows a small nodule in the right upper lobe",
    "afebrile",
    "history of type two diabetes on metformin , hba1c elevated",
    "no acute distress",
    "mri brain without contrast : no acute infarct",
    "patient reports chest pain radiating to the left arm with diaphoresis and nausea",
]


def word_tokenizer(texts: list[str], *, style: str) -> PreTrainedTokenizerFast:
    """style 'bert': [CLS] text [SEP] with [PAD]; 'causal': <s> text with <pad>."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] if style == "bert" else ["<pad>", "<unk>", "<s>"]
    tokenizer = Tokenizer(models.WordLevel(unk_token=specials[1]))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=specials))
    if style == "bert":
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
        )
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", bos_token="<s>")


def tiny_bert(texts: list[str] = TEXTS, *, n_layers: int = 2) -> HostModelHandle:
    tokenizer = word_tokenizer(texts, style="bert")
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=n_layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return build_from_config(config, tokenizer, seed=0)


def tiny_gpt2(texts: list[str] = TEXTS, *, n_layers: int = 3) -> HostModelHandle:
    tokenizer = word_tokenizer(texts, style="causal")
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=32,
        n_layer=n_layers,
        n_head=2,
        n_positions=64,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return build_from_config(config, tokenizer, seed=0)


def tiny_llama(texts: list[str] = TEXTS, *, n_layers: int = 2) -> HostModelHandle:
    from transformers import LlamaConfig

    tokenizer = word_tokenizer(texts, style="causal")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=n_layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return build_from_config(config, tokenizer, seed=0)


def tiny_gemma3(texts: list[str] = TEXTS, *, n_layers: int = 2) -> HostModelHandle:
    """Gemma 3's text architecture (RMSNorm scaling by 1 + weight, tied embeddings), tiny and random."""
    from transformers import Gemma3TextConfig

    tokenizer = word_tokenizer(texts, style="causal")
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=n_layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=64,
        sliding_window=8,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return build_from_config(config, tokenizer, seed=0)
