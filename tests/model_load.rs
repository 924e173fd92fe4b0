//! Model files, tokenizers and chat prompts.
//!
//! - The GGUF reader on synthetic files built here byte by byte (every metadata type, custom
//!   and default alignment, fresh seeded random tensors), on every truncation of them, on bad
//!   magic/versions and corrupt counts, and on a file written by gguf-py (the reference writer).
//! - With the real models (scripts/fetch-models.sh; without them these tests print SKIPPED,
//!   or fail when WEBFORMER_REQUIRE_MODELS=1): SmolLM2's metadata, tensor types and dequantized
//!   samples against gguf-py, both tokenizers against transformers' ids for every fixture string,
//!   and the chat template against transformers' `apply_chat_template`.
//!
//! Fixtures: tests/fixtures/*.json, written by scripts/make_fixtures.py.

mod common;
use common::models;

use std::path::PathBuf;

use serde_json::Value as Json;
use webformer::model::{
    BertConfig, ChatTemplate, GgmlType, Gguf, LlamaConfig, Message, Pooling, Safetensors, SentenceConfig, Tokenizer,
    Value,
};
use webformer::{DType, HostData};

// ---------------------------------------------------------------------------------------------
// A GGUF writer for the tests, written from the spec (ggml/docs/gguf.md), not from our reader.

#[derive(Default)]
struct GgufBuilder {
    version: u32,
    kv: Vec<u8>,
    n_kv: u64,
    /// (name, ne (GGUF order), ggml type, data)
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
    alignment: usize,
}

fn gstr(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

impl GgufBuilder {
    fn new(alignment: Option<u32>) -> Self {
        let mut b = GgufBuilder { version: 3, alignment: alignment.unwrap_or(32) as usize, ..Default::default() };
        if let Some(a) = alignment {
            b.kv(4, "general.alignment", &a.to_le_bytes());
        }
        b
    }

    /// A key/value with an already-encoded payload of GGUF type `ty`.
    fn kv(&mut self, ty: u32, key: &str, payload: &[u8]) {
        gstr(&mut self.kv, key);
        self.kv.extend(ty.to_le_bytes());
        self.kv.extend(payload);
        self.n_kv += 1;
    }

    fn kv_str(&mut self, key: &str, s: &str) {
        let mut p = Vec::new();
        gstr(&mut p, s);
        self.kv(8, key, &p);
    }

    fn tensor(&mut self, name: &str, shape_outer_first: &[usize], ty: u32, data: Vec<u8>) {
        let ne = shape_outer_first.iter().rev().map(|&d| d as u64).collect();
        self.tensors.push((name.into(), ne, ty, data));
    }

    fn build(&self) -> Vec<u8> {
        let pad = |n: usize| n.div_ceil(self.alignment) * self.alignment;
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kv);
        let mut offset = 0usize;
        for (name, ne, ty, data) in &self.tensors {
            gstr(&mut out, name);
            out.extend((ne.len() as u32).to_le_bytes());
            for d in ne {
                out.extend(d.to_le_bytes());
            }
            out.extend(ty.to_le_bytes());
            out.extend((offset as u64).to_le_bytes());
            offset = pad(offset + data.len());
        }
        out.resize(pad(out.len()), 0);
        for (i, (_, _, _, data)) in self.tensors.iter().enumerate() {
            out.extend(data);
            if i + 1 < self.tensors.len() {
                out.resize(pad(out.len()), 0);
            }
        }
        out
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Random bytes for quantized blocks (the reader passes blocks through untouched).
fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    common::random(seed, n, 0.0, 256.0).into_iter().map(|v| v as u8).collect()
}

/// (name, shape outermost first, host data) of a tensor written into a synthetic file.
type Expected = (String, Vec<usize>, HostData);

/// A synthetic file with every metadata type and F32/F16/Q8_0/Q4_1 tensors of awkward shapes.
/// Returns the bytes and the tensors' expected contents.
fn synthetic(seed: u64, alignment: Option<u32>) -> (Vec<u8>, Vec<Expected>) {
    let mut b = GgufBuilder::new(alignment);
    b.kv(0, "t.u8", &[250]);
    b.kv(1, "t.i8", &[(-7i8) as u8]);
    b.kv(2, "t.u16", &65000u16.to_le_bytes());
    b.kv(3, "t.i16", &(-32000i16).to_le_bytes());
    b.kv(4, "t.u32", &4_000_000_000u32.to_le_bytes());
    b.kv(5, "t.i32", &(-2_000_000_000i32).to_le_bytes());
    b.kv(6, "t.f32", &1.5f32.to_le_bytes());
    b.kv(7, "t.bool", &[1]);
    b.kv_str("t.string", "naïve 🤖 text");
    b.kv(10, "t.u64", &u64::MAX.to_le_bytes());
    b.kv(11, "t.i64", &i64::MIN.to_le_bytes());
    b.kv(12, "t.f64", &(-0.125f64).to_le_bytes());
    // array of strings
    let mut p = 8u32.to_le_bytes().to_vec();
    p.extend(3u64.to_le_bytes());
    for s in ["Ġthe", "", "<|im_end|>"] {
        gstr(&mut p, s);
    }
    b.kv(9, "t.strings", &p);
    // array of i32
    let mut p = 5u32.to_le_bytes().to_vec();
    p.extend(4u64.to_le_bytes());
    for v in [1i32, -1, 3, 1 << 30] {
        p.extend(v.to_le_bytes());
    }
    b.kv(9, "t.ints", &p);
    // array of arrays of u8: [[1, 2], []]
    let mut p = 9u32.to_le_bytes().to_vec();
    p.extend(2u64.to_le_bytes());
    p.extend(0u32.to_le_bytes());
    p.extend(2u64.to_le_bytes());
    p.extend([1u8, 2]);
    p.extend(0u32.to_le_bytes());
    p.extend(0u64.to_le_bytes());
    b.kv(9, "t.nested", &p);
    // empty array of f64
    let mut p = 12u32.to_le_bytes().to_vec();
    p.extend(0u64.to_le_bytes());
    b.kv(9, "t.empty", &p);

    let mut expected = Vec::new();
    // F32, 3-D, odd sizes: [3, 5, 7] in webformer order is ne = [7, 5, 3].
    let x = common::random(seed, 3 * 5 * 7, -2.0, 2.0);
    b.tensor("w.f32", &[3, 5, 7], 0, f32_bytes(&x));
    expected.push(("w.f32".to_string(), vec![3, 5, 7], HostData::F32(x)));
    // F16 vector of prime length.
    let h: Vec<half::f16> = common::random(seed + 1, 13, -4.0, 4.0).into_iter().map(half::f16::from_f32).collect();
    b.tensor("w.f16", &[13], 1, h.iter().flat_map(|v| v.to_le_bytes()).collect());
    expected.push(("w.f16".to_string(), vec![13], HostData::F16(h)));
    // Q8_0 [3, 64] and Q4_1 [5, 96]: 34- and 20-byte blocks, odd byte lengths.
    let q8 = random_bytes(seed + 2, 3 * 2 * 34);
    b.tensor("w.q8", &[3, 64], 8, q8.clone());
    expected.push(("w.q8".to_string(), vec![3, 64], HostData::Quant { dtype: DType::Q8_0, len: 192, bytes: q8 }));
    let q4 = random_bytes(seed + 3, 5 * 3 * 20);
    b.tensor("w.q4", &[5, 96], 3, q4.clone());
    expected.push(("w.q4".to_string(), vec![5, 96], HostData::Quant { dtype: DType::Q4_1, len: 480, bytes: q4 }));
    // A scalar-like 1-element tensor last (no padding after it).
    b.tensor("w.one", &[1], 0, f32_bytes(&[42.0]));
    expected.push(("w.one".to_string(), vec![1], HostData::F32(vec![42.0])));
    (b.build(), expected)
}

#[test]
fn gguf_synthetic_every_value_type_and_tensor() {
    for alignment in [None, Some(64), Some(8)] {
        let seed = common::seed("gguf_synthetic");
        let (bytes, expected) = synthetic(seed, alignment);
        let g = Gguf::parse(&bytes, "synthetic.gguf").unwrap();
        assert_eq!(g.version(), 3);
        let align = alignment.unwrap_or(32) as usize;
        assert_eq!(g.alignment(), align);
        assert_eq!(g.data_offset() % align, 0);
        assert_eq!(g.get("t.u8"), Some(&Value::U8(250)));
        assert_eq!(g.get("t.i8"), Some(&Value::I8(-7)));
        assert_eq!(g.get("t.u16"), Some(&Value::U16(65000)));
        assert_eq!(g.get("t.i16"), Some(&Value::I16(-32000)));
        assert_eq!(g.get("t.u32"), Some(&Value::U32(4_000_000_000)));
        assert_eq!(g.get("t.i32"), Some(&Value::I32(-2_000_000_000)));
        assert_eq!(g.get("t.f32"), Some(&Value::F32(1.5)));
        assert_eq!(g.get("t.bool"), Some(&Value::Bool(true)));
        assert_eq!(g.str("t.string").unwrap(), "naïve 🤖 text");
        assert_eq!(g.get("t.u64"), Some(&Value::U64(u64::MAX)));
        assert_eq!(g.get("t.i64"), Some(&Value::I64(i64::MIN)));
        assert_eq!(g.get("t.f64"), Some(&Value::F64(-0.125)));
        assert_eq!(g.strings("t.strings").unwrap(), vec!["Ġthe", "", "<|im_end|>"]);
        assert_eq!(g.ints("t.ints").unwrap(), vec![1, -1, 3, 1 << 30]);
        assert_eq!(
            g.get("t.nested"),
            Some(&Value::Array(vec![Value::Array(vec![Value::U8(1), Value::U8(2)]), Value::Array(vec![])]))
        );
        assert_eq!(g.get("t.empty"), Some(&Value::Array(vec![])));
        // Typed getters convert between integer widths and say what is wrong otherwise.
        assert_eq!(g.u32("t.u16").unwrap(), 65000);
        assert!((g.f64("t.f32").unwrap() - 1.5).abs() < 1e-12);
        let e = g.u32("t.i8").unwrap_err().to_string();
        assert!(e.contains("synthetic.gguf") && e.contains("t.i8") && e.contains("int8"), "{e}");
        let e = g.u32("t.missing").unwrap_err().to_string();
        assert!(e.contains("'t.missing' is missing"), "{e}");

        assert_eq!(g.tensors().len(), expected.len());
        for (name, shape, data) in &expected {
            let info = g.tensor_info(name).unwrap();
            assert_eq!(&info.shape, shape, "{name}");
            assert_eq!(info.offset % align, 0, "{name} data must be aligned to {align}");
            let t = g.tensor(name).unwrap();
            assert_eq!(&t.shape, shape, "{name}: shape in webformer order (GGUF ne reversed)");
            // Exact: the reader copies bytes, nothing is computed.
            assert_eq!(&t.data, data, "{name}");
        }
        assert_eq!(g.tensor_info("w.q8").unwrap().ggml_type, GgmlType::Q8_0);
        let e = g.tensor("w.nope").unwrap_err().to_string();
        assert!(e.contains("no tensor named 'w.nope'"), "{e}");
    }
}

#[test]
fn gguf_version_2_reads_as_version_3() {
    // Version 2 (2023) has the layout of version 3 (64-bit counts and sizes); 3 only added
    // big-endian files. The same content written as either version must read the same.
    let seed = common::seed("gguf v2");
    let mut b = GgufBuilder::new(Some(64));
    b.version = 2;
    b.kv_str("general.architecture", "llama");
    b.kv(4, "t.u32", &7u32.to_le_bytes());
    let x = common::random(seed, 3 * 5, -1.0, 1.0);
    b.tensor("w.f32", &[3, 5], 0, f32_bytes(&x));
    let q8 = random_bytes(seed + 1, 2 * 34);
    b.tensor("w.q8", &[1, 64], 8, q8.clone());
    let v2 = b.build();
    b.version = 3;
    let v3 = b.build();
    let (g2, g3) = (Gguf::parse(&v2, "v2.gguf").unwrap(), Gguf::parse(&v3, "v3.gguf").unwrap());
    assert_eq!((g2.version(), g3.version()), (2, 3));
    assert_eq!(g2.str("general.architecture").unwrap(), "llama");
    assert_eq!(g2.u32("t.u32").unwrap(), 7);
    assert_eq!(g2.alignment(), 64);
    assert_eq!(g2.data_offset(), g3.data_offset());
    for name in ["w.f32", "w.q8"] {
        let (t2, t3) = (g2.tensor(name).unwrap(), g3.tensor(name).unwrap());
        assert_eq!((&t2.shape, &t2.data), (&t3.shape, &t3.data), "{name}");
    }
    assert_eq!(g2.tensor("w.f32").unwrap().data, HostData::F32(x));
    assert_eq!(g2.tensor("w.q8").unwrap().data, HostData::Quant { dtype: DType::Q8_0, len: 64, bytes: q8 });
}

#[test]
fn gguf_every_truncation_is_a_clear_error() {
    let seed = common::seed("gguf_truncated");
    let (bytes, _) = synthetic(seed, Some(64));
    // Every prefix of the file: an error naming the file, never a panic or a huge allocation.
    // (The last tensor ends the file, so every cut loses part of something.)
    for cut in 0..bytes.len() {
        let e = match Gguf::parse(&bytes[..cut], "cut.gguf") {
            Ok(_) => panic!("a file cut to {cut} of {} bytes parsed", bytes.len()),
            Err(e) => e.to_string(),
        };
        assert!(e.starts_with("cut.gguf: "), "cut {cut}: {e}");
        assert!(e.contains("truncated") || cut < 4, "cut {cut}: {e}");
    }
    let e = Gguf::parse(&bytes[..bytes.len() - 1], "cut.gguf").unwrap_err().to_string();
    assert!(e.contains("tensor 'w.one'") && e.contains("truncated"), "{e}");
    // A cut inside a metadata value names the key.
    let at = bytes.windows(9).position(|w| w == b"t.strings").unwrap() + 9 + 4 + 8 + 3;
    let e = Gguf::parse(&bytes[..at], "cut.gguf").unwrap_err().to_string();
    assert!(e.contains("metadata key 't.strings'"), "{e}");
    // Counts larger than the bytes that follow are refused before anything is read.
    let e = Gguf::parse(&bytes[..30], "cut.gguf").unwrap_err().to_string();
    assert!(e.contains("tensor count") && e.contains("5 items"), "{e}");
}

#[test]
fn gguf_bad_header_is_a_clear_error() {
    let (mut bytes, _) = synthetic(1, None);
    let e = Gguf::parse(b"GGML\x03\0\0\0", "old.bin").unwrap_err().to_string();
    assert!(e.starts_with("old.bin: not a GGUF file"), "{e}");
    let e = Gguf::parse(b"", "empty.gguf").unwrap_err().to_string();
    assert!(e.contains("empty.gguf") && e.contains("truncated"), "{e}");
    bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
    let e = Gguf::parse(&bytes, "v1.gguf").unwrap_err().to_string();
    assert!(e.contains("version 1"), "{e}");
    bytes[4..8].copy_from_slice(&3u32.to_be_bytes());
    let e = Gguf::parse(&bytes, "be.gguf").unwrap_err().to_string();
    assert!(e.contains("big-endian"), "{e}");
    bytes[4..8].copy_from_slice(&9u32.to_le_bytes());
    let e = Gguf::parse(&bytes, "v9.gguf").unwrap_err().to_string();
    assert!(e.contains("version 9"), "{e}");
}

#[test]
fn gguf_corrupt_contents_are_clear_errors() {
    // A huge array count must fail before allocating.
    let mut b = GgufBuilder::new(None);
    let mut p = 8u32.to_le_bytes().to_vec();
    p.extend((u64::MAX / 2).to_le_bytes());
    b.kv(9, "tokenizer.ggml.tokens", &p);
    let e = Gguf::parse(&b.build(), "huge.gguf").unwrap_err().to_string();
    assert!(e.contains("tokenizer.ggml.tokens") && e.contains("items"), "{e}");

    let mut b = GgufBuilder::new(None);
    b.kv(13, "t.weird", &[0; 8]);
    let e = Gguf::parse(&b.build(), "type.gguf").unwrap_err().to_string();
    assert!(e.contains("t.weird") && e.contains("unknown value type 13"), "{e}");

    let mut b = GgufBuilder::new(None);
    b.kv(7, "t.bool", &[2]);
    let e = Gguf::parse(&b.build(), "bool.gguf").unwrap_err().to_string();
    assert!(e.contains("t.bool") && e.contains("0 or 1"), "{e}");

    let mut b = GgufBuilder::new(None);
    b.kv(0, "t.dup", &[1]);
    b.kv(0, "t.dup", &[2]);
    let e = Gguf::parse(&b.build(), "dup.gguf").unwrap_err().to_string();
    assert!(e.contains("'t.dup' appears twice"), "{e}");

    let mut b = GgufBuilder::new(Some(48));
    b.tensor("x", &[4], 0, f32_bytes(&[0.0; 4]));
    let e = Gguf::parse(&b.build(), "align.gguf").unwrap_err().to_string();
    assert!(e.contains("general.alignment") && e.contains("power of two"), "{e}");

    // Quantized rows must be whole blocks.
    let mut b = GgufBuilder::new(None);
    b.tensor("q", &[2, 48], 8, vec![0; 2 * 34 * 2]);
    let e = Gguf::parse(&b.build(), "block.gguf").unwrap_err().to_string();
    assert!(e.contains("'q'") && e.contains("Q8_0") && e.contains("48") && e.contains("32"), "{e}");

    // A misaligned offset (hand-edited into the info table).
    let mut b = GgufBuilder::new(None);
    b.tensor("x", &[4], 0, f32_bytes(&[0.0; 4]));
    let mut bytes = b.build();
    // Find the info's offset field: right after "x", n_dims, ne[0], type.
    let name_at = bytes.windows(9).position(|w| w == [1, 0, 0, 0, 0, 0, 0, 0, b'x']).unwrap();
    let off = name_at + 9 + 4 + 8 + 4;
    bytes[off..off + 8].copy_from_slice(&4u64.to_le_bytes());
    let e = Gguf::parse(&bytes, "offset.gguf").unwrap_err().to_string();
    assert!(e.contains("'x'") && e.contains("not a multiple of the alignment 32"), "{e}");

    // Too many dimensions.
    let mut b = GgufBuilder::new(None);
    b.tensor("five", &[1, 1, 1, 1, 2], 0, f32_bytes(&[0.0; 2]));
    let e = Gguf::parse(&b.build(), "dims.gguf").unwrap_err().to_string();
    assert!(e.contains("'five'") && e.contains("5 dimensions"), "{e}");
}

#[test]
fn gguf_other_types_parse_but_do_not_load() {
    let mut b = GgufBuilder::new(None);
    b.tensor("k4", &[2, 256], 12, vec![0; 2 * 144]); // Q4_K: 144-byte blocks of 256
    b.tensor("bf", &[3], 30, vec![0; 6]); // BF16
    b.tensor("new", &[4], 99, vec![0; 4]); // a type id from the future
    let bytes = b.build();
    let g = Gguf::parse(&bytes, "types.gguf").unwrap();
    assert_eq!(g.tensor_info("k4").unwrap().size, Some(288));
    let e = g.tensor("k4").unwrap_err().to_string();
    assert!(
        e.contains("types.gguf") && e.contains("'k4'") && e.contains("Q4_K") && e.contains("F32, F16, Q8_0 and Q4_1"),
        "{e}"
    );
    let e = g.tensor("bf").unwrap_err().to_string();
    assert!(e.contains("BF16"), "{e}");
    assert_eq!(g.tensor_info("new").unwrap().size, None);
    // An unknown type with an absurd offset still parses without overflow, and fails on load.
    let mut b = GgufBuilder::new(None);
    b.tensor("far", &[4], 99, vec![0; 4]);
    let mut far = b.build();
    let name_at = far.windows(11).position(|w| w == [3, 0, 0, 0, 0, 0, 0, 0, b'f', b'a', b'r']).unwrap();
    let off = name_at + 11 + 4 + 8 + 4;
    far[off..off + 8].copy_from_slice(&(u64::MAX - 31).to_le_bytes());
    match Gguf::parse(&far, "far.gguf") {
        Ok(g) => assert!(g.tensor("far").is_err()),
        Err(e) => assert!(e.to_string().contains("'far'"), "{e}"),
    }
    let e = g.tensor("new").unwrap_err().to_string();
    assert!(e.contains("'new'") && e.contains("unknown type id 99"), "{e}");
}

fn fixture(name: &str) -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (written by scripts/make_fixtures.py)", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn f32s(v: &Json) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn u32s(v: &Json) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn gguf_written_by_gguf_py() {
    // gguf-py (llama.cpp's Python writer) is the independent reference for the format.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf_py_sample.gguf");
    let bytes = std::fs::read(&path).unwrap();
    let want = fixture("gguf_py_sample.json");
    let g = Gguf::parse(&bytes, "gguf_py_sample.gguf").unwrap();
    assert_eq!(g.alignment(), want["alignment"].as_u64().unwrap() as usize);
    assert_eq!(g.str("general.architecture").unwrap(), "llama");
    for (key, m) in want["metadata"].as_object().unwrap() {
        let v = g.get(key).unwrap_or_else(|| panic!("missing {key}"));
        assert_eq!(v.type_name(), m["type"].as_str().unwrap(), "{key}");
        let exp = &m["value"];
        match v {
            Value::String(s) => assert_eq!(s, exp.as_str().unwrap(), "{key}"),
            Value::Bool(b) => assert_eq!(*b, exp.as_bool().unwrap(), "{key}"),
            Value::F32(_) | Value::F64(_) => assert_eq!(v.as_f64().unwrap(), exp.as_f64().unwrap(), "{key}"),
            _ if exp.is_u64() => assert_eq!(v.as_u64(), exp.as_u64(), "{key}"),
            _ => assert_eq!(v.as_i64(), exp.as_i64(), "{key}"),
        }
    }
    for (key, m) in want["arrays"].as_object().unwrap() {
        let a = g.get(key).and_then(|v| v.as_array()).unwrap_or_else(|| panic!("missing array {key}"));
        let exp = m["value"].as_array().unwrap();
        assert_eq!(a.len(), exp.len(), "{key}");
        for (x, e) in a.iter().zip(exp) {
            assert_eq!(x.type_name(), m["type"].as_str().unwrap(), "{key}");
            match x {
                Value::String(s) => assert_eq!(s, e.as_str().unwrap()),
                Value::Bool(b) => assert_eq!(*b, e.as_bool().unwrap()),
                _ => assert_eq!(x.as_f64().unwrap(), e.as_f64().unwrap()),
            }
        }
    }
    let nested = g.get(want["nested"]["key"].as_str().unwrap()).unwrap();
    let as_json: Vec<Vec<i64>> = nested
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect())
        .collect();
    let exp: Vec<Vec<i64>> = serde_json::from_value(want["nested"]["value"].clone()).unwrap();
    assert_eq!(as_json, exp);
    for t in want["tensors"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let got = g.tensor(name).unwrap();
        let shape: Vec<usize> = t["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        assert_eq!(got.shape, shape, "{name}: numpy's shape is webformer's order");
        assert_eq!(g.tensor_info(name).unwrap().ggml_type.name(), t["type"].as_str(), "{name}");
        // Values: gguf-py's dequantization, rounded to 7 significant digits in the fixture, so
        // a relative tolerance of 1e-6 (plus 1e-7 absolute for zeros) is all the slack needed.
        common::assert_close(name, &got.data.to_f32(), &f32s(&t["values"]), 1e-6, 1e-7);
    }
}

// ---------------------------------------------------------------------------------------------
// Real models.

fn read(p: &std::path::Path) -> Vec<u8> {
    webformer::model::read_file(p).unwrap()
}

#[test]
fn smollm2_metadata_and_tensors() {
    let Some(paths) = models() else { return };
    let bytes = read(&paths.smollm2_gguf);
    let g = Gguf::parse(&bytes, "SmolLM2-135M-Instruct.Q4_1.gguf").unwrap();
    let cfg = LlamaConfig::from_gguf(&g).unwrap();
    assert_eq!((cfg.n_layers, cfg.hidden, cfg.n_heads, cfg.n_kv_heads), (30, 576, 9, 3));
    assert_eq!((cfg.head_dim, cfg.rope_dim, cfg.ffn, cfg.vocab, cfg.context_length), (64, 64, 1536, 49152, 8192));
    assert_eq!(cfg.rope_theta, 100000.0);
    assert!((cfg.rms_eps - 1e-5).abs() < 1e-9);
    assert_eq!((cfg.bos_id, cfg.eos_id), (Some(1), Some(2)));
    assert!(cfg.tied_embeddings, "SmolLM2 has no output.weight: the LM head is token_embd");
    assert!(cfg.chat_template.as_deref().unwrap().contains("<|im_start|>"));

    // Tensor types and samples against gguf-py's reader and dequantization.
    let want = &fixture("smollm2.json")["gguf_tensors"];
    assert_eq!(g.tensors().len(), want["count"].as_u64().unwrap() as usize);
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for t in g.tensors() {
        *counts.entry(t.ggml_type.to_string()).or_default() += 1;
    }
    let want_counts: std::collections::BTreeMap<String, u64> = serde_json::from_value(want["types"].clone()).unwrap();
    assert_eq!(counts, want_counts);
    for (ty, names) in want["other_types"].as_object().unwrap() {
        for n in names.as_array().unwrap() {
            assert_eq!(g.tensor_info(n.as_str().unwrap()).unwrap().ggml_type.to_string(), *ty);
        }
    }
    assert!(g.tensors().iter().filter(|t| t.ggml_type == GgmlType::F32).all(|t| t.name.ends_with("norm.weight")));
    assert_eq!(want["has_output_weight"].as_bool(), Some(false));
    for s in want["samples"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let t = g.tensor(name).unwrap();
        let shape: Vec<usize> = serde_json::from_value(s["shape"].clone()).unwrap();
        assert_eq!(t.shape, shape, "{name}");
        assert_eq!(t.data.dtype().to_string().to_uppercase(), s["type"].as_str().unwrap(), "{name}");
        let v = t.data.to_f32();
        let cols = *shape.last().unwrap();
        // Dequantization is the same arithmetic in both (d·q + m in f32), so the tolerance only
        // covers the fixture's 7-digit rounding; the sum (f64 over up to 28M values) allows for
        // summation order.
        common::assert_close(&format!("{name} first row"), &v[..16], &f32s(&s["first_row_first16"]), 1e-6, 1e-7);
        common::assert_close(
            &format!("{name} last row"),
            &v[v.len() - cols..][..16],
            &f32s(&s["last_row_first16"]),
            1e-6,
            1e-7,
        );
        let sum: f64 = v.iter().map(|&x| x as f64).sum();
        let want_sum = s["sum"].as_f64().unwrap();
        assert!((sum - want_sum).abs() <= 1e-6 * v.len() as f64, "{name}: sum {sum} vs gguf-py {want_sum}");
    }
    // Quantized weights stay blocks for the GPU kernels.
    assert!(
        matches!(g.tensor("blk.0.ffn_up.weight").unwrap().data, HostData::Quant { dtype: DType::Q4_1, len, .. } if len == 1536 * 576)
    );
    assert!(matches!(g.tensor("token_embd.weight").unwrap().data, HostData::Quant { dtype: DType::Q8_0, .. }));
}

#[test]
fn smollm2_tensors_over_many_rows_match_gguf_py() {
    // tests/fixtures/smollm2_gguf_rows.json: per-row checksums from gguf-py's dequantization,
    // over every row of tensors up to 600 rows and 64 spread rows of larger ones. The weighted
    // sum uses weights without a period of 16 or 32, so a value moved within or between blocks
    // changes it. Both sides dequantize in f32 the same way (d·q + m), so the values are equal
    // and the f64 sums differ only by summation order: 1e-12 of the row's sum of |x| (an error
    // in one element of one block is many orders larger).
    let Some(paths) = models() else { return };
    let bytes = read(&paths.smollm2_gguf);
    let g = Gguf::parse(&bytes, "SmolLM2-135M-Instruct.Q4_1.gguf").unwrap();
    let want = fixture("smollm2_gguf_rows.json");
    let mut rows_checked = 0;
    for t in want["tensors"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let tensor = g.tensor(name).unwrap();
        let shape: Vec<usize> = serde_json::from_value(t["shape"].clone()).unwrap();
        assert_eq!(tensor.shape, shape, "{name}");
        assert_eq!(tensor.data.dtype().to_string().to_uppercase(), t["type"].as_str().unwrap(), "{name}");
        let v = tensor.data.to_f32();
        let cols = *shape.last().unwrap();
        let weights: Vec<f64> = (0..cols).map(|j| ((j * 37) % 101) as f64 / 50.5 - 1.0).collect();
        let col = |k: &str| -> Vec<f64> { t[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
        let (sums, wsums, abs) = (col("sum"), col("weighted_sum"), col("abs_sum"));
        for (i, r) in t["rows"].as_array().unwrap().iter().enumerate() {
            let r = r.as_u64().unwrap() as usize;
            let row = &v[r * cols..][..cols];
            let sum: f64 = row.iter().map(|&x| x as f64).sum();
            let wsum: f64 = row.iter().zip(&weights).map(|(&x, w)| x as f64 * w).sum();
            let tol = 1e-12 * abs[i] + 1e-30;
            assert!((sum - sums[i]).abs() <= tol, "{name} row {r}: sum {sum} vs gguf-py {}", sums[i]);
            assert!((wsum - wsums[i]).abs() <= tol, "{name} row {r}: weighted sum {wsum} vs gguf-py {}", wsums[i]);
            rows_checked += 1;
        }
    }
    assert!(rows_checked > 1500, "only {rows_checked} rows checked");
}

#[test]
fn smollm2_tokenizer_matches_transformers() {
    let Some(paths) = models() else { return };
    let bytes = read(&paths.smollm2_gguf);
    let g = Gguf::parse(&bytes, "SmolLM2-135M-Instruct.Q4_1.gguf").unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let want = fixture("tokenizer_smollm2.json");
    assert_eq!(tok.vocab_size(), want["vocab_size"].as_u64().unwrap() as usize);
    assert_eq!(tok.bos_id(), want["bos_token_id"].as_u64().map(|v| v as u32));
    assert_eq!(tok.eos_id(), want["eos_token_id"].as_u64().map(|v| v as u32));
    assert_eq!(tok.special_tokens().len(), 17, "the 17 control tokens of SmolLM2");
    let mut failures = Vec::new();
    for case in want["strings"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        // transformers' GGUF converter ignores tokenizer.ggml.pre = "smollm" (a plain GPT-2
        // split); llama.cpp and SmolLM2's own tokenizer.json split every number character off
        // first, as we do. The two differ only on non-ASCII numerals, where the fixture also has
        // the ids with the smollm split ("ids_digits", same HF tokenizer, that pre-tokenizer).
        let want_ids = u32s(case.get("ids_digits").unwrap_or(&case["ids"]));
        let ids = tok.encode(text, true).unwrap();
        if ids != want_ids {
            failures.push(format!("{text:?}: ours {ids:?}, transformers {want_ids:?}"));
        }
        let hf_ids = u32s(&case["ids"]);
        let decoded = tok.decode(&hf_ids, false).unwrap();
        if decoded != case["decoded"].as_str().unwrap() {
            failures.push(format!("decode {hf_ids:?}: ours {decoded:?}, transformers {:?}", case["decoded"]));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert!(want["strings"].as_array().unwrap().len() >= 20);
}

#[test]
fn smollm2_chat_template_matches_transformers() {
    let Some(paths) = models() else { return };
    let bytes = read(&paths.smollm2_gguf);
    let g = Gguf::parse(&bytes, "SmolLM2-135M-Instruct.Q4_1.gguf").unwrap();
    let cfg = LlamaConfig::from_gguf(&g).unwrap();
    let chat = ChatTemplate::from_jinja(cfg.chat_template.as_deref().unwrap(), g.file()).unwrap();
    assert_eq!(
        chat.default_system.as_deref(),
        Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    );
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let want = fixture("tokenizer_smollm2.json");
    for case in want["chat"].as_array().unwrap() {
        let messages: Vec<Message> = serde_json::from_value(case["messages"].clone()).unwrap();
        let text = chat.render(&messages, case["add_generation_prompt"].as_bool().unwrap());
        assert_eq!(text, case["text"].as_str().unwrap(), "apply_chat_template({messages:?})");
        assert_eq!(tok.encode(&text, true).unwrap(), u32s(&case["ids"]), "ids of {text:?}");
    }
    // A template that is not ChatML is refused, naming the file.
    let e = ChatTemplate::from_jinja("{{ bos_token }}[INST] {{ messages[0]['content'] }} [/INST]", "mistral.gguf")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("mistral.gguf:") && e.contains("not ChatML"), "{e}");
}

#[test]
fn minilm_files_tokenizer_and_configs() {
    let Some(paths) = models() else { return };
    let dir = &paths.minilm_dir;
    let cfg = BertConfig::from_json(&read(&dir.join("config.json")), "config.json").unwrap();
    assert_eq!(
        (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size),
        (6, 384, 12, 1536)
    );
    assert_eq!((cfg.vocab_size, cfg.max_position_embeddings, cfg.type_vocab_size, cfg.head_dim()), (30522, 512, 2, 32));
    assert_eq!(cfg.hidden_act, "gelu");
    assert_eq!(cfg.layer_norm_eps, 1e-12);
    let sc = SentenceConfig::from_json(
        &read(&dir.join("sentence_bert_config.json")),
        &read(&dir.join("1_Pooling/config.json")),
        Some(&read(&dir.join("modules.json"))),
        &dir.display().to_string(),
    )
    .unwrap();
    assert_eq!(sc, SentenceConfig { max_seq_length: 256, pooling: Pooling::Mean, normalize: true });
    let want_minilm = fixture("minilm.json");
    assert_eq!(want_minilm["max_seq_length"].as_u64(), Some(256));

    // safetensors: names, dtypes and values against the safetensors Python reader.
    let st_bytes = read(&dir.join("model.safetensors"));
    let st = Safetensors::parse(&st_bytes, "model.safetensors").unwrap();
    let want = &want_minilm["safetensors"];
    let names: Vec<String> = serde_json::from_value(want["names"].clone()).unwrap();
    assert_eq!(st.names(), names.iter().map(String::as_str).collect::<Vec<_>>());
    for s in want["samples"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let t = st.tensor(name).unwrap();
        let shape: Vec<usize> = serde_json::from_value(s["shape"].clone()).unwrap();
        assert_eq!(t.shape, shape, "{name}");
        let v = t.data.as_f32(name).unwrap();
        let cols = *shape.last().unwrap();
        // The same f32 values; the fixture rounds to 7 significant digits.
        common::assert_close(name, &v[..16], &f32s(&s["first_row_first16"]), 1e-6, 1e-7);
        common::assert_close(name, &v[v.len() - cols..][..16], &f32s(&s["last_row_first16"]), 1e-6, 1e-7);
    }
    let e = st.tensor("embeddings.position_ids").unwrap_err().to_string();
    assert!(e.contains("model.safetensors") && e.contains("position_ids") && e.contains("I64"), "{e}");

    // WordPiece via tokenizer.json: ids as transformers gives them, for every fixture string.
    let mut tok = Tokenizer::from_json(&read(&dir.join("tokenizer.json")), "tokenizer.json").unwrap();
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(101), Some(102)));
    let want = fixture("tokenizer_minilm.json");
    let mut failures = Vec::new();
    for case in want["strings"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ids = tok.encode(text, true).unwrap();
        if ids != u32s(&case["ids"]) {
            failures.push(format!("{text:?}: ours {ids:?}, transformers {:?}", case["ids"]));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    // Truncated as sentence-transformers does (max_seq_length, [CLS] and [SEP] kept).
    tok.truncate(sc.max_seq_length).unwrap();
    for s in want_minilm["sentences"].as_array().unwrap() {
        assert_eq!(tok.encode(s["text"].as_str().unwrap(), true).unwrap(), u32s(&s["ids"]), "{}", s["text"]);
    }
}

#[test]
fn model_file_errors_name_the_file() {
    let e = Safetensors::parse(b"\x10\0\0\0\0\0\0\0{not json}", "bad.safetensors").unwrap_err().to_string();
    assert!(e.starts_with("bad.safetensors: not a readable safetensors file"), "{e}");
    let e = BertConfig::from_json(b"{\"hidden_size\": 10}", "config.json").unwrap_err().to_string();
    assert!(e.starts_with("config.json: not a BERT config.json"), "{e}");
    let e = BertConfig::from_json(
        br#"{"vocab_size": 10, "hidden_size": 10, "num_hidden_layers": 1, "num_attention_heads": 3, "intermediate_size": 4, "max_position_embeddings": 8}"#,
        "config.json",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("num_attention_heads 3 does not divide hidden_size 10"), "{e}");
    let e = Tokenizer::from_json(b"{}", "tokenizer.json").unwrap_err().to_string();
    assert!(e.starts_with("tokenizer.json: not a readable tokenizer.json"), "{e}");
    let e = webformer::model::read_file("/nonexistent/model.gguf").unwrap_err().to_string();
    assert!(e.starts_with("/nonexistent/model.gguf: cannot be read"), "{e}");
    // A GGUF without a tokenizer, or with a tokenizer type we do not build.
    let mut b = GgufBuilder::new(None);
    b.kv_str("general.architecture", "llama");
    let bytes = b.build();
    let g = Gguf::parse(&bytes, "notok.gguf").unwrap();
    let e = Tokenizer::from_gguf(&g).unwrap_err().to_string();
    assert!(e.contains("notok.gguf") && e.contains("tokenizer.ggml.model"), "{e}");
    let e = LlamaConfig::from_gguf(&g).unwrap_err().to_string();
    assert!(e.contains("llama.embedding_length") && e.contains("missing"), "{e}");
    let mut b = GgufBuilder::new(None);
    b.kv_str("tokenizer.ggml.model", "llama");
    let bytes = b.build();
    let e = Tokenizer::from_gguf(&Gguf::parse(&bytes, "spm.gguf").unwrap()).unwrap_err().to_string();
    assert!(e.contains("'llama'") && e.contains("gpt2"), "{e}");
}

/// A tiny byte-level BPE vocabulary in a GGUF: the bytes we use, three merges, control
/// tokens <s> and </s> (BOS/EOS, add_bos on) and a user-defined <|im_start|>.
fn tiny_bpe(pre: &str) -> Vec<u8> {
    let mut b = GgufBuilder::new(None);
    b.kv_str("tokenizer.ggml.model", "gpt2");
    b.kv_str("tokenizer.ggml.pre", pre);
    let tokens = ["<s>", "</s>", "h", "i", "Ġ", "1", "2", "hi", "Ġhi", "<|im_start|>", "12"];
    let mut p = 8u32.to_le_bytes().to_vec();
    p.extend((tokens.len() as u64).to_le_bytes());
    for t in tokens {
        gstr(&mut p, t);
    }
    b.kv(9, "tokenizer.ggml.tokens", &p);
    let mut p = 8u32.to_le_bytes().to_vec();
    p.extend(3u64.to_le_bytes());
    for m in ["h i", "Ġ hi", "1 2"] {
        gstr(&mut p, m);
    }
    b.kv(9, "tokenizer.ggml.merges", &p);
    let types = [3i32, 3, 1, 1, 1, 1, 1, 1, 1, 4, 1];
    let mut p = 5u32.to_le_bytes().to_vec();
    p.extend((types.len() as u64).to_le_bytes());
    for t in types {
        p.extend(t.to_le_bytes());
    }
    b.kv(9, "tokenizer.ggml.token_type", &p);
    b.kv(4, "tokenizer.ggml.bos_token_id", &0u32.to_le_bytes());
    b.kv(4, "tokenizer.ggml.eos_token_id", &1u32.to_le_bytes());
    b.kv(7, "tokenizer.ggml.add_bos_token", &[1]);
    b.build()
}

#[test]
fn gguf_tokenizer_from_synthetic_vocab() {
    // Merges, control and user-defined tokens, add_bos and the pre-tokenizer choice, without
    // the real model.
    let bytes = tiny_bpe("smollm");
    let tok = Tokenizer::from_gguf(&Gguf::parse(&bytes, "tiny.gguf").unwrap()).unwrap();
    // "hi hi" -> hi, Ġhi; BOS first.
    assert_eq!(tok.encode("hi hi", true).unwrap(), vec![0, 7, 8]);
    assert_eq!(tok.encode("hi hi", false).unwrap(), vec![7, 8]);
    // The smollm split keeps digits apart although a "1 2" merge exists; GPT-2's does not.
    assert_eq!(tok.encode("12", false).unwrap(), vec![5, 6]);
    let bytes2 = tiny_bpe("gpt2");
    let tok2 = Tokenizer::from_gguf(&Gguf::parse(&bytes2, "tiny-gpt2.gguf").unwrap()).unwrap();
    assert_eq!(tok2.encode("12", false).unwrap(), vec![10]);
    assert_eq!(
        tok.encode("</s>hi<|im_start|>", false).unwrap(),
        vec![1, 7, 9],
        "control and user-defined tokens match whole"
    );
    assert_eq!(tok.decode(&[0, 7, 8, 1], true).unwrap(), "hi hi");
    assert_eq!(tok.decode(&[0, 7, 8, 1], false).unwrap(), "<s>hi hi</s>");
    let e = tok.decode(&[11], false).unwrap_err().to_string();
    assert!(e.contains("token id 11") && e.contains("11 tokens"), "{e}");
    // Unknown pre-tokenizers are refused rather than guessed.
    let bytes3 = tiny_bpe("qwen2");
    let e = Tokenizer::from_gguf(&Gguf::parse(&bytes3, "qwen.gguf").unwrap()).unwrap_err().to_string();
    assert!(e.contains("'qwen2'") && e.contains("does not implement"), "{e}");
}
