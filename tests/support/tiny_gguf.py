"""A tiny llama-architecture GGUF (a few hundred KB) that llama.cpp can load and sample from.

Weights are random, so the text is gibberish, but it is real text: every token embedding carries a
constant component that the output layer turns into a large bonus for word tokens and a large
penalty for control/byte tokens, so sampling never stops early on EOS nor emits broken UTF-8.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

N_EMBD = 64
N_LAYERS = 2
N_HEAD = 4
N_HEAD_KV = 2
N_FF = 128
CONTEXT_LENGTH = 4096

# SmolLM2-style ChatML template, so llama-cpp-python takes the same "template from the GGUF" path.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CONTROL_TOKENS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
WORDS = [
    "the", "a", "an", "and", "of", "to", "in", "is", "was", "it", "that", "he", "she", "they",
    "we", "you", "on", "with", "as", "at", "by", "for", "from", "fox", "owl", "lantern", "path",
    "forest", "river", "stone", "door", "key", "map", "star", "moon", "sun", "tree", "cave",
    "bridge", "walks", "finds", "opens", "looks", "sees", "runs", "jumps", "asks", "says", "goes",
    "comes", "brave", "quiet", "old", "small", "big",
]
CHARACTERS = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()<>|/_\n")


def _vocab() -> tuple[list[str], list[float], list[int]]:
    """SentencePiece-style vocab: control tokens, all 256 byte-fallback tokens, characters, words."""
    tokens, scores, types = [], [], []

    def add(text: str, score: float, kind: gguf.TokenType) -> None:
        tokens.append(text)
        scores.append(score)
        types.append(int(kind))

    for text in CONTROL_TOKENS:
        add(text, 0.0, gguf.TokenType.UNKNOWN if text == "<unk>" else gguf.TokenType.CONTROL)
    for byte in range(256):  # byte fallback: llama.cpp needs <0x0A> for newlines and any unknown char
        add(f"<0x{byte:02X}>", 0.0, gguf.TokenType.BYTE)
    add("\u2581", -1.0, gguf.TokenType.NORMAL)  # "▁" is SentencePiece's escaped space
    for char in CHARACTERS:
        if char != "\n":
            add(char, -2.0, gguf.TokenType.NORMAL)
    for word in WORDS:  # higher score than characters, so the BPE-like merge prefers whole words
        add("\u2581" + word, -0.5, gguf.TokenType.NORMAL)
    return tokens, scores, types


def _tensors(n_vocab: int, word_mask: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """numpy shapes are ggml shapes reversed: a ggml {n_embd, n_vocab} tensor is (n_vocab, n_embd)."""

    def rand(*shape: int, scale: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    head_dim = N_EMBD // N_HEAD
    embeddings = rand(n_vocab, N_EMBD, scale=0.1)
    embeddings[:, 0] = 1.0  # the constant "bias" feature read by the output layer below
    output = rand(n_vocab, N_EMBD, scale=0.5)
    output[:, 0] = np.where(word_mask, 1.0, -5.0)
    tensors = {
        "token_embd.weight": embeddings,
        "output_norm.weight": np.ones(N_EMBD, dtype=np.float32),
        "output.weight": output,
    }
    for layer in range(N_LAYERS):
        tensors |= {
            f"blk.{layer}.attn_norm.weight": np.ones(N_EMBD, dtype=np.float32),
            f"blk.{layer}.attn_q.weight": rand(N_HEAD * head_dim, N_EMBD),
            f"blk.{layer}.attn_k.weight": rand(N_HEAD_KV * head_dim, N_EMBD),
            f"blk.{layer}.attn_v.weight": rand(N_HEAD_KV * head_dim, N_EMBD),
            f"blk.{layer}.attn_output.weight": rand(N_EMBD, N_HEAD * head_dim),
            f"blk.{layer}.ffn_norm.weight": np.ones(N_EMBD, dtype=np.float32),
            f"blk.{layer}.ffn_gate.weight": rand(N_FF, N_EMBD),
            f"blk.{layer}.ffn_up.weight": rand(N_FF, N_EMBD),
            f"blk.{layer}.ffn_down.weight": rand(N_EMBD, N_FF),
        }
    return tensors


def write_tiny_llama_gguf(path: Path, seed: int = 0) -> Path:
    """Write the tiny model to `path` and return it."""
    path = Path(path)
    tokens, scores, types = _vocab()
    word_mask = np.array([kind == gguf.TokenType.NORMAL for kind in types])
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    writer.add_name("lanternpath-tiny-test")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYERS)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(CONTROL_TOKENS.index("<unk>"))
    writer.add_bos_token_id(CONTROL_TOKENS.index("<s>"))
    writer.add_eos_token_id(CONTROL_TOKENS.index("<|im_end|>"))
    writer.add_chat_template(CHAT_TEMPLATE)
    for name, array in _tensors(len(tokens), word_mask, np.random.default_rng(seed)).items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
