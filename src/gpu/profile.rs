//! GPU timestamps: a query set with two entries per timed pass, resolved and read back.
//! Knows nothing of ops; the executor labels the rows.

use crate::error::{Error, Result};
use crate::gpu::{buffer, Context};

/// WebGPU's maximum number of queries in one set.
pub const MAX_QUERIES: u32 = 4096;

pub struct Timer {
    pub(crate) queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    count: u32,
}

impl Timer {
    /// A timer for `passes` passes, or an error if the device cannot time them.
    pub fn new(ctx: &Context, passes: u32) -> Result<Self> {
        if !ctx.has(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(Error::Feature {
                what: "GPU timing".into(),
                feature: "TIMESTAMP_QUERY",
                adapter: ctx.adapter().name.clone(),
            });
        }
        let count = passes.max(1) * 2;
        if count > MAX_QUERIES {
            return Err(Error::Limit {
                what: format!("timing {passes} passes"),
                needed: count as u64,
                max: MAX_QUERIES as u64,
                limit: "queries per query set",
            });
        }
        let queries = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("webformer timer"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let bytes = count as u64 * 8;
        let resolve = ctx.create_buffer(&wgpu::BufferDescriptor {
            label: Some("webformer timer resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = buffer::staging(ctx, bytes);
        Ok(Self { queries, resolve, staging, count })
    }

    /// Timestamp writes for pass `i`.
    pub fn writes(&self, i: u32) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(2 * i),
            end_of_pass_write_index: Some(2 * i + 1),
        }
    }

    /// Records the resolve and copy at the end of `enc`.
    pub fn resolve(&self, enc: &mut wgpu::CommandEncoder) {
        enc.resolve_query_set(&self.queries, 0..self.count, &self.resolve, 0);
        enc.copy_buffer_to_buffer(&self.resolve, 0, &self.staging, 0, self.count as u64 * 8);
    }

    /// Nanoseconds of each pass, after the encoder holding `resolve` was submitted.
    pub async fn read_ns(&self, ctx: &Context) -> Result<Vec<f64>> {
        let bytes = buffer::map_read(ctx, &self.staging, "timestamps").await?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
        let period = ctx.queue.get_timestamp_period() as f64;
        Ok(ticks.chunks(2).map(|t| t[1].saturating_sub(t[0]) as f64 * period).collect())
    }
}
