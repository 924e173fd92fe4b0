"""Tiny random FNet encoders and Hugging Face's outputs for them: the fixtures of tests/fnet.rs.

Run by hand (outputs are committed):  /root/venv-ref/bin/python scripts/make_fnet_fixtures.py

For each config below (the last an FNetForMaskedLM), tests/fixtures/fnet/<name>/ gets config.json and model.safetensors
(saved by transformers' FNetModel.save_pretrained) and expected.json with the input ids, the
token types, and `FNetModel`'s last_hidden_state [T, hidden] and pooler_output [hidden] in
float32. The sizes are chosen to be awkward for an FFT: hidden sizes that are not powers of
two (24 = 2^3*3, 36 = 2^2*3^2, 22 = 2*11 needs Bluestein) and sequence lengths 7 and 13
(primes) and 12.
"""

import json
import os

import torch
from transformers import FNetConfig, FNetForMaskedLM, FNetModel

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "fnet")

CONFIGS = {
    "h24_l2_t7": dict(hidden_size=24, num_hidden_layers=2, intermediate_size=40, vocab_size=50, seq=7),
    "h36_l3_t13": dict(hidden_size=36, num_hidden_layers=3, intermediate_size=60, vocab_size=64, seq=13),
    "h22_l2_t12": dict(hidden_size=22, num_hidden_layers=2, intermediate_size=30, vocab_size=40, seq=12),
    # FNetForMaskedLM: the encoder under `fnet.` and the tied MLM head; expected.json adds logits.
    "mlm_h20_l2_t11": dict(hidden_size=20, num_hidden_layers=2, intermediate_size=28, vocab_size=45, seq=11, mlm=True),
}


def randomize(model, gen):
    # HF's init (std 0.02, LayerNorm 1/0) leaves the mixing and norms nearly trivial; draw every
    # parameter instead so that each layer changes the state visibly.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))


def main():
    torch.manual_seed(0)
    for i, (name, c) in enumerate(CONFIGS.items()):
        c = dict(c)
        seq = c.pop("seq")
        mlm = c.pop("mlm", False)
        config = FNetConfig(
            max_position_embeddings=32,
            type_vocab_size=4,
            hidden_act="gelu_new",
            layer_norm_eps=1e-12,
            hidden_dropout_prob=0.0,
            pad_token_id=0,
            **c,
        )
        model = (FNetForMaskedLM if mlm else FNetModel)(config).eval()
        gen = torch.Generator().manual_seed(1000 + i)
        randomize(model, gen)
        ids = torch.randint(0, config.vocab_size, (1, seq), generator=gen)
        # The first config keeps types at zero (what `webformer forward` passes); the others
        # use every type.
        types = torch.zeros_like(ids) if i == 0 else torch.randint(0, config.type_vocab_size, (1, seq), generator=gen)
        with torch.no_grad():
            out = model(input_ids=ids, token_type_ids=types)
            logits = None
            if mlm:
                logits = out.logits[0].tolist()
                out = model.fnet(input_ids=ids, token_type_ids=types)
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        model.save_pretrained(d, safe_serialization=True)
        expected = {
            "ids": ids[0].tolist(),
            "token_type_ids": types[0].tolist(),
            "last_hidden_state": out.last_hidden_state[0].tolist(),
            "pooler_output": out.pooler_output[0].tolist(),
        }
        if logits is not None:
            expected["logits"] = logits
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(expected, f)
        print(name, "hidden", config.hidden_size, "tokens", seq, "max |h|", out.last_hidden_state.abs().max().item())


if __name__ == "__main__":
    main()
