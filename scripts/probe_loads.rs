// A probe of the cost of reading memory per lane on the default adapter, through a storage
// buffer, a sampled texture (textureLoad) and a uniform buffer: 32 K lanes in 8-lane
// workgroups each read 256 vec4<u32> of their own (storage and texture: from 16 MiB; uniform:
// from one 64 KiB array, so cache-hot and not comparable). Wall clock, best of 3.
// Not built by cargo here; to run it: cp scripts/probe_loads.rs examples/ &&
// cargo run --release --example probe_loads
use std::time::Instant;

const SRC: &str = r#"
struct P { n: u32, words: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> sb: array<vec4<u32>>;
@group(0) @binding(3) var tex: texture_2d<u32>;
@group(0) @binding(4) var<uniform> ub: array<vec4<u32>, 4096>;

// Lane i streams its own run of `words` vec4 starting at i*words (mod the source size).
@compute @workgroup_size(8)
fn storage_loads(@builtin(global_invocation_id) g: vec3<u32>) {
    let base = g.x * p.words;
    var acc = vec4<u32>(0u);
    for (var j = 0u; j < p.words; j++) {
        acc ^= sb[(base + j) % p.n];
    }
    out[g.x] = acc.x ^ acc.y ^ acc.z ^ acc.w;
}

@compute @workgroup_size(8)
fn texture_loads(@builtin(global_invocation_id) g: vec3<u32>) {
    let base = g.x * p.words;
    var acc = vec4<u32>(0u);
    for (var j = 0u; j < p.words; j++) {
        let i = (base + j) % p.n;
        acc ^= textureLoad(tex, vec2<u32>(i % 4096u, i / 4096u), 0);
    }
    out[g.x] = acc.x ^ acc.y ^ acc.z ^ acc.w;
}

@compute @workgroup_size(8)
fn uniform_loads(@builtin(global_invocation_id) g: vec3<u32>) {
    let base = g.x * p.words;
    var acc = vec4<u32>(0u);
    for (var j = 0u; j < p.words; j++) {
        acc ^= ub[(base + j) % 4096u];
    }
    out[g.x] = acc.x ^ acc.y ^ acc.z ^ acc.w;
}
"#;

fn main() {
    pollster::block_on(run());
}

async fn run() {
    let instance = wgpu::Instance::default();
    let adapter = instance.request_adapter(&wgpu::RequestAdapterOptions::default()).await.unwrap();
    println!("{:?}", adapter.get_info().name);
    let (device, queue) = adapter.request_device(&wgpu::DeviceDescriptor::default()).await.unwrap();
    let texels: u32 = 4096 * 256; // 16 MiB of rgba32uint
    let lanes: u32 = 8 * 4096;
    let words: u32 = 256; // vec4 per lane: 32 Mi components in all
    let data: Vec<u32> = (0..texels * 4).map(|i| i.wrapping_mul(2654435761)).collect();
    use wgpu::util::DeviceExt;
    let sb = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&data),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let ub = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&data[..4096 * 4]),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let tex = device.create_texture_with_data(
        &queue,
        &wgpu::TextureDescriptor {
            label: None,
            size: wgpu::Extent3d { width: 4096, height: texels / 4096, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Uint,
            usage: wgpu::TextureUsages::TEXTURE_BINDING,
            view_formats: &[],
        },
        wgpu::util::TextureDataOrder::LayerMajor,
        bytemuck::cast_slice(&data),
    );
    let view = tex.create_view(&Default::default());
    let params = [texels, words, 0, 0];
    let pb = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&params),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let out = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: lanes as u64 * 4,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(SRC.into()),
    });
    for ep in ["storage_loads", "texture_loads", "uniform_loads", "storage_loads", "texture_loads", "uniform_loads"] {
        let pipe = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: None,
            layout: None,
            module: &module,
            entry_point: Some(ep),
            compilation_options: Default::default(),
            cache: None,
        });
        let layout = pipe.get_bind_group_layout(0);
        let mut entries = vec![
            wgpu::BindGroupEntry { binding: 0, resource: pb.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 1, resource: out.as_entire_binding() },
        ];
        match ep {
            "storage_loads" => entries.push(wgpu::BindGroupEntry { binding: 2, resource: sb.as_entire_binding() }),
            "texture_loads" => {
                entries.push(wgpu::BindGroupEntry { binding: 3, resource: wgpu::BindingResource::TextureView(&view) })
            }
            _ => entries.push(wgpu::BindGroupEntry { binding: 4, resource: ub.as_entire_binding() }),
        }
        let bg = device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &layout, entries: &entries });
        let mut best = f64::MAX;
        for _ in 0..3 {
            let mut enc = device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipe);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(lanes / 8, 1, 1);
            }
            let t = Instant::now();
            queue.submit([enc.finish()]);
            device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
        }
        let comps = lanes as f64 * words as f64 * 4.0;
        println!("{ep:>14}: {:.1} ms, {:.2} ns per 32-bit component", best * 1e3, best * 1e9 / comps);
    }
}
