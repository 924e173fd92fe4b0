//! GGUF reader (format versions 2 and 3, little-endian), as ggml defines it in
//! `ggml/docs/gguf.md` and `ggml/src/gguf.cpp`:
//!
//! ```text
//! u32 magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//! metadata_kv_count x { string key | u32 value_type | value }
//! tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//! padding to `general.alignment` (default 32) | tensor data (each offset relative to here)
//! string = u64 length + UTF-8 bytes; array = u32 element type + u64 count + elements
//! ```
//!
//! Why hand-written: no well-kept Rust crate reads GGUF from a byte slice without also pulling
//! in a tensor library (candle's reader wants `Read + Seek` and candle's own types); the format
//! is small, and owning the parser lets every error name the file, the key or tensor and the
//! byte offset. It reads from `&[u8]`, so the same code runs in wasm (bytes from `fetch`) and
//! natively (a read or memory-mapped file), and it validates every length against the bytes
//! that are there before allocating, so a truncated or hostile file gives an error, never a
//! panic or a huge allocation.
//!
//! Shapes come out in webformer's order, outermost first: GGUF lists `ne[0]` (the fastest,
//! innermost dimension) first, so a weight with `ne = [in, out]` is shape `[out, in]`, the
//! `[out, in]` layout `Graph::matmul_t` takes. F32 and F16 tensors load as values; Q8_0 and
//! Q4_1 stay as GGUF blocks (`HostData::Quant`) for the quantized kernels; any other GGUF type
//! is an error naming the tensor and the type.
//!
//! ```
//! # fn demo(bytes: &[u8]) -> webformer::Result<()> {
//! use webformer::model::Gguf;
//! let gguf = Gguf::parse(bytes, "model.gguf")?;
//! let layers = gguf.u32("llama.block_count")?;
//! let emb = gguf.tensor("token_embd.weight")?;   // shape [vocab, hidden]
//! # Ok(()) }
//! ```

use std::collections::HashMap;

use super::HostTensor;
use crate::error::{Error, Result};
use crate::tensor::{DType, HostData, QK};

/// "GGUF" read as a little-endian u32.
const MAGIC: &[u8; 4] = b"GGUF";
/// Default data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: usize = 32;
/// ggml tensors have at most 4 dimensions (GGML_MAX_DIMS).
const MAX_DIMS: u32 = 4;
/// Arrays may nest; deeper than this is treated as a broken file (protects the stack).
const MAX_ARRAY_DEPTH: usize = 8;

/// One metadata value, in the type the file stores it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    /// Elements all of one GGUF type (the file states it once per array).
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    /// The GGUF name of the value's type (`uint32`, `string`, `array`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "uint8",
            Value::I8(_) => "int8",
            Value::U16(_) => "uint16",
            Value::I16(_) => "int16",
            Value::U32(_) => "uint32",
            Value::I32(_) => "int32",
            Value::F32(_) => "float32",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::U64(_) => "uint64",
            Value::I64(_) => "int64",
            Value::F64(_) => "float64",
        }
    }

    /// Any integer type as i128 (every GGUF integer fits), else None.
    fn as_int(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v as i128,
            Value::I8(v) => v as i128,
            Value::U16(v) => v as i128,
            Value::I16(v) => v as i128,
            Value::U32(v) => v as i128,
            Value::I32(v) => v as i128,
            Value::U64(v) => v as i128,
            Value::I64(v) => v as i128,
            _ => return None,
        })
    }

    /// Any integer type that fits in u64 (converters differ in which integer type they write).
    pub fn as_u64(&self) -> Option<u64> {
        self.as_int().and_then(|v| u64::try_from(v).ok())
    }

    /// Any integer type that fits in i64.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_int().and_then(|v| i64::try_from(v).ok())
    }

    /// Either float type, or an integer, as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_int().map(|v| v as f64),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// A ggml tensor type id (`enum ggml_type`). Kept as the number so files with types newer
/// than this reader still parse; only loading such a tensor fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GgmlType(pub u32);

impl GgmlType {
    pub const F32: GgmlType = GgmlType(0);
    pub const F16: GgmlType = GgmlType(1);
    pub const Q4_1: GgmlType = GgmlType(3);
    pub const Q8_0: GgmlType = GgmlType(8);

    /// (name, elements per block, bytes per block) from ggml's type traits, for every type
    /// ggml defines (ids 4, 5 and 31-33, 36-38 are retired or unused and read as unknown).
    fn traits(self) -> Option<(&'static str, usize, usize)> {
        Some(match self.0 {
            0 => ("F32", 1, 4),
            1 => ("F16", 1, 2),
            2 => ("Q4_0", 32, 18),
            3 => ("Q4_1", 32, 20),
            6 => ("Q5_0", 32, 22),
            7 => ("Q5_1", 32, 24),
            8 => ("Q8_0", 32, 34),
            9 => ("Q8_1", 32, 36),
            10 => ("Q2_K", 256, 84),
            11 => ("Q3_K", 256, 110),
            12 => ("Q4_K", 256, 144),
            13 => ("Q5_K", 256, 176),
            14 => ("Q6_K", 256, 210),
            15 => ("Q8_K", 256, 292),
            16 => ("IQ2_XXS", 256, 66),
            17 => ("IQ2_XS", 256, 74),
            18 => ("IQ3_XXS", 256, 98),
            19 => ("IQ1_S", 256, 50),
            20 => ("IQ4_NL", 32, 18),
            21 => ("IQ3_S", 256, 110),
            22 => ("IQ2_S", 256, 82),
            23 => ("IQ4_XS", 256, 136),
            24 => ("I8", 1, 1),
            25 => ("I16", 1, 2),
            26 => ("I32", 1, 4),
            27 => ("I64", 1, 8),
            28 => ("F64", 1, 8),
            29 => ("IQ1_M", 256, 56),
            30 => ("BF16", 1, 2),
            34 => ("TQ1_0", 256, 54),
            35 => ("TQ2_0", 256, 66),
            39 => ("MXFP4", 32, 17),
            _ => return None,
        })
    }

    /// ggml's name for the type (`Q4_1`), or None for an id this reader does not know.
    pub fn name(self) -> Option<&'static str> {
        self.traits().map(|t| t.0)
    }

    /// Bytes of a tensor of `n` elements whose innermost dimension is `ne0`, or None when
    /// the type is unknown or `ne0` is not a whole number of blocks.
    pub fn bytes_for(self, ne0: u64, n: u64) -> Option<u64> {
        let (_, block, size) = self.traits()?;
        if !ne0.is_multiple_of(block as u64) {
            return None;
        }
        (n / block as u64).checked_mul(size as u64)
    }

    /// The webformer dtype this type loads as, if it is one webformer keeps.
    pub fn dtype(self) -> Option<DType> {
        match self {
            GgmlType::F32 => Some(DType::F32),
            GgmlType::F16 => Some(DType::F16),
            GgmlType::Q8_0 => Some(DType::Q8_0),
            GgmlType::Q4_1 => Some(DType::Q4_1),
            _ => None,
        }
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "unknown type id {}", self.0),
        }
    }
}

/// Where a tensor is and what it holds, from the tensor-info table.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// webformer order (outermost first): the reverse of GGUF's `ne`.
    pub shape: Vec<usize>,
    pub ggml_type: GgmlType,
    /// Byte offset of the data from the start of the file (already validated to lie inside
    /// it for every type this reader knows).
    pub offset: usize,
    /// Byte size of the data; None for a type this reader does not know.
    pub size: Option<usize>,
}

impl TensorInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A parsed GGUF file: metadata and tensor infos, with tensor data read on request from the
/// borrowed bytes (so a memory-mapped file is never copied whole).
pub struct Gguf<'a> {
    file: String,
    bytes: &'a [u8],
    version: u32,
    alignment: usize,
    data_offset: usize,
    metadata: Vec<(String, Value)>,
    meta_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

/// A bounds-checked little-endian cursor. Every read says what it was reading, so truncation
/// errors name the field.
struct Cursor<'a, 'f> {
    b: &'a [u8],
    pos: usize,
    file: &'f str,
}

impl<'a> Cursor<'a, '_> {
    fn err(&self, detail: String) -> Error {
        Error::Model { file: self.file.to_string(), detail }
    }

    fn take(&mut self, n: usize, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        match end {
            Some(end) => {
                let s = &self.b[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err(format!(
                "the file is truncated: {} at byte {} needs {n} bytes but the file has only {} bytes",
                what(),
                self.pos,
                self.b.len()
            ))),
        }
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A u64 count of items of at least `min_item_bytes` each, checked against the bytes left
    /// so a corrupt count cannot make us allocate gigabytes.
    fn count(&mut self, min_item_bytes: usize, what: &dyn Fn() -> String) -> Result<usize> {
        let at = self.pos;
        let n = self.u64(what)?;
        let left = (self.b.len() - self.pos) as u64;
        if n.saturating_mul(min_item_bytes as u64) > left {
            return Err(self.err(format!(
                "the file is truncated or corrupt: {} at byte {at} says {n} items, but only {left} bytes follow",
                what()
            )));
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let n = self.count(1, what)?;
        let at = self.pos;
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec()).map_err(|e| self.err(format!("{} at byte {at} is not valid UTF-8 ({e})", what())))
    }

    fn value(&mut self, ty: u32, depth: usize, what: &dyn Fn() -> String) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(self.array::<1>(what)?[0]),
            1 => Value::I8(self.array::<1>(what)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            4 => Value::U32(self.u32(what)?),
            5 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            7 => {
                let at = self.pos;
                match self.array::<1>(what)?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => {
                        return Err(
                            self.err(format!("{} at byte {at} is a bool of value {b}; GGUF bools are 0 or 1", what()))
                        )
                    }
                }
            }
            8 => Value::String(self.string(what)?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.err(format!(
                        "{} nests arrays deeper than {MAX_ARRAY_DEPTH} levels; the file is corrupt",
                        what()
                    )));
                }
                let at = self.pos;
                let ety = self.u32(what)?;
                let min = value_min_bytes(ety).ok_or_else(|| {
                    self.err(format!(
                        "{} at byte {at} is an array of unknown value type {ety} (GGUF types are 0-12)",
                        what()
                    ))
                })?;
                let n = self.count(min, what)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.value(ety, depth + 1, what)?);
                }
                Value::Array(v)
            }
            10 => Value::U64(self.u64(what)?),
            11 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            other => return Err(self.err(format!("{} has unknown value type {other} (GGUF types are 0-12)", what()))),
        })
    }
}

/// Smallest encoding of one value of GGUF type `ty` (strings and arrays: their u64 length).
fn value_min_bytes(ty: u32) -> Option<usize> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10 | 11 | 12 => 8,
        9 => 12,
        _ => return None,
    })
}

impl<'a> Gguf<'a> {
    /// Parses the header, metadata and tensor infos of a GGUF file and validates that every
    /// tensor of a known type lies inside `bytes`. `file` is only used in error messages.
    pub fn parse(bytes: &'a [u8], file: &str) -> Result<Self> {
        let mut c = Cursor { b: bytes, pos: 0, file };
        let err = |detail: String| Error::Model { file: file.to_string(), detail };
        let magic = c.take(4, &|| "the magic number".into())?;
        if magic != MAGIC {
            return Err(err(format!(
                "not a GGUF file: it starts with bytes {magic:02x?}, a GGUF file starts with \"GGUF\" (47 47 55 46)"
            )));
        }
        let version = c.u32(&|| "the version".into())?;
        match version {
            2 | 3 => {}
            1 => return Err(err("GGUF version 1 (32-bit counts, from 2023) is not supported; webformer reads versions 2 and 3 (re-convert the model with a current llama.cpp)".into())),
            v if v.swap_bytes() == 2 || v.swap_bytes() == 3 => {
                return Err(err(format!("this is a big-endian GGUF (version {} byte-swapped); webformer reads little-endian GGUF files only", v.swap_bytes())))
            }
            v => return Err(err(format!("GGUF version {v} is not supported; webformer reads versions 2 and 3"))),
        }
        // Minimum tensor info: empty name (8) + n_dims (4) + type (4) + offset (8).
        let n_tensors = c.count(24, &|| "the tensor count".into())?;
        // Minimum key/value: empty key (8) + type (4) + a 1-byte value.
        let n_kv = c.count(13, &|| "the metadata count".into())?;

        let mut metadata = Vec::with_capacity(n_kv);
        let mut meta_index = HashMap::with_capacity(n_kv);
        for i in 0..n_kv {
            let key = c.string(&|| format!("the key of metadata entry {i}"))?;
            let what = || format!("metadata key '{key}'");
            let ty = c.u32(&what)?;
            let value = c.value(ty, 0, &what)?;
            if meta_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(err(format!("metadata key '{key}' appears twice")));
            }
            metadata.push((key, value));
        }

        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some((_, v)) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 30 => a as usize,
                _ => {
                    return Err(err(format!(
                        "general.alignment is {v:?}; it must be a power of two (default {DEFAULT_ALIGNMENT})"
                    )))
                }
            },
        };

        let mut infos = Vec::with_capacity(n_tensors);
        for i in 0..n_tensors {
            let name = c.string(&|| format!("the name of tensor {i}"))?;
            let what = || format!("the info of tensor '{name}'");
            let n_dims = c.u32(&what)?;
            if n_dims > MAX_DIMS {
                return Err(err(format!(
                    "tensor '{name}' has {n_dims} dimensions; GGUF tensors have at most {MAX_DIMS}"
                )));
            }
            let mut ne = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                ne.push(c.u64(&what)?);
            }
            let ggml_type = GgmlType(c.u32(&what)?);
            let offset = c.u64(&what)?;
            infos.push((name, ne, ggml_type, offset));
        }
        // The data section starts at the next multiple of the alignment.
        let data_offset = c.pos.div_ceil(alignment) * alignment;

        let mut tensors = Vec::with_capacity(n_tensors);
        let mut tensor_index = HashMap::with_capacity(n_tensors);
        for (name, ne, ggml_type, rel) in infos {
            let n = ne.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
            let shape: Option<Vec<usize>> = ne.iter().rev().map(|&d| usize::try_from(d).ok()).collect();
            let (Some(n), Some(shape)) = (n.filter(|&n| usize::try_from(n).is_ok()), shape) else {
                return Err(err(format!("tensor '{name}' has dimensions {ne:?}, too many elements to address")));
            };
            if !rel.is_multiple_of(alignment as u64) {
                return Err(err(format!(
                    "tensor '{name}' starts at data offset {rel}, which is not a multiple of the alignment {alignment}"
                )));
            }
            let ne0 = ne.first().copied().unwrap_or(1);
            let size = match ggml_type.traits() {
                None => None,
                Some((tname, block, _)) => {
                    if !ne0.is_multiple_of(block as u64) {
                        return Err(err(format!("tensor '{name}' of type {tname} has an innermost dimension of {ne0}, not a multiple of its block size {block}")));
                    }
                    let Some(size) = ggml_type.bytes_for(ne0, n).filter(|&s| usize::try_from(s).is_ok()) else {
                        return Err(err(format!(
                            "tensor '{name}' ({tname}, dimensions {ne:?}) is too large: its byte size overflows 64 bits"
                        )));
                    };
                    let end = (data_offset as u64).checked_add(rel).and_then(|s| s.checked_add(size));
                    match end {
                        Some(end) if end <= bytes.len() as u64 => {}
                        _ => {
                            return Err(err(format!(
                                "the file is truncated: tensor '{name}' ({tname}, shape {shape:?}) needs bytes {}..{} but the file has only {} bytes",
                                data_offset as u64 + rel,
                                (data_offset as u64).saturating_add(rel).saturating_add(size),
                                bytes.len()
                            )))
                        }
                    }
                    Some(size as usize)
                }
            };
            // Known types were checked to end inside the file above; this guards unknown ones.
            let Some(offset) = usize::try_from(rel).ok().and_then(|r| data_offset.checked_add(r)) else {
                return Err(err(format!(
                    "tensor '{name}' has data offset {rel}, beyond any file this machine can address"
                )));
            };
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return Err(err(format!("tensor '{name}' appears twice")));
            }
            tensors.push(TensorInfo { name, shape, ggml_type, offset, size });
        }

        Ok(Self {
            file: file.to_string(),
            bytes,
            version,
            alignment,
            data_offset,
            metadata,
            meta_index,
            tensors,
            tensor_index,
        })
    }

    fn err(&self, detail: String) -> Error {
        Error::Model { file: self.file.clone(), detail }
    }

    /// The name given to `parse`, as used in error messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Data alignment in bytes (`general.alignment`, default 32).
    pub fn alignment(&self) -> usize {
        self.alignment
    }

    /// Byte offset of the data section from the start of the file.
    pub fn data_offset(&self) -> usize {
        self.data_offset
    }

    /// All metadata in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// A metadata value, if the key is present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn require(&self, key: &str) -> Result<&Value> {
        self.get(key).ok_or_else(|| self.err(format!("metadata key '{key}' is missing")))
    }

    fn wrong(&self, key: &str, v: &Value, expected: &str) -> Error {
        let shown = match v {
            Value::Array(a) => format!("an array of {} values", a.len()),
            Value::String(s) => format!("the string {:?}", s.chars().take(60).collect::<String>()),
            other => format!("{other:?}"),
        };
        self.err(format!("metadata key '{key}' should be {expected} but is {} {shown}", v.type_name()))
    }

    /// An integer (of any GGUF integer type) that fits in u32.
    pub fn u32(&self, key: &str) -> Result<u32> {
        let v = self.require(key)?;
        v.as_u64().and_then(|x| u32::try_from(x).ok()).ok_or_else(|| self.wrong(key, v, "an integer that fits in u32"))
    }

    /// Like [`Gguf::u32`], but None when the key is absent.
    pub fn u32_opt(&self, key: &str) -> Result<Option<u32>> {
        if self.get(key).is_none() {
            Ok(None)
        } else {
            self.u32(key).map(Some)
        }
    }

    /// A number of any GGUF numeric type, as f64.
    pub fn f64(&self, key: &str) -> Result<f64> {
        let v = self.require(key)?;
        v.as_f64().ok_or_else(|| self.wrong(key, v, "a number"))
    }

    /// Like [`Gguf::f64`], but None when the key is absent.
    pub fn f64_opt(&self, key: &str) -> Result<Option<f64>> {
        if self.get(key).is_none() {
            Ok(None)
        } else {
            self.f64(key).map(Some)
        }
    }

    pub fn bool_opt(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_bool().map(Some).ok_or_else(|| self.wrong(key, v, "a bool")),
        }
    }

    pub fn str(&self, key: &str) -> Result<&str> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| self.wrong(key, v, "a string"))
    }

    pub fn str_opt(&self, key: &str) -> Result<Option<&str>> {
        if self.get(key).is_none() {
            Ok(None)
        } else {
            self.str(key).map(Some)
        }
    }

    /// An array of strings (e.g. `tokenizer.ggml.tokens`).
    pub fn strings(&self, key: &str) -> Result<Vec<&str>> {
        let v = self.require(key)?;
        let a = v.as_array().ok_or_else(|| self.wrong(key, v, "an array of strings"))?;
        a.iter()
            .enumerate()
            .map(|(i, e)| {
                e.as_str().ok_or_else(|| {
                    self.err(format!("metadata key '{key}' should hold strings but element {i} is {}", e.type_name()))
                })
            })
            .collect()
    }

    /// An array of integers (any GGUF integer type) as i64 (e.g. `tokenizer.ggml.token_type`).
    pub fn ints(&self, key: &str) -> Result<Vec<i64>> {
        let v = self.require(key)?;
        let a = v.as_array().ok_or_else(|| self.wrong(key, v, "an array of integers"))?;
        a.iter()
            .enumerate()
            .map(|(i, e)| {
                e.as_i64().ok_or_else(|| {
                    self.err(format!("metadata key '{key}' should hold integers but element {i} is {}", e.type_name()))
                })
            })
            .collect()
    }

    /// All tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The info of one tensor, if present.
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The raw bytes of one tensor, as stored.
    pub fn tensor_bytes(&self, name: &str) -> Result<&'a [u8]> {
        let info = self.tensor_info_or_err(name)?;
        match info.size {
            Some(size) => Ok(&self.bytes[info.offset..info.offset + size]),
            None => {
                Err(self
                    .err(format!("tensor '{name}' has GGUF {}, whose size this reader does not know", info.ggml_type)))
            }
        }
    }

    fn tensor_info_or_err(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor_info(name).ok_or_else(|| {
            let mut near: Vec<&str> = self
                .tensors
                .iter()
                .map(|t| t.name.as_str())
                .filter(|t| t.split('.').next_back() == name.split('.').next_back())
                .take(4)
                .collect();
            if near.is_empty() {
                near = self.tensors.iter().take(4).map(|t| t.name.as_str()).collect();
            }
            self.err(format!("has no tensor named '{name}' ({} tensors, e.g. {})", self.tensors.len(), near.join(", ")))
        })
    }

    /// Loads one tensor: F32/F16 as values, Q8_0/Q4_1 as GGUF blocks, shape outermost first.
    pub fn tensor(&self, name: &str) -> Result<HostTensor> {
        let info = self.tensor_info_or_err(name)?;
        let Some(dtype) = info.ggml_type.dtype() else {
            return Err(self.err(format!(
                "tensor '{name}' has GGUF type {}, which webformer does not load (it loads F32, F16, Q8_0 and Q4_1)",
                info.ggml_type
            )));
        };
        if dtype.is_quantized() && !info.shape.last().copied().unwrap_or(1).is_multiple_of(QK) {
            // bytes_for already refused this at parse time; kept so the invariant is local.
            return Err(self
                .err(format!("tensor '{name}' ({dtype}) has an innermost dimension that is not a multiple of {QK}")));
        }
        let bytes = self.tensor_bytes(name)?;
        Ok(HostTensor { shape: info.shape.clone(), data: HostData::from_bytes(dtype, info.numel(), bytes) })
    }
}

impl std::fmt::Debug for Gguf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gguf")
            .field("file", &self.file)
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}
