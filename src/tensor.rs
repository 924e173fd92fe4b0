//! Tensors: a shape, a dtype and either a GPU buffer (`Tensor`) or host data (`HostData`).

use serde::Serialize;

use crate::error::{Error, Result};
use crate::gpu::{buffer, Context};

/// Element types. Kernels state which they accept; graph builders check.
///
/// `Q8_0` and `Q4_1` are GGUF's block-quantized types (blocks of 32 along the last dimension):
/// Q8_0 = f16 scale d + 32 int8, x = d·q; Q4_1 = f16 scale d + f16 min m + 32 4-bit q,
/// x = d·q + m (low nibbles are elements 0..15, high nibbles 16..31). Host data holds the
/// GGUF bytes as they are; the GPU copy may be repacked for wide loads (see `kernels::quant`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum DType {
    F32,
    F16,
    U32,
    Q8_0,
    Q4_1,
}

/// Elements per quantization block.
pub const QK: usize = 32;

impl DType {
    /// Bytes of `n` elements in the host (GGUF) layout. For block types `n` must be a
    /// multiple of `QK` (graph builders check).
    pub fn bytes_for(self, n: usize) -> usize {
        match self {
            DType::F32 | DType::U32 => 4 * n,
            DType::F16 => 2 * n,
            DType::Q8_0 => n / QK * 34,
            DType::Q4_1 => n / QK * 20,
        }
    }

    /// Block-quantized (elements are not individually addressable bytes).
    pub fn is_quantized(self) -> bool {
        matches!(self, DType::Q8_0 | DType::Q4_1)
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::U32 => "u32",
            DType::Q8_0 => "q8_0",
            DType::Q4_1 => "q4_1",
        })
    }
}

/// Rust types that map to a `DType`.
pub trait Element: bytemuck::Pod {
    const DTYPE: DType;
}
impl Element for f32 {
    const DTYPE: DType = DType::F32;
}
impl Element for half::f16 {
    const DTYPE: DType = DType::F16;
}
impl Element for u32 {
    const DTYPE: DType = DType::U32;
}

/// Number of elements of a shape (1 for a scalar `[]`).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Data on the host, tagged with its dtype: graph weights, run inputs, CPU-reference values.
#[derive(Clone, Debug, PartialEq)]
pub enum HostData {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
    U32(Vec<u32>),
    /// Block-quantized data in GGUF's layout: `bytes` holds `len` elements of `dtype`.
    Quant {
        dtype: DType,
        len: usize,
        bytes: Vec<u8>,
    },
}

impl HostData {
    pub fn dtype(&self) -> DType {
        match self {
            HostData::F32(_) => DType::F32,
            HostData::F16(_) => DType::F16,
            HostData::U32(_) => DType::U32,
            HostData::Quant { dtype, .. } => *dtype,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            HostData::F32(v) => v.len(),
            HostData::F16(v) => v.len(),
            HostData::U32(v) => v.len(),
            HostData::Quant { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw little-endian bytes, as uploaded to the GPU.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            HostData::F32(v) => bytemuck::cast_slice(v),
            HostData::F16(v) => bytemuck::cast_slice(v),
            HostData::U32(v) => bytemuck::cast_slice(v),
            HostData::Quant { bytes, .. } => bytes,
        }
    }

    /// Rebuilds host data of `len` elements from bytes in the host layout.
    pub fn from_bytes(dtype: DType, len: usize, bytes: &[u8]) -> Self {
        match dtype {
            DType::F32 => HostData::F32(bytemuck::pod_collect_to_vec(bytes)),
            DType::F16 => HostData::F16(bytemuck::pod_collect_to_vec(bytes)),
            DType::U32 => HostData::U32(bytemuck::pod_collect_to_vec(bytes)),
            DType::Q8_0 | DType::Q4_1 => HostData::Quant { dtype, len, bytes: bytes.to_vec() },
        }
    }

    /// The values widened to f32 (u32 converted numerically, quantized blocks dequantized as
    /// llama.cpp does), for references, comparisons and printing.
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            HostData::F32(v) => v.clone(),
            HostData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            HostData::U32(v) => v.iter().map(|&x| x as f32).collect(),
            HostData::Quant { dtype, len, bytes } => crate::cpu::quant::dequantize(*dtype, bytes, *len),
        }
    }

    /// Borrows f32 data, or says which dtype it is instead.
    pub fn as_f32(&self, what: &str) -> Result<&[f32]> {
        match self {
            HostData::F32(v) => Ok(v),
            other => Err(Error::DType { what: what.into(), expected: "f32".into(), got: other.dtype().to_string() }),
        }
    }
}

impl From<Vec<f32>> for HostData {
    fn from(v: Vec<f32>) -> Self {
        HostData::F32(v)
    }
}
impl From<Vec<half::f16>> for HostData {
    fn from(v: Vec<half::f16>) -> Self {
        HostData::F16(v)
    }
}
impl From<Vec<u32>> for HostData {
    fn from(v: Vec<u32>) -> Self {
        HostData::U32(v)
    }
}

/// A tensor in GPU memory. Created by upload or by an executor; read back asynchronously.
pub struct Tensor {
    pub(crate) buffer: wgpu::Buffer,
    shape: Vec<usize>,
    dtype: DType,
}

impl Tensor {
    /// Allocates a tensor with unspecified contents.
    pub fn empty(ctx: &Context, shape: &[usize], dtype: DType, label: &str) -> Result<Self> {
        let buffer = buffer::storage(ctx, dtype.bytes_for(numel(shape)) as u64, label)?;
        Ok(Self { buffer, shape: shape.to_vec(), dtype })
    }

    /// Uploads `data` as a tensor of `shape`.
    ///
    /// ```no_run
    /// # async fn demo(ctx: &webformer::Context) -> webformer::Result<()> {
    /// let t = webformer::Tensor::from_slice(ctx, &[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(t.to_vec::<f32>(ctx).await?, vec![1.0, 2.0, 3.0, 4.0]);
    /// # Ok(()) }
    /// ```
    pub fn from_slice<T: Element>(ctx: &Context, data: &[T], shape: &[usize]) -> Result<Self> {
        if data.len() != numel(shape) {
            return Err(Error::Usage(format!(
                "Tensor::from_slice: shape {shape:?} holds {} elements but {} were given",
                numel(shape),
                data.len()
            )));
        }
        let t = Self::empty(ctx, shape, T::DTYPE, "tensor")?;
        buffer::upload(ctx, &t.buffer, bytemuck::cast_slice(data));
        Ok(t)
    }

    /// Uploads host data of any dtype.
    pub fn from_host(ctx: &Context, data: &HostData, shape: &[usize], label: &str) -> Result<Self> {
        if data.len() != numel(shape) {
            return Err(Error::Usage(format!(
                "tensor '{label}': shape {shape:?} holds {} elements but {} were given",
                numel(shape),
                data.len()
            )));
        }
        let t = Self::empty(ctx, shape, data.dtype(), label)?;
        buffer::upload(ctx, &t.buffer, data.as_bytes());
        Ok(t)
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// Size of the data in bytes (the buffer may be padded to a multiple of 16).
    pub fn bytes(&self) -> u64 {
        self.dtype.bytes_for(self.numel()) as u64
    }

    /// Reads the tensor back; fails if `T` is not its dtype.
    pub async fn to_vec<T: Element>(&self, ctx: &Context) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype {
            return Err(Error::DType {
                what: "Tensor::to_vec".into(),
                expected: self.dtype.to_string(),
                got: T::DTYPE.to_string(),
            });
        }
        let bytes = buffer::read_bytes(ctx, &self.buffer, self.bytes(), "tensor").await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Reads the tensor back as tagged host data.
    pub async fn to_host(&self, ctx: &Context) -> Result<HostData> {
        let bytes = buffer::read_bytes(ctx, &self.buffer, self.bytes(), "tensor").await?;
        Ok(HostData::from_bytes(self.dtype, self.numel(), &bytes))
    }
}
