//! Embedding gather against the CPU reference, for every table dtype (f32, f16, Q8_0, Q4_1),
//! awkward sizes (V and D = 1, odd, prime; quantized D whole blocks of 32), ids of several
//! shapes including out-of-range ones (which give zero rows), outputs poisoned first.
//!
//! Tolerance: exact (bit for bit). A gather does no arithmetic for f32 and f16 (widening is
//! exact, subnormals included), and the dequantization d·q (+ m) rounds once on both sides
//! (d·q is exact in f32).

mod common;

use common::{block, gpu, random, seed};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use webformer::{cpu, numel, Context, DType, GpuExecutor, Graph, HostData};

fn table_data(dtype: DType, t: &[f32]) -> HostData {
    match dtype {
        DType::F32 => HostData::F32(t.to_vec()),
        DType::F16 => HostData::F16(t.iter().map(|&v| half::f16::from_f32(v)).collect()),
        DType::Q8_0 | DType::Q4_1 => HostData::Quant { dtype, len: t.len(), bytes: cpu::quant::quantize(dtype, t) },
        DType::U32 => unreachable!("not a table dtype"),
    }
}

/// Ids in 0..v with a few out of range (v, v + 5, u32::MAX) mixed in.
fn ids(seed: u64, n: usize, v: usize) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| match i % 11 {
            3 => v as u32,
            7 => v as u32 + 5,
            10 => u32::MAX,
            _ => rng.random_range(0..v as u32),
        })
        .collect()
}

fn check(ctx: &Context, dtype: DType, v: usize, d: usize, id_shape: &[usize], seed: u64) {
    let table = table_data(dtype, &random(seed, v * d, -2.0, 2.0));
    let id_values = ids(seed + 1, numel(id_shape), v);
    let mut g = Graph::new();
    let t = g.weight("table", &[v, d], table.clone()).unwrap();
    let i = g.input("ids", id_shape, DType::U32).unwrap();
    let y = g.embedding(t, i).unwrap();
    g.output(y).unwrap();
    let mut out_shape = id_shape.to_vec();
    out_shape.push(d);
    assert_eq!(g.node(y).shape, out_shape);
    let mut exe = GpuExecutor::new(ctx, &g).unwrap();
    exe.poison_outputs();
    exe.set_input("ids", &id_values).unwrap();
    exe.run().unwrap();
    let got = block(exe.read(y)).unwrap().to_f32();
    let want = cpu::embedding::embedding(&table, v, d, &id_values);
    assert_eq!(got.len(), want.len());
    for (e, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits(),
            "embedding {dtype} V={v} D={d} ids {id_shape:?}: element {e} (id {}) is {g}, reference {w}",
            id_values[e / d]
        );
    }
}

#[test]
fn embedding_matches_reference_for_every_dtype() {
    let Some(ctx) = gpu() else { return };
    let s = seed("embedding");
    for dtype in [DType::F32, DType::F16, DType::Q8_0, DType::Q4_1] {
        let widths: &[usize] = if dtype.is_quantized() { &[32, 96, 576] } else { &[1, 3, 64, 577] };
        for (i, &d) in widths.iter().enumerate() {
            for &v in &[1, 7, 97] {
                for shape in [&[1][..], &[13], &[2, 3], &[3, 1, 7]] {
                    check(&ctx, dtype, v, d, shape, s + i as u64 + v as u64);
                }
            }
        }
    }
}

#[test]
fn out_of_range_ids_give_zero_rows() {
    let Some(ctx) = gpu() else { return };
    let (v, d) = (5, 32);
    let table = random(seed("embedding zeros"), v * d, 1.0, 2.0); // no zeros in the table
    for dtype in [DType::F32, DType::F16, DType::Q8_0, DType::Q4_1] {
        let mut g = Graph::new();
        let t = g.weight("table", &[v, d], table_data(dtype, &table)).unwrap();
        let i = g.input("ids", &[4], DType::U32).unwrap();
        let y = g.embedding(t, i).unwrap();
        g.output(y).unwrap();
        let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
        exe.poison_outputs();
        exe.set_input("ids", &[4u32, 5, 1000, u32::MAX]).unwrap();
        exe.run().unwrap();
        let got = block(exe.read(y)).unwrap().to_f32();
        assert!(got[..d].iter().all(|&x| x >= 0.9), "{dtype}: id 4 is inside the table");
        assert!(got[d..].iter().all(|&x| x == 0.0), "{dtype}: ids >= V must give zeros");
    }
}

#[test]
fn embedding_beyond_65535_workgroups() {
    let Some(ctx) = gpu() else { return };
    // 524301 ids x 32 = 16.8M outputs, more than 65535 workgroups of 256: the grid wraps.
    check(&ctx, DType::Q4_1, 3, 32, &[524_301], seed("embedding huge"));
}

#[test]
fn embedding_builder_checks_dtypes_and_shapes() {
    let mut g = Graph::new();
    let t = g.weight("t", &[4, 2], vec![0f32; 8]).unwrap();
    let t3 = g.weight("t3", &[2, 2, 2], vec![0f32; 8]).unwrap();
    let ids_f = g.input("f", &[3], DType::F32).unwrap();
    let ids = g.input("ids", &[3], DType::U32).unwrap();
    let e = g.embedding(t, ids_f).unwrap_err().to_string();
    assert!(e.contains("embedding") && e.contains("u32"), "{e}");
    let e = g.embedding(t3, ids).unwrap_err().to_string();
    assert!(e.contains("embedding") && e.contains("[2, 2, 2]"), "{e}");
    let e = g.embedding(ids, ids).unwrap_err().to_string();
    assert!(e.contains("table"), "{e}");
}

#[test]
fn cpu_executor_runs_embedding() {
    let table: Vec<f32> = (0..12).map(|i| i as f32).collect();
    let mut g = Graph::new();
    let t = g.weight("t", &[4, 3], table).unwrap();
    let i = g.input("ids", &[3], DType::U32).unwrap();
    let y = g.embedding(t, i).unwrap();
    g.output(y).unwrap();
    let mut exe = webformer::CpuExecutor::new(&g);
    exe.set_input("ids", &HostData::U32(vec![2, 9, 0])).unwrap();
    exe.run().unwrap();
    assert_eq!(exe.value(y).unwrap().to_f32(), vec![6.0, 7.0, 8.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0]);
}

#[test]
fn f16_table_widens_special_values_exactly() {
    let Some(ctx) = gpu() else { return };
    let bits: Vec<u16> =
        vec![0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x8000, 0x0000, 0x3c00, 0x3555];
    let table: Vec<half::f16> = bits.iter().map(|&b| half::f16::from_bits(b)).collect();
    let mut g = Graph::new();
    let t = g.weight("t", &[3, 4], table.clone()).unwrap();
    let i = g.input("ids", &[3], DType::U32).unwrap();
    let y = g.embedding(t, i).unwrap();
    g.output(y).unwrap();
    let mut exe = GpuExecutor::new(&ctx, &g).unwrap();
    exe.poison_outputs();
    exe.set_input("ids", &[2u32, 0, 1]).unwrap();
    exe.run().unwrap();
    let got = block(exe.read(y)).unwrap().to_f32();
    let want: Vec<f32> = [2, 0, 1].iter().flat_map(|&r| table[r * 4..][..4].iter().map(|h| h.to_f32())).collect();
    for (e, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "element {e}: {g} vs {w}");
    }
}
