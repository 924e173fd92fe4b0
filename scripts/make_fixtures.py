#!/usr/bin/env python3
"""Writes the model-conformance fixtures under tests/fixtures/ from independent references:
Hugging Face transformers / tokenizers / sentence-transformers and gguf-py.

Run by hand (outputs are committed; CI never runs this, it needs torch). Name fixtures (e.g.
`make_fixtures.py long warpers`) to write only those; no names writes all:

    python3 -m venv /work/venv-fixtures        # outside the repo
    /work/venv-fixtures/bin/pip install torch transformers sentence-transformers gguf accelerate
    bash scripts/fetch-models.sh                # the two models, into the cache
    /work/venv-fixtures/bin/python scripts/make_fixtures.py

Files written (small JSON, floats rounded to 7 significant digits):
  tokenizer_smollm2.json  ids of varied strings from the tokenizer transformers builds from the
                          GGUF, decoded text, and chat prompts from apply_chat_template
  tokenizer_minilm.json   ids of the same strings from all-MiniLM-L6-v2's tokenizer.json
  smollm2.json            per prompt: ids, greedy continuation (24 tokens) and first-step top-20
                          logits; per-layer hidden states of one prompt for debugging
  minilm.json             sentence-transformers embeddings; ids and hidden states of one sentence
  smollm2_long.json       one prompt of 300-600 tokens: its greedy continuation (16 tokens), the
                          top-20 logits of the first step (the prefill) and of the last (a decode step
                          over the long cache)
  smollm2_gguf_rows.json  per-row checksums (sum, position-weighted sum) of dequantized SmolLM2
                          tensors over many rows, from gguf-py
  sampling_warpers.json   random logit rows through transformers' TemperatureLogitsWarper,
                          TopKLogitsWarper and TopPLogitsWarper: the tokens each keeps and their
                          renormalised probabilities
  gguf_py_sample.gguf     a GGUF written by gguf-py (every metadata type, alignment 64,
                          F32/F16/Q8_0/Q4_1 tensors) + gguf_py_sample.json, its expected contents
"""

import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures"


def model_paths():
    out = subprocess.run(["bash", str(ROOT / "scripts" / "fetch-models.sh")], check=True, capture_output=True, text=True).stdout
    paths = dict(line.split("=", 1) for line in out.strip().splitlines())
    return Path(paths["smollm2"]), Path(paths["minilm"])


def r7(x):
    """A float rounded to 7 significant digits (f32 precision) to keep the files small."""
    return float(f"{float(x):.7g}")


def write(name, obj):
    path = OUT / name
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    # Lists of numbers on one line each: readable diffs, a third of the size.
    text = re.sub(r"\[\s+([-0-9.eE+,\s]+?)\s+\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)
    path.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def versions():
    """Versions of the references that are installed (sentence-transformers is only needed for
    minilm.json)."""
    out = {}
    for name in ["transformers", "tokenizers", "torch", "sentence_transformers", "gguf"]:
        try:
            out[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


# Varied strings: plain, leading/trailing/multiple spaces, digits (ASCII and not), code,
# accents, CJK, Cyrillic/Greek, emoji (incl. ZWJ/skin tone/flags), special tokens in text,
# contractions, URLs, empty.
STRINGS = [
    "Hello world",
    " Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "In 2024, 3.14159 and 1,000,000 cars; x12 y 34 5",
    "   multiple   spaces\tand\ttabs\n\nnewlines  ",
    "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n",
    'fn main() { println!("{}", 1 << 10); } // Rust',
    "Ünïcödé: café, naïve, façade, Zürich, Ångström",
    "日本語のテキストと中文文本",
    "Привет, мир! Γειά σου κόσμε",
    "emoji 🤖🚀👍🏽 and 👨‍👩‍👧 and flags 🇫🇷 ❤️",
    "<|im_start|>user\nHi there<|im_end|>\n",
    "I'm sure they'll say it's what we'd've done, isn't it?",
    "URL: https://example.com/path?query=1&x=y#frag",
    "e-mail: someone@example.org, ID #A-42_b [CLS] [MASK]",
    "   ",
    "",
    "ALL CAPS AND MiXeD cAsE",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Tabs\tand\r\nCRLF line endings\r\n",
    "١٢٣ ٤٥ ²³ ½ Ⅻ",
]

CHATS = [
    {"messages": [{"role": "user", "content": "What is the capital of France?"}], "add_generation_prompt": True},
    {
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "Name three primary colors."},
        ],
        "add_generation_prompt": True,
    },
    {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Tell me a joke about 2 robots 🤖."},
        ],
        "add_generation_prompt": True,
    },
    {"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": False},
]

PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little robot who",
    "def fibonacci(n):\n",
    "The first five prime numbers are 2, 3, 5,",
]
CHAT_PROMPT = [{"role": "user", "content": "What is the capital of France?"}]
NEW_TOKENS = 24
TOP_K = 20
# A long prompt (300-600 tokens) so that decoding runs over a cache of several 64-key steps and,
# with the cache split, merges several non-empty parts.
LONG_PROMPT = (
    "The history of the lighthouse at Cape Morrow begins in 1821, when the harbour board of the small fishing "
    "town decided that too many boats had been lost on the rocks south of the bay. The first tower was built of "
    "local granite and stood only eleven metres tall. Its light came from a row of oil lamps set in front of "
    "polished copper reflectors, and on clear nights sailors could see it from about twelve nautical miles away. "
    "The keeper, a former ship's carpenter named Thomas Hale, lived in a cottage at the foot of the tower with his "
    "wife and four children. Every evening he climbed the narrow stairs to trim the wicks, clean the glass and "
    "wind the clockwork that turned the reflectors. In the winter of 1836 a storm destroyed the cottage roof, and "
    "the family spent three weeks sleeping in the store room beneath the lamp. Hale kept a logbook of every ship "
    "that passed, every storm and every repair, and the logbook survives today in the town museum.\n\n"
    "In 1872 the old tower was replaced by a taller one made of cast iron plates, shipped in pieces from a foundry "
    "in the north and bolted together on site. The new tower was twenty-six metres tall and carried a first-order "
    "Fresnel lens, a beehive of glass prisms that bent the light into a single powerful beam. With a paraffin "
    "burner behind the lens, the light could be seen from more than twenty nautical miles. Two keepers now worked "
    "in shifts, and a fog signal was added: a steam horn that sounded two long blasts every minute whenever the "
    "fog rolled in from the sea.\n\n"
    "Electricity reached the cape in 1931. The paraffin burner was replaced by a large electric lamp, and a diesel "
    "generator was installed in a small brick building next to the tower in case the power failed. During the "
    "Second World War the light was dimmed and then switched off for long periods, and the keepers served as "
    "coast watchers, reporting aircraft and ships to the navy. After the war the light returned to full strength. "
    "In 1987 the lighthouse was automated: sensors now switch the lamp on at dusk and off at dawn, and a radio "
    "link reports faults to an office in the city. The last keeper, Margaret Hale, a great-great-granddaughter of "
    "Thomas, locked the door for the final time on a windy afternoon in March.\n\n"
    "Today the keepers' cottages have been restored as a small museum, and visitors can climb the tower on summer "
    "weekends. From the gallery at the top they can see the whole bay, the rocks where so many boats were lost, "
    "and on a clear day the mountains far inland. The museum guide usually ends the tour by telling the story of"
)
LONG_NEW_TOKENS = 16


SENTENCES = [
    "This framework generates embeddings for each input sentence",
    "Sentences are passed as a list of strings.",
    "The quick brown fox jumps over the lazy dog.",
    "A man is eating food.",
    "Ünïcödé, café and emoji 🤖 are handled too.",
    # Longer than max_seq_length (256 tokens): sentence-transformers truncates it.
    " ".join(["The weather today is sunny with a light breeze from the west."] * 24),
]


def smollm2_tokenizer(gguf_path):
    from transformers import AutoTokenizer
    from tokenizers import Tokenizer, pre_tokenizers

    tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    # transformers builds the GGUF tokenizer with a plain GPT-2 ByteLevel pre-tokenizer: it ignores
    # tokenizer.ggml.pre = "smollm", which (llama.cpp's llama-vocab.cpp, and SmolLM2's own
    # tokenizer.json) first splits every number character off on its own. With this vocabulary
    # (no multi-digit tokens) the two agree on ASCII digits but not on other numerals (e.g. "١٢٣"
    # after a space). Record both; `ids_digits` is the same HF tokenizer with the smollm split.
    digits = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    digits.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    cases = []
    for s in STRINGS:
        ids = tok(s)["input_ids"]
        d = digits.encode(s).ids
        case = {"text": s, "ids": ids, "decoded": tok.decode(ids)}
        if d != ids:
            case["ids_digits"] = d
        cases.append(case)
    chats = []
    for c in CHATS:
        text = tok.apply_chat_template(c["messages"], tokenize=False, add_generation_prompt=c["add_generation_prompt"])
        ids = tok(text)["input_ids"]
        chats.append(dict(c, text=text, ids=ids))
    return tok, {
        "source": f"transformers AutoTokenizer.from_pretrained(dir, gguf_file='{gguf_path.name}')",
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "vocab_size": len(tok),
        "strings": cases,
        "chat": chats,
    }


def minilm_tokenizer(minilm_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_dir))
    return tok, {
        "source": "transformers AutoTokenizer.from_pretrained(all-MiniLM-L6-v2 folder) (tokenizer.json)",
        "strings": [{"text": s, "ids": tok(s)["input_ids"]} for s in STRINGS],
    }


def sample(name, kind, a):
    """First 16 values of the first and last rows and the f64 sum of a tensor, webformer's shape."""
    a = np.asarray(a, dtype=np.float32)
    rows = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(1, -1)
    return {
        "name": name,
        "type": kind,
        "shape": list(a.shape),
        "first_row_first16": [r7(v) for v in rows[0, :16]],
        "last_row_first16": [r7(v) for v in rows[-1, :16]],
        "sum": float(a.astype(np.float64).sum()),
    }


def smollm2_tensors(gguf_path):
    """Tensor types and dequantized samples read by gguf-py (the reference reader)."""
    import collections
    import gguf

    r = gguf.GGUFReader(str(gguf_path))
    types = collections.Counter(t.tensor_type.name for t in r.tensors)
    by_name = {t.name: t for t in r.tensors}
    picks = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_norm.weight", "blk.29.ffn_down.weight", "output_norm.weight"]
    samples = []
    for n in picks:
        t = by_name[n]
        samples.append(sample(n, t.tensor_type.name, gguf.quants.dequantize(t.data, t.tensor_type)))
    return {
        "count": len(r.tensors),
        "types": dict(types),
        # Q4_1 holds the block matrices and F32 the norm weights; the rest, by name:
        "f32_names_all_norms": all(t.name.endswith("norm.weight") for t in r.tensors if t.tensor_type.name == "F32"),
        "other_types": {k: sorted(t.name for t in r.tensors if t.tensor_type.name == k) for k in types if k not in ("Q4_1", "F32")},
        "has_output_weight": "output.weight" in by_name,
        "samples": samples,
    }


def row_weights(n):
    """Weights of the position-sensitive row checksum: ((37 j) mod 101) / 50.5 - 1, which has no
    period of 16 or 32, so values swapped within or between blocks change it."""
    return ((np.arange(n) * 37) % 101) / 50.5 - 1.0


def smollm2_gguf_rows(gguf_path):
    """Per-row checksums of dequantized tensors, read by gguf-py: every row of tensors with up
    to 600 rows, 64 evenly spaced rows (and the last) of larger ones."""
    import gguf

    r = gguf.GGUFReader(str(gguf_path))
    by_name = {t.name: t for t in r.tensors}
    picks = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.attn_norm.weight", "blk.15.ffn_gate.weight", "blk.29.ffn_down.weight", "output_norm.weight"]
    out = []
    for n in picks:
        t = by_name[n]
        a = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        rows = a.reshape(-1, a.shape[-1]).astype(np.float64)
        idx = list(range(len(rows))) if len(rows) <= 600 else sorted(set(np.linspace(0, len(rows) - 1, 64).astype(int).tolist()))
        w = row_weights(rows.shape[1])
        out.append(
            {
                "name": n,
                "type": t.tensor_type.name,
                "shape": list(a.shape),
                "rows": idx,
                "sum": [float(rows[i].sum()) for i in idx],
                "weighted_sum": [float((rows[i] * w).sum()) for i in idx],
                "abs_sum": [float(np.abs(rows[i]).sum()) for i in idx],
            }
        )
    return {
        "source": f"gguf-py GGUFReader + gguf.quants.dequantize ({importlib.metadata.version('gguf')}); sums in float64",
        "row_weights": "((37 j) mod 101) / 50.5 - 1 for column j",
        "tensors": out,
    }


def minilm_tensors(minilm_dir):
    from safetensors.numpy import load_file

    t = load_file(str(minilm_dir / "model.safetensors"))
    picks = ["embeddings.word_embeddings.weight", "embeddings.LayerNorm.weight", "encoder.layer.0.attention.self.query.weight", "encoder.layer.5.output.dense.bias"]
    picks = [p for p in picks if p in t]
    return {
        "count": len(t),
        "dtypes": sorted({str(v.dtype) for v in t.values()}),
        "names": sorted(t),
        "samples": [sample(n, str(t[n].dtype), t[n]) for n in picks],
    }


def smollm2_model(gguf_path, tok):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32, attn_implementation="eager"
    )
    model.eval()
    cfg = model.config
    prompts = [{"kind": "text", "text": p} for p in PROMPTS]
    chat_text = tok.apply_chat_template(CHAT_PROMPT, tokenize=False, add_generation_prompt=True)
    prompts.append({"kind": "chat", "messages": CHAT_PROMPT, "text": chat_text})
    out = []
    for p in prompts:
        ids = tok(p["text"], return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = model(ids).logits[0, -1].float()
            top = torch.topk(logits, TOP_K)
            gen = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.eos_token_id,
                return_dict_in_generate=True,
                output_logits=True,
            )
        new = gen.sequences[0, ids.shape[1]:].tolist()
        # Top-1 minus top-2 logit at each greedy step: where it is small, a tiny numeric
        # difference can pick the other token, and the continuations part ways from there.
        margins = [r7(v[0] - v[1]) for v in (torch.topk(l[0].float(), 2).values.tolist() for l in gen.logits)]
        out.append(
            dict(
                p,
                ids=ids[0].tolist(),
                continuation_ids=new,
                continuation_text=tok.decode(new),
                stopped_at_eos=bool(new and new[-1] == tok.eos_token_id),
                step_margins=margins,
                top_ids=top.indices.tolist(),
                top_logits=[r7(v) for v in top.values.tolist()],
                logits_mean=r7(logits.mean()),
                logits_std=r7(logits.std()),
            )
        )
        print(f"  {p['text']!r} -> {tok.decode(new)!r}")
    # Per-layer states of the first prompt's last token, first 16 dims: index 0 = embeddings,
    # i = after block i (HF's last entry has the final RMSNorm applied).
    ids = tok(PROMPTS[0], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        hs = model(ids, output_hidden_states=True).hidden_states
    layers = [[r7(v) for v in h[0, -1, :16].tolist()] for h in hs]
    return {
        "source": f"transformers AutoModelForCausalLM.from_pretrained(dir, gguf_file='{gguf_path.name}'), dequantized to float32, eager attention, greedy",
        "config": {
            "num_hidden_layers": cfg.num_hidden_layers,
            "hidden_size": cfg.hidden_size,
            "num_attention_heads": cfg.num_attention_heads,
            "num_key_value_heads": cfg.num_key_value_heads,
            "intermediate_size": cfg.intermediate_size,
            "vocab_size": cfg.vocab_size,
            "rope_theta": getattr(cfg, "rope_theta", None) or (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta"),
            "rms_norm_eps": cfg.rms_norm_eps,
            "max_position_embeddings": cfg.max_position_embeddings,
            "tie_word_embeddings": bool(getattr(cfg, "tie_word_embeddings", False)),
        },
        "new_tokens": NEW_TOKENS,
        "top_k": TOP_K,
        "prompts": out,
        "gguf_tensors": smollm2_tensors(gguf_path),
        "hidden_states_prompt": PROMPTS[0],
        "hidden_states_last_token_first16": layers,
    }


def minilm_model(minilm_dir, tok):
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    st = SentenceTransformer(str(minilm_dir), device="cpu")
    emb = st.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    model = AutoModel.from_pretrained(str(minilm_dir), attn_implementation="eager")
    model.eval()
    s = SENTENCES[0]
    enc = tok(s, return_tensors="pt")
    with torch.no_grad():
        o = model(**enc, output_hidden_states=True)
    return {
        "source": "sentence-transformers SentenceTransformer(all-MiniLM-L6-v2 folder).encode(normalize_embeddings=True); transformers AutoModel (eager) for the states",
        "max_seq_length": st.max_seq_length,
        "safetensors": minilm_tensors(minilm_dir),
        "sentences": [{"text": t, "ids": tok(t, truncation=True, max_length=st.max_seq_length)["input_ids"], "embedding": [r7(v) for v in e]} for t, e in zip(SENTENCES, emb)],
        "debug_sentence": s,
        "debug_ids": enc["input_ids"][0].tolist(),
        "last_hidden_state_first_rows": [[r7(v) for v in row] for row in o.last_hidden_state[0, :3].tolist()],
        # index 0 = embeddings (after their LayerNorm), i = after encoder layer i; token 0, first 16 dims
        "hidden_states_token0_first16": [[r7(v) for v in h[0, 0, :16].tolist()] for h in o.hidden_states],
    }


def gguf_sample():
    """A GGUF written by gguf-py, the reference writer, with every metadata value type."""
    import gguf
    from gguf import GGMLQuantizationType as Q, GGUFValueType as V

    rng = np.random.default_rng(1234)
    path = OUT / "gguf_py_sample.gguf"
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_custom_alignment(64)
    meta = [
        ("test.u8", V.UINT8, 200),
        ("test.i8", V.INT8, -100),
        ("test.u16", V.UINT16, 60000),
        ("test.i16", V.INT16, -30000),
        ("test.u32", V.UINT32, 4000000000),
        ("test.i32", V.INT32, -2000000000),
        ("test.f32", V.FLOAT32, 0.15625),
        ("test.bool", V.BOOL, True),
        ("test.string", V.STRING, "héllo 🤖"),
        ("test.u64", V.UINT64, 18000000000000000000),
        ("test.i64", V.INT64, -9000000000000000000),
        ("test.f64", V.FLOAT64, 2.718281828459045),
    ]
    for k, t, v in meta:
        w.add_key_value(k, v, t)
    arrays = [
        ("test.array_str", V.STRING, ["a", "", "ĠHello", "<|im_end|>"]),
        ("test.array_i32", V.INT32, [1, -2, 3]),
        ("test.array_f32", V.FLOAT32, [0.5, -1.25]),
        ("test.array_bool", V.BOOL, [True, False, True]),
    ]
    for k, t, v in arrays:
        w.add_key_value(k, v, V.ARRAY, sub_type=t)
    w.add_key_value("test.array_nested", [[1, 2], [3]], V.ARRAY, sub_type=V.ARRAY)
    tensors = []
    f32 = rng.standard_normal((5, 7)).astype(np.float32)
    w.add_tensor("t.f32", f32)
    tensors.append(("t.f32", "F32", f32))
    f16 = rng.standard_normal(11).astype(np.float16)
    w.add_tensor("t.f16", f16)
    tensors.append(("t.f16", "F16", f16.astype(np.float32)))
    cube = rng.standard_normal((2, 3, 4)).astype(np.float32)
    w.add_tensor("t.cube", cube)
    tensors.append(("t.cube", "F32", cube))
    for name, qt, shape in [("t.q8_0", Q.Q8_0, (3, 64)), ("t.q4_1", Q.Q4_1, (2, 96))]:
        x = rng.standard_normal(shape).astype(np.float32)
        q = gguf.quants.quantize(x, qt)
        w.add_tensor(name, q, raw_dtype=qt)
        tensors.append((name, qt.name, gguf.quants.dequantize(q, qt)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    def js(t, v):
        if t in (V.FLOAT32, V.FLOAT64):
            return {"type": t.name.lower(), "value": v}
        return {"type": t.name.lower(), "value": v}

    expected = {
        "source": f"gguf-py GGUFWriter (gguf {importlib.metadata.version('gguf')}), alignment 64",
        "alignment": 64,
        "metadata": {k: js(t, v) for k, t, v in meta},
        "arrays": {k: {"type": t.name.lower(), "value": v} for k, t, v in arrays},
        "nested": {"key": "test.array_nested", "value": [[1, 2], [3]]},
        "tensors": [{"name": n, "type": t, "shape": list(a.shape), "values": [r7(v) for v in np.asarray(a, dtype=np.float32).ravel()]} for n, t, a in tensors],
    }
    write("gguf_py_sample.json", expected)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def smollm2_long(gguf_path, tok):
    """The long prompt's greedy continuation, first-step and last-step top logits."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32, attn_implementation="eager"
    )
    model.eval()
    ids = tok(LONG_PROMPT, return_tensors="pt")["input_ids"]
    assert 300 <= ids.shape[1] <= 600, ids.shape
    with torch.no_grad():
        gen = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=LONG_NEW_TOKENS,
            min_new_tokens=LONG_NEW_TOKENS,
            do_sample=False,
            pad_token_id=tok.eos_token_id,
            return_dict_in_generate=True,
            output_logits=True,
        )
    new = gen.sequences[0, ids.shape[1]:].tolist()
    steps = [l[0].float() for l in gen.logits]
    margins = [r7(v[0] - v[1]) for v in (torch.topk(l, 2).values.tolist() for l in steps)]

    def top(l):
        t = torch.topk(l, TOP_K)
        return {"ids": t.indices.tolist(), "logits": [r7(v) for v in t.values.tolist()], "mean": r7(l.mean()), "std": r7(l.std())}

    print(f"  long prompt ({ids.shape[1]} tokens) -> {tok.decode(new)!r}; smallest margin {min(margins)}")
    return {
        "source": f"transformers AutoModelForCausalLM.from_pretrained(dir, gguf_file='{gguf_path.name}'), dequantized to float32, eager attention, greedy",
        "text": LONG_PROMPT,
        "ids": ids[0].tolist(),
        "new_tokens": LONG_NEW_TOKENS,
        "continuation_ids": new,
        "continuation_text": tok.decode(new),
        "step_margins": margins,
        # steps[0] comes from the prompt; steps[-1] from the last decode step, whose query is at
        # position len(ids) + LONG_NEW_TOKENS - 2 and sees that many keys plus one.
        "first_step_top": top(steps[0]),
        "last_step_top": top(steps[-1]),
    }


# (columns, temperature, top_k, top_p): top-k alone, top-p alone, both, ties-free random rows.
WARPER_CASES = [
    (10, 1.0, 4, 0.8),
    (10, 0.5, 0, 0.9),
    (10, 2.0, 0, 0.6),
    (37, 1.0, 0, 0.5),
    (37, 0.7, 10, 0.95),
    (50, 1.5, 20, 0.7),
    (257, 1.0, 40, 0.9),
    (257, 0.8, 0, 0.3),
    (1031, 1.0, 50, 0.95),
    (1031, 2.0, 0, 0.2),
]


def sampling_warpers():
    """Candidate sets and probabilities from transformers' sampling warpers, applied in the
    order `generate` applies them (temperature, top-k, top-p)."""
    import torch
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    rng = np.random.default_rng(2024)
    cases = []
    for n, t, k, p in WARPER_CASES:
        # Logits rounded to 7 digits first, so the test reads the very values used here; a
        # row is redrawn while top-p's mass lies within 1e-3 of its threshold (where f32 and
        # f64 sums could disagree about the last token kept).
        while True:
            row = [r7(v) for v in rng.normal(0.0, 2.0, n)]
            x = torch.tensor([row], dtype=torch.float32)
            scores = TemperatureLogitsWarper(t)(None, x)
            if k:
                scores = TopKLogitsWarper(k)(None, scores)
            kept_k = torch.isfinite(scores[0])
            warped = TopPLogitsWarper(p)(None, scores) if p < 1.0 else scores
            kept = torch.isfinite(warped[0])
            probs = torch.softmax(scores[0].double(), -1)
            mass = sorted(probs[kept_k].tolist(), reverse=True)
            cum = np.cumsum(mass)
            margin = float(np.min(np.abs(cum - p))) if p < 1.0 else 1.0
            if margin > 1e-3:
                break
        final = torch.softmax(warped[0].double(), -1)
        cases.append(
            {
                "temperature": t,
                "top_k": k,
                "top_p": p,
                "logits": row,
                "kept_by_top_k": int(kept_k.sum()),
                "kept": [i for i in range(n) if kept[i]],
                "probs": [float(f"{final[i].item():.12g}") for i in range(n) if kept[i]],
                "top_p_margin": r7(margin),
            }
        )
    return {
        "source": "transformers TemperatureLogitsWarper -> TopKLogitsWarper -> TopPLogitsWarper (min_tokens_to_keep 1); probs = softmax of the warped scores (float64)",
        "cases": cases,
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    only = set(sys.argv[1:])
    want = lambda name: not only or name in only  # noqa: E731
    smollm2, minilm = model_paths()
    print(f"SmolLM2: {smollm2}\nMiniLM:  {minilm}")
    meta = {"versions": versions()}

    if want("gguf"):
        gguf_sample()

    tok_s, fx = smollm2_tokenizer(smollm2)
    if want("tokenizers"):
        write("tokenizer_smollm2.json", dict(meta, **fx))
    tok_m, fx = minilm_tokenizer(minilm)
    if want("tokenizers"):
        write("tokenizer_minilm.json", dict(meta, **fx))

    if want("models"):
        print("SmolLM2 greedy continuations:")
        write("smollm2.json", dict(meta, **smollm2_model(smollm2, tok_s)))
        write("minilm.json", dict(meta, **minilm_model(minilm, tok_m)))
    if want("gguf_rows"):
        write("smollm2_gguf_rows.json", dict(meta, **smollm2_gguf_rows(smollm2)))
    if want("long"):
        write("smollm2_long.json", dict(meta, **smollm2_long(smollm2, tok_s)))
    if want("warpers"):
        write("sampling_warpers.json", dict(meta, **sampling_warpers()))


if __name__ == "__main__":
    sys.exit(main())
