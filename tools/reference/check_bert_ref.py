"""Checks tests/reference/bert_ref.py (the float64 numpy BERT the tests hold eight to) against
transformers' BertModel itself, in float64, on random weights with the GGUF converter's names
mapped back to Hugging Face's. Needs torch + transformers (/work/diff-venv); the tests do not.

  /work/diff-venv/bin/python tools/reference/check_bert_ref.py
"""
import os
import sys

import numpy as np
import torch
from transformers import BertConfig, BertModel

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "reference"))
import bert_ref  # noqa: E402
import make_random_bert  # noqa: E402

HF = {"token_embd": "embeddings.word_embeddings", "position_embd": "embeddings.position_embeddings",
      "token_types": "embeddings.token_type_embeddings", "token_embd_norm": "embeddings.LayerNorm"}
LAYER = {"attn_q": "attention.self.query", "attn_k": "attention.self.key",
         "attn_v": "attention.self.value", "attn_output": "attention.output.dense",
         "attn_output_norm": "attention.output.LayerNorm", "ffn_up": "intermediate.dense",
         "ffn_down": "output.dense", "layer_output_norm": "output.LayerNorm"}


def hf_name(k):
    base, leaf = k.rsplit(".", 1)
    if base.startswith("blk."):
        _, i, t = base.split(".")
        return f"encoder.layer.{i}.{LAYER[t]}.{leaf}"
    return f"{HF[base]}.{leaf}"


def main():
    rng = np.random.default_rng(0)
    V, D, L, F, P, H = 50, 64, 3, 128, 32, 4
    W = make_random_bert.random_weights(rng, V, D, L, F, P)
    cfg = BertConfig(vocab_size=V, hidden_size=D, num_hidden_layers=L, num_attention_heads=H,
                     intermediate_size=F, max_position_embeddings=P, type_vocab_size=2,
                     layer_norm_eps=1e-12, hidden_act="gelu", attn_implementation="eager")
    m = BertModel(cfg, add_pooling_layer=False).double().eval()
    sd = {hf_name(k): torch.tensor(v) for k, v in W.items()}
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not unexpected and all("position_ids" in k or "token_type_ids" in k for k in missing), missing
    worst = 0.0
    for T in (1, 5, 32):
        ids = rng.integers(0, V, T)
        with torch.no_grad():
            want = m(torch.tensor(ids)[None]).last_hidden_state[0].numpy()
        got = bert_ref.hidden_states(W, ids, H)
        worst = max(worst, float(np.abs(got - want).max()))
    print(f"bert_ref vs transformers BertModel (float64): max |diff| {worst:.3g}")
    assert worst < 1e-10


if __name__ == "__main__":
    main()
