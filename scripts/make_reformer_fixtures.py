#!/usr/bin/env python3
"""Writes the Reformer conformance fixtures under tests/fixtures/reformer/<name>/ from Hugging Face
transformers' own ReformerModel / ReformerModelWithLMHead (tiny random configs).

Run by hand (outputs are committed; CI never runs this, it needs torch):

    /path/to/venv/bin/python scripts/make_reformer_fixtures.py

Per config, in tests/fixtures/reformer/<name>/:
  config.json, model.safetensors  the checkpoint (save_pretrained; HF tensor names)
  inputs.json                     {"ids": [...], "short_ids": [...], "output": "logits" | "last_hidden_state",
                                   "padded_length": ..., "lsh_layers": [...], "versions": {...},
                                   "generate": {"prompt": [...], "new_ids": [...]} (greedy, configs with
                                   hash_seed only: HF then draws the same rotations on every call)}
  outputs.safetensors             "output" [T, V or 2*hidden] for ids; "short_output" for short_ids
                                  (a length that needs no hashing: plain attention in every layer)
  rotations.safetensors           "layers.{i}.rotations" (heads, head_size, n_hashes, rotation_size/2): the
                                  random rotations HF drew in the run on ids, i = layer index in attn_layers
  cached.json, cached.safetensors (causal LMs with a "cached" list) HF's cached greedy generation
                                  (generate(use_cache=True): the prompt as one forward filling
                                  past_buckets_states, then one token per step): cached.json holds
                                  {"runs": [{"prompt": [...], "new_ids": [...]}], "versions": {...}};
                                  "runs.{k}.logits" [new, V] are the raw logits each step chose from.
                                  Every hashing call (prompt and steps) uses the rotations of
                                  rotations.safetensors, replayed, so the whole run is pinned.
  layers.safetensors              per attention layer i of that run, at the layer's own interface:
                                  "layers.{i}.hidden_states" [T', hidden] (after the layer's LayerNorm, T' the
                                  padded length), "layers.{i}.attention_mask" [T'] (f32 0/1; absent when HF
                                  passed none), "layers.{i}.output" [T', heads*head_size] (the self-attention's
                                  output, before attention.output.dense), and the projections the attention sees
                                  in head-major layout [heads, T', head_size]: "layers.{i}.qk" and
                                  "layers.{i}.value" (LSH), "layers.{i}.query"/"key"/"value" (local).

Rotations: HF draws them inside LSHSelfAttention._hash_vectors with torch.randn (after
torch.manual_seed(hash_seed) when hash_seed is set). The script records each draw by wrapping
torch.randn during that call, then replays the recorded tensors in a second forward pass and checks
that it reproduces the first exactly, so the file holds every random number HF used.
"""

import json
import shutil
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file
from transformers import ReformerConfig, ReformerModel, ReformerModelWithLMHead
from transformers.models.reformer import modeling_reformer as mr

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "reformer"

# Each config: HF's requirements hold (axial shape multiplies to max_position_embeddings and its dims
# sum to hidden_size; lengths beyond the smallest chunk get padded by HF to a multiple of the chunks'
# least common multiple; the LM head needs is_decoder and no chunks after).
CONFIGS = [
    {
        # Causal LM, LSH and local layers mixed, 2 hashes, padding 21 -> 24.
        "name": "lm_mixed",
        "lm": True,
        "length": 21,
        "short": 4,
        "config": dict(
            attn_layers=["lsh", "local", "lsh"],
            hidden_size=32, num_attention_heads=2, attention_head_size=16, feed_forward_size=64,
            hidden_act="relu", num_buckets=4, num_hashes=2, lsh_attn_chunk_length=4, local_attn_chunk_length=8,
            lsh_num_chunks_before=1, lsh_num_chunks_after=0, local_num_chunks_before=1, local_num_chunks_after=0,
            is_decoder=True, vocab_size=40, max_position_embeddings=32, axial_pos_shape=[4, 8],
            axial_pos_embds_dim=[8, 24], chunk_size_feed_forward=4, hash_seed=None,
        ),
    },
    {
        # Bidirectional, factorised buckets [2, 4], 4 hashes, chunks before and after, padding 29 -> 32.
        "name": "bare_factorised",
        "lm": False,
        "length": 29,
        "short": 4,
        "config": dict(
            attn_layers=["lsh", "local"],
            hidden_size=64, num_attention_heads=2, attention_head_size=8, feed_forward_size=96,
            hidden_act="gelu", num_buckets=[2, 4], num_hashes=4, lsh_attn_chunk_length=8, local_attn_chunk_length=4,
            lsh_num_chunks_before=1, lsh_num_chunks_after=1, local_num_chunks_before=1, local_num_chunks_after=1,
            is_decoder=False, vocab_size=30, max_position_embeddings=64, axial_pos_shape=[8, 8],
            axial_pos_embds_dim=[16, 48], chunk_size_feed_forward=0, hash_seed=13,
        ),
    },
    {
        # Causal bare model, 1 hash, 8 buckets, no padding (16 = a multiple of the chunks: no mask),
        # two LSH chunks seen before and after (so the window holds the other chunk twice), local
        # chunks with none before, plain position embeddings.
        "name": "bare_causal_onehash",
        "lm": False,
        "length": 16,
        "short": 4,
        "config": dict(
            attn_layers=["local", "lsh", "lsh"],
            hidden_size=32, num_attention_heads=2, attention_head_size=8, feed_forward_size=48,
            hidden_act="relu", num_buckets=8, num_hashes=1, lsh_attn_chunk_length=8, local_attn_chunk_length=4,
            lsh_num_chunks_before=1, lsh_num_chunks_after=1, local_num_chunks_before=0, local_num_chunks_after=1,
            is_decoder=True, vocab_size=20, max_position_embeddings=16, axial_pos_embds=False,
            chunk_size_feed_forward=4, hash_seed=None,
        ),
    },
    {
        # Causal LM with a chunked feed-forward (chunk_size_feed_forward 4: the FF runs over 8 row
        # chunks of the 32 padded rows), LSH and local layers, hash_seed set so that HF draws the same
        # rotations on every call; also greedy generation from a 10-id prompt (every step's input is
        # longer than the smallest chunk, so HF pads it to a multiple of 8, which the FF chunk divides).
        "name": "lm_chunked_ff",
        "lm": True,
        "length": 29,
        "short": 4,
        "generate": {"prompt": 10, "new": 12},
        "config": dict(
            attn_layers=["local", "lsh", "local", "lsh"],
            hidden_size=32, num_attention_heads=2, attention_head_size=16, feed_forward_size=80,
            hidden_act="gelu_new", num_buckets=4, num_hashes=2, lsh_attn_chunk_length=8, local_attn_chunk_length=4,
            lsh_num_chunks_before=1, lsh_num_chunks_after=0, local_num_chunks_before=1, local_num_chunks_after=0,
            is_decoder=True, vocab_size=48, max_position_embeddings=64, axial_pos_shape=[8, 8],
            axial_pos_embds_dim=[12, 20], chunk_size_feed_forward=4, hash_seed=7,
        ),
    },
    {
        # Causal LMs for cached decoding (HF's cached steps run the feed-forward on one row, so
        # chunk_size_feed_forward must be 0 there). Factorised buckets [2, 4]: factorised buckets [2, 4], 3 hashes, an LSH window of 3
        # chunks of 4 (longer than the cache for the first steps, so it wraps more than once), a
        # local layer seeing one chunk back; prompt 6 pads to 8 and hashes (so the cached buckets
        # carry the padding bucket's round offsets), prompt 9 pads to 12.
        "name": "lm_factorised",
        "lm": True,
        "length": 13,
        "short": 3,
        "cached": [{"prompt": 6, "new": 18}, {"prompt": 9, "new": 12}],
        "config": dict(
            attn_layers=["lsh", "local", "lsh"],
            hidden_size=32, num_attention_heads=2, attention_head_size=8, feed_forward_size=48,
            hidden_act="relu", num_buckets=[2, 4], num_hashes=3, lsh_attn_chunk_length=4, local_attn_chunk_length=4,
            lsh_num_chunks_before=2, lsh_num_chunks_after=0, local_num_chunks_before=1, local_num_chunks_after=0,
            is_decoder=True, vocab_size=36, max_position_embeddings=32, axial_pos_shape=[4, 8],
            axial_pos_embds_dim=[12, 20], chunk_size_feed_forward=0, hash_seed=None,
        ),
    },
    {
        # One hash of 4 buckets, LSH chunks of 4 seeing one back, local chunks of 2: prompt 5 pads
        # to 8 and hashes; prompt 2 never hashes (plain attention until the cache holds a chunk,
        # then every position is hashed at once).
        "name": "lm_onehash",
        "lm": True,
        "length": 12,
        "short": 2,
        "cached": [{"prompt": 5, "new": 20}, {"prompt": 2, "new": 14}],
        "config": dict(
            attn_layers=["local", "lsh", "lsh"],
            hidden_size=32, num_attention_heads=2, attention_head_size=16, feed_forward_size=48,
            hidden_act="gelu", num_buckets=4, num_hashes=1, lsh_attn_chunk_length=4, local_attn_chunk_length=2,
            lsh_num_chunks_before=1, lsh_num_chunks_after=0, local_num_chunks_before=1, local_num_chunks_after=0,
            is_decoder=True, vocab_size=30, max_position_embeddings=32, axial_pos_shape=[4, 8],
            axial_pos_embds_dim=[8, 24], chunk_size_feed_forward=0, hash_seed=None,
        ),
    },
    {
        # Local chunks of 2 seeing two back (at position 3 a cached step's slice start is -2 and
        # counts from the end of the cache, as Python slicing does: the prompt of 2 gets there),
        # 2 hashes: prompt 7 pads to 8 and hashes; prompt 8 hashes unpadded (round offsets of
        # the bucket count).
        "name": "lm_local2",
        "lm": True,
        "length": 12,
        "short": 2,
        "cached": [{"prompt": 2, "new": 16}, {"prompt": 7, "new": 16}, {"prompt": 8, "new": 12}],
        "config": dict(
            attn_layers=["local", "lsh", "local"],
            hidden_size=32, num_attention_heads=2, attention_head_size=8, feed_forward_size=40,
            hidden_act="relu", num_buckets=4, num_hashes=2, lsh_attn_chunk_length=4, local_attn_chunk_length=2,
            lsh_num_chunks_before=1, lsh_num_chunks_after=0, local_num_chunks_before=2, local_num_chunks_after=0,
            is_decoder=True, vocab_size=28, max_position_embeddings=32, axial_pos_shape=[4, 8],
            axial_pos_embds_dim=[16, 16], chunk_size_feed_forward=0, hash_seed=None,
        ),
    },
]


def randomize(model, seed):
    """Weights large enough that attention is peaked and buckets matter (HF's init is near zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or "LayerNorm" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embeddings" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


class Recorder:
    """Records (or replays) the rotations drawn in _hash_vectors, keyed by layer index."""

    def __init__(self):
        self.rotations = {}
        self.replay = False
        self.orig_hash = mr.LSHSelfAttention._hash_vectors

    def __enter__(self):
        rec = self

        def hash_vectors(module, vectors, num_hashes, attention_mask, increase_num_buckets=False):
            orig_randn = torch.randn

            def randn(*args, **kwargs):
                if rec.replay:
                    return rec.rotations[module.layer_idx].clone()
                r = orig_randn(*args, **kwargs)
                assert module.layer_idx not in rec.rotations, "one draw per layer and forward pass"
                rec.rotations[module.layer_idx] = r.clone()
                return r

            torch.randn = randn
            try:
                return rec.orig_hash(module, vectors, num_hashes, attention_mask, increase_num_buckets)
            finally:
                torch.randn = orig_randn

        mr.LSHSelfAttention._hash_vectors = hash_vectors
        return self

    def __exit__(self, *exc):
        mr.LSHSelfAttention._hash_vectors = self.orig_hash


def head_major(x, heads, size):
    """[1, T, heads*size] -> [heads, T, size]."""
    return x[0].reshape(x.shape[1], heads, size).permute(1, 0, 2).contiguous()


def layer_hooks(model, cfg, store):
    base = model.reformer if hasattr(model, "reformer") else model
    handles = []
    heads, size = cfg.num_attention_heads, cfg.attention_head_size
    for i, layer in enumerate(base.encoder.layers):
        attn = layer.attention.self_attention

        def hook(module, args, kwargs, output, i=i):
            h = kwargs["hidden_states"]
            store[f"layers.{i}.hidden_states"] = h[0].clone()
            mask = kwargs.get("attention_mask")
            if mask is not None:
                store[f"layers.{i}.attention_mask"] = mask[0].to(torch.float32).clone()
            store[f"layers.{i}.output"] = output.hidden_states[0].clone()
            if isinstance(module, mr.LSHSelfAttention):
                store[f"layers.{i}.qk"] = head_major(module.query_key(h), heads, size)
                store[f"layers.{i}.value"] = head_major(module.value(h), heads, size)
            else:
                store[f"layers.{i}.query"] = head_major(module.query(h), heads, size)
                store[f"layers.{i}.key"] = head_major(module.key(h), heads, size)
                store[f"layers.{i}.value"] = head_major(module.value(h), heads, size)

        handles.append(attn.register_forward_hook(hook, with_kwargs=True))
    return handles


def run(model, ids):
    with torch.no_grad():
        out = model(torch.tensor([ids]), use_cache=False)
    return (out.logits if hasattr(out, "logits") else out.last_hidden_state)[0]


def generate(model, g, ids, rotations):
    """Greedy generation with HF's generate (use_cache=False: every step is a full forward over the
    prefix), checked against a plain argmax loop; with hash_seed set, every call draws the same
    rotations, checked by recording the draws of one more forward at the longest length."""
    prompt = ids[: g["prompt"]]
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), do_sample=False, use_cache=False, max_new_tokens=g["new"],
                             min_new_tokens=g["new"], pad_token_id=0)
    new = out[0, len(prompt):].tolist()
    seq = list(prompt)
    for _ in range(g["new"]):
        seq.append(int(run(model, seq)[-1].argmax()))
    assert seq[len(prompt):] == new, f"generate {new} vs the argmax loop {seq[len(prompt):]}"
    with Recorder() as rec:
        run(model, seq[:-1])
        for i, r in rec.rotations.items():
            assert torch.equal(r, rotations[i]), "hash_seed must make every draw the same"
    return {"prompt": prompt, "new_ids": new, "use_cache": False}


def make(spec, seed):
    # The generation fixture has no end-of-sequence id, so that it runs its whole length.
    eos = None if "generate" in spec or "cached" in spec else 2
    cfg = ReformerConfig(**spec["config"], hidden_dropout_prob=0.0, local_attention_probs_dropout_prob=0.0,
                         lsh_attention_probs_dropout_prob=0.0, pad_token_id=0, eos_token_id=eos)
    model = (ReformerModelWithLMHead if spec["lm"] else ReformerModel)(cfg)
    model.eval()
    randomize(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(1, cfg.vocab_size, (spec["length"],), generator=g).tolist()
    short_ids = torch.randint(1, cfg.vocab_size, (spec["short"],), generator=g).tolist()

    layers = {}
    with Recorder() as rec:
        handles = layer_hooks(model, cfg, layers)
        out = run(model, ids)
        for h in handles:
            h.remove()
        rec.replay = True
        again = run(model, ids)
        assert torch.equal(out, again), "replaying the recorded rotations must reproduce the output"
        rotations = dict(rec.rotations)
        rec.rotations = {}
        rec.replay = False
        short = run(model, short_ids)
        assert not rec.rotations, "the short input must need no hashing"

    lsh_layers = [i for i, t in enumerate(cfg.attn_layers) if t == "lsh"]
    assert sorted(rotations) == lsh_layers, f"every LSH layer hashes once: {sorted(rotations)} vs {lsh_layers}"
    padded = layers["layers.0.hidden_states"].shape[0]

    d = OUT / spec["name"]
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    model.save_pretrained(d, safe_serialization=True)
    (d / "generation_config.json").unlink(missing_ok=True)
    save_file({"output": out.contiguous(), "short_output": short.contiguous()}, d / "outputs.safetensors")
    save_file({f"layers.{i}.rotations": r.contiguous() for i, r in rotations.items()}, d / "rotations.safetensors")
    save_file({k: v.contiguous() for k, v in layers.items()}, d / "layers.safetensors")
    if "generate" in spec:
        meta_gen = generate(model, spec["generate"], ids, rotations)
    meta = {
        "ids": ids,
        "short_ids": short_ids,
        "output": "logits" if spec["lm"] else "last_hidden_state",
        "padded_length": padded,
        "lsh_layers": lsh_layers,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    if "generate" in spec:
        meta["generate"] = meta_gen
    (d / "inputs.json").write_text(json.dumps(meta, indent=1) + "\n")
    sizes = {f.name: f.stat().st_size for f in sorted(d.iterdir())}
    print(f"{spec['name']}: T={len(ids)} padded to {padded}, output {tuple(out.shape)}, files {sizes}")


def cached_generate(model, prompt, new, rotations):
    """HF's cached greedy generation with every hashing call replaying `rotations`; returns the new
    ids and the raw logits of each step, checked against a manual loop over past_buckets_states."""
    with Recorder() as rec:
        rec.rotations, rec.replay = dict(rotations), True
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt]), do_sample=False, use_cache=True, max_new_tokens=new,
                                 min_new_tokens=new, pad_token_id=0, output_logits=True,
                                 return_dict_in_generate=True)
            ids = out.sequences[0, len(prompt):].tolist()
            logits = torch.stack([l[0] for l in out.logits])
            # The same steps by hand: the prompt once, then one id per call with the cache.
            step = model(torch.tensor([prompt]), use_cache=True)
            manual, past = [step.logits[0, -1]], step.past_buckets_states
            for t in ids[:-1]:
                step = model(torch.tensor([[t]]), past_buckets_states=past, use_cache=True)
                manual.append(step.logits[0, -1])
                past = step.past_buckets_states
    diff = (torch.stack(manual) - logits).abs().max().item()
    print("manual vs generate", diff, [int(m.argmax()) for m in manual] == [int(l.argmax()) for l in logits])
    assert diff <= 1e-5 * logits.abs().max().item(), "generate and the manual cached loop must agree"
    assert [int(l.argmax()) for l in logits] == ids
    return ids, logits


def make_cached(spec):
    """cached.json / cached.safetensors for a written fixture folder (its model and rotations)."""
    d = OUT / spec["name"]
    model = ReformerModelWithLMHead.from_pretrained(d)
    model.eval()
    # No end-of-sequence stop: every run has its full length, chosen by the raw argmax.
    model.generation_config.eos_token_id = None
    from safetensors.torch import load_file
    rot = {int(k.split(".")[1]): v for k, v in load_file(d / "rotations.safetensors").items()}
    ids = json.loads((d / "inputs.json").read_text())["ids"]
    runs, tensors = [], {}
    for k, g in enumerate(spec["cached"]):
        prompt = ids[: g["prompt"]]
        new, logits = cached_generate(model, prompt, g["new"], rot)
        runs.append({"prompt": prompt, "new_ids": new})
        tensors[f"runs.{k}.logits"] = logits.contiguous()
    meta = {"runs": runs, "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}
    (d / "cached.json").write_text(json.dumps(meta, indent=1) + "\n")
    save_file(tensors, d / "cached.safetensors")
    print(f"{spec['name']}: cached runs {[(len(r['prompt']), len(r['new_ids'])) for r in runs]}")


def main():
    import sys

    # `--cached [names...]` records only the cached runs (of the named configs that exist), leaving
    # the rest of the folders as they are; `--only name...` makes just those configs.
    args = sys.argv[1:]
    only = set(a for a in args if not a.startswith("--"))
    for k, spec in enumerate(CONFIGS):
        if only and spec["name"] not in only:
            continue
        if "--cached" not in args:
            make(spec, 1000 + k)
        if "cached" in spec:
            make_cached(spec)


if __name__ == "__main__":
    main()
