//! Buffer creation, upload and asynchronous readback.
//!
//! Readback is `map_async` plus a oneshot channel: on wasm the browser resolves it, natively we
//! poll the device once (the submission is already queued, so this is a wait, not a spin).

use crate::error::{Error, Result};
use crate::gpu::Context;

/// Rounds a byte size up to a multiple of 16 (at least 16): copies and bindings need multiples
/// of 4, and 16 lets kernels view any tensor as an array of vec4 (the GEMM loads 4 elements at
/// a time), with every element index i inside vec4 i / 4 and no binding too small for one vec4.
pub(crate) fn padded(bytes: u64) -> u64 {
    bytes.max(16).div_ceil(16) * 16
}

/// A storage buffer that kernels read and write and that can be copied in and out.
pub(crate) fn storage(ctx: &Context, bytes: u64, label: &str) -> Result<wgpu::Buffer> {
    let size = padded(bytes);
    let max = ctx.limits().max_buffer_size.min(ctx.limits().max_storage_buffer_binding_size);
    if size > max {
        return Err(Error::Limit {
            what: format!("tensor '{label}'"),
            needed: size,
            max,
            limit: "max_storage_buffer_binding_size",
        });
    }
    Ok(ctx.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    }))
}

/// Writes `bytes` at the start of `buffer`, padding to a multiple of 4 as wgpu requires.
pub(crate) fn upload(ctx: &Context, buffer: &wgpu::Buffer, bytes: &[u8]) {
    if bytes.len().is_multiple_of(4) {
        ctx.queue.write_buffer(buffer, 0, bytes);
    } else {
        let mut v = bytes.to_vec();
        v.resize(padded(bytes.len() as u64) as usize, 0);
        ctx.queue.write_buffer(buffer, 0, &v);
    }
}

/// A host-readable buffer to copy results into; executors keep one per output and reuse it.
pub(crate) fn staging(ctx: &Context, bytes: u64) -> wgpu::Buffer {
    ctx.create_buffer(&wgpu::BufferDescriptor {
        label: Some("webformer readback"),
        size: padded(bytes),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Copies `bytes` bytes from the start of `buffer` to the host through a new staging buffer.
pub(crate) async fn read_bytes(ctx: &Context, buffer: &wgpu::Buffer, bytes: u64, what: &str) -> Result<Vec<u8>> {
    read_via(ctx, buffer, &staging(ctx, bytes), bytes, what).await
}

/// Copies `bytes` bytes from the start of `buffer` to the host through `staging`.
pub(crate) async fn read_via(
    ctx: &Context,
    buffer: &wgpu::Buffer,
    staging: &wgpu::Buffer,
    bytes: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let size = padded(bytes);
    let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
    enc.copy_buffer_to_buffer(buffer, 0, staging, 0, size);
    ctx.queue.submit([enc.finish()]);
    map_read(ctx, staging, what).await.map(|mut v| {
        v.truncate(bytes as usize);
        v
    })
}

/// Maps a MAP_READ buffer after the queued work that fills it, and copies it out.
pub(crate) async fn map_read(ctx: &Context, staging: &wgpu::Buffer, what: &str) -> Result<Vec<u8>> {
    let (tx, rx) = futures_channel::oneshot::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.poll_wait();
    let fail = |reason: String| Error::Readback { what: what.into(), reason };
    rx.await
        .map_err(|_| fail("the device was lost before the copy finished".into()))?
        .map_err(|e| fail(e.to_string()))?;
    let out = {
        let view = staging.slice(..).get_mapped_range().map_err(|e| fail(e.to_string()))?;
        view.to_vec()
    };
    staging.unmap();
    ctx.check_errors(&format!("reading '{what}'"))?;
    Ok(out)
}
