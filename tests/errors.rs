//! GPU-side failures reach the caller as errors, never as panics: validation errors wgpu
//! reports asynchronously become `Error::Gpu` at the next checkpoint, tensors beyond the
//! device's limits are refused with `Error::Limit` before anything is allocated, and the error
//! sink is the context's, shared by every executor built on it.

mod common;

use common::{assert_close, block, gpu, random, seed};
use webformer::{Context, CpuExecutor, DType, Error, GpuExecutor, Graph, HostData, NodeId};

/// Makes wgpu record a validation error on `ctx`'s device: a buffer that is both mappable for
/// reading and a storage buffer, which WebGPU forbids (MAP_READ combines only with COPY_DST).
fn provoke_validation_error(ctx: &Context) {
    let _bad = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("invalid usage on purpose"),
        size: 64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
}

fn gelu_graph(n: usize) -> (Graph, NodeId) {
    let mut g = Graph::new();
    let x = g.input("x", &[n], DType::F32).unwrap();
    let y = g.gelu(x).unwrap();
    g.output(y).unwrap();
    (g, y)
}

#[test]
fn validation_errors_become_error_gpu() {
    let Some(ctx) = gpu() else { return };
    block(ctx.sync()).unwrap();
    provoke_validation_error(&ctx);
    match block(ctx.sync()) {
        Err(Error::Gpu { during, message }) => {
            assert!(during.contains("waiting for the GPU"), "{during}");
            assert!(
                message.contains("invalid usage on purpose") || message.to_lowercase().contains("usage"),
                "{message}"
            );
        }
        other => panic!("a validation error should surface as Error::Gpu, got {other:?}"),
    }
    // Reported once: the next checkpoint is clean.
    block(ctx.sync()).unwrap();
}

#[test]
fn executors_on_one_context_share_its_error_sink() {
    let Some(ctx) = gpu() else { return };
    let s = seed("shared error sink");
    let (ga, ya) = gelu_graph(37);
    let (gb, yb) = gelu_graph(1000);
    let mut a = GpuExecutor::new(&ctx, &ga).unwrap();
    let mut b = GpuExecutor::new(&ctx, &gb).unwrap();
    let (xa, xb) = (random(s, 37, -3.0, 3.0), random(s + 1, 1000, -3.0, 3.0));
    a.set_input("x", &xa).unwrap();
    b.set_input("x", &xb).unwrap();
    a.run().unwrap();
    // An error raised while neither runs is reported by whichever executor checks next...
    provoke_validation_error(&ctx);
    let e = b.run().unwrap_err();
    assert!(matches!(&e, Error::Gpu { during, .. } if during.contains("running the graph")), "{e}");
    // ...once: the other executor, and the same one again, run cleanly afterwards.
    a.run().unwrap();
    b.run().unwrap();
    for (exe, g, y, x) in [(&mut a, &ga, ya, xa), (&mut b, &gb, yb, xb)] {
        let mut cpu = CpuExecutor::new(g);
        cpu.set_input("x", &HostData::F32(x)).unwrap();
        cpu.run().unwrap();
        let got = block(exe.read(y)).unwrap().to_f32();
        assert_close("gelu after a reported error", &got, &cpu.value(y).unwrap().to_f32(), 1e-5, 1e-6);
    }
}

#[test]
fn tensors_beyond_the_binding_limit_are_refused() {
    let Some(ctx) = gpu() else { return };
    let l = ctx.limits();
    let max = l.max_storage_buffer_binding_size.min(l.max_buffer_size);
    // One f32 more than a storage binding holds (the graph allocates nothing on the host).
    let n = (max / 4 + 1) as usize;
    let mut g = Graph::new();
    let x = g.input("huge_input", &[n], DType::F32).unwrap();
    let y = g.relu(x).unwrap();
    g.output(y).unwrap();
    match GpuExecutor::new(&ctx, &g) {
        Err(Error::Limit { what, needed, max: m, limit }) => {
            assert!(what.contains("huge_input"), "the error names the tensor: {what}");
            assert!(needed > m && m == max, "needed {needed}, max {m}");
            assert_eq!(limit, "max_storage_buffer_binding_size");
        }
        Err(e) => panic!("expected Error::Limit, got {e}"),
        Ok(_) => panic!("a tensor of {n} f32 was accepted past the {max}-byte binding limit"),
    }
    // The context is still usable.
    let (g, y) = gelu_graph(5);
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    exe.set_input("x", &[0.0f32; 5]).unwrap();
    exe.run().unwrap();
    assert_eq!(block(exe.read(y)).unwrap().to_f32(), vec![0.0; 5]);
}
