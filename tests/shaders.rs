//! Portability guard: every WGSL file is parsed and validated by naga and translated to
//! SPIR-V (Vulkan), MSL (Metal) and HLSL (DX12), so a backend breaks here, not on a user's machine.

use webformer::kernels::{module_source, FAMILIES, SHADERS};

fn translate(name: &str, src: &str) {
    let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(src)));
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default()
            | naga::valid::Capabilities::SHADER_FLOAT16
            | naga::valid::Capabilities::SUBGROUP,
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name}.wgsl does not validate: {}", e.emit_to_string(src)));
    naga::back::spv::write_vec(&module, &info, &naga::back::spv::Options::default(), None)
        .unwrap_or_else(|e| panic!("{name}.wgsl -> SPIR-V: {e}"));
    let msl_opts = naga::back::msl::Options::default();
    let pipeline = naga::back::msl::PipelineOptions::default();
    naga::back::msl::write_string(&module, &info, &msl_opts, &pipeline)
        .unwrap_or_else(|e| panic!("{name}.wgsl -> MSL: {e}"));
    let mut hlsl = String::new();
    let hlsl_opts = naga::back::hlsl::Options::default();
    let hlsl_pipeline = naga::back::hlsl::PipelineOptions::default();
    let mut w = naga::back::hlsl::Writer::new(&mut hlsl, &hlsl_opts, &hlsl_pipeline);
    w.write(&module, &info, None).unwrap_or_else(|e| panic!("{name}.wgsl -> HLSL: {e}"));
    assert!(!hlsl.is_empty());
}

#[test]
fn every_shader_translates_to_spirv_msl_hlsl() {
    for (name, _) in FAMILIES {
        translate(name, &module_source(name));
    }
    // Preludes must also stand as libraries: each validates alone, or after just the preludes
    // listed before it where a family lists it (gemm_b32 builds on gemm_common, which builds on
    // activation), so no prelude depends on code that comes after it.
    for (name, _) in SHADERS {
        if !FAMILIES.iter().any(|(f, _)| f == name) {
            let before = FAMILIES
                .iter()
                .find_map(|(_, pre)| pre.iter().position(|p| p == name).map(|i| &pre[..i]))
                .unwrap_or(&[]);
            // `enable` directives first, as kernels::module_source arranges them.
            let (mut directives, mut lib) = (String::new(), String::new());
            for p in before.iter().chain([name]) {
                for line in SHADERS.iter().find(|(s, _)| s == p).map(|(_, src)| *src).unwrap_or("").lines() {
                    let part = if line.starts_with("enable ") { &mut directives } else { &mut lib };
                    part.push_str(line);
                    part.push('\n');
                }
            }
            let lib = directives + &lib;
            let module = naga::front::wgsl::parse_str(&lib)
                .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(&lib)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default() | naga::valid::Capabilities::SHADER_FLOAT16,
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {e}"));
        }
    }
}

#[test]
fn every_file_in_shaders_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = SHADERS.iter().map(|(n, _)| format!("{n}.wgsl")).collect();
    embedded.sort();
    assert_eq!(on_disk, embedded, "shaders/ and kernels::SHADERS must list the same files");
    for (name, src) in SHADERS {
        let file = std::fs::read_to_string(dir.join(format!("{name}.wgsl"))).unwrap();
        assert_eq!(&file, src, "{name}.wgsl differs from the embedded copy");
    }
}
