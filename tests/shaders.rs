//! Portability guard: every WGSL file is parsed and validated by naga and translated to
//! SPIR-V (Vulkan), MSL (Metal) and HLSL (DX12), so a backend breaks here, not on a user's machine.

use webformer::kernels::{compose, module_parts, module_source, Part, MODULES, SHADERS};

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
    for (name, _) in MODULES {
        translate(name, &module_source(name));
    }
    // Preludes must also stand as libraries: every prefix of a module's parts validates alone,
    // so no part depends on code that comes after it.
    for (name, _) in MODULES {
        let parts = [&[Part::File("common")], module_parts(name)].concat();
        for end in 1..parts.len() {
            let lib = compose(&parts[..end]);
            let module = naga::front::wgsl::parse_str(&lib)
                .unwrap_or_else(|e| panic!("{name} prefix: {}", e.emit_to_string(&lib)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default()
                    | naga::valid::Capabilities::SHADER_FLOAT16
                    | naga::valid::Capabilities::SUBGROUP,
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: the first {end} parts do not validate: {e}"));
        }
    }
}

#[test]
fn every_file_is_part_of_a_module() {
    for (file, _) in SHADERS {
        let used = *file == "common"
            || MODULES.iter().any(|(_, parts)| parts.iter().any(|p| matches!(p, Part::File(f) if f == file)));
        assert!(used, "shaders/{file}.wgsl is in no module of kernels::MODULES");
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

/// Every kernel key against its module, through naga: the entry point exists, every storage
/// binding it uses is one the executor binds (outputs read-write, then inputs read-only, as
/// `io_counts` says), and its params uniform fits the 256-byte slot.
#[test]
fn every_kernel_key_matches_its_shader() {
    use naga::{AddressSpace, StorageAccess};
    use webformer::kernels::KernelKey;
    let caps = naga::valid::Capabilities::default()
        | naga::valid::Capabilities::SHADER_FLOAT16
        | naga::valid::Capabilities::SUBGROUP;
    let keys = KernelKey::all();
    for key in &keys {
        let src = module_source(key.family());
        let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{key:?}: {e}"));
        let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{key:?}: {e}"));
        let ep = module.entry_points.iter().position(|e| e.name == key.entry_point());
        let ep = ep.unwrap_or_else(|| panic!("{key:?}: no entry point {} in {}", key.entry_point(), key.family()));
        let uses = info.get_entry_point(ep);
        let (n_out, n_in) = key.io_counts();
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        for (h, var) in module.global_variables.iter() {
            let Some(rb) = &var.binding else { continue };
            if uses[h].is_empty() {
                continue;
            }
            let what = format!(
                "{key:?} ({}): {} at binding {}",
                key.entry_point(),
                var.name.as_deref().unwrap_or("?"),
                rb.binding
            );
            match var.space {
                AddressSpace::Uniform => {
                    assert!(rb.binding <= 1, "{what}: uniforms are bindings 0 (params) and 1 (runtime)");
                    assert!(
                        layouter[var.ty].size <= 256,
                        "{what}: params of {} bytes exceed the 256-byte slot",
                        layouter[var.ty].size
                    );
                }
                AddressSpace::Storage { access } => {
                    let j = rb.binding.checked_sub(2).unwrap_or_else(|| panic!("{what}: storage below binding 2"));
                    assert!(
                        j < n_out + n_in,
                        "{what}: beyond the {n_out} outputs and {n_in} inputs the executor binds"
                    );
                    let writable = access.contains(StorageAccess::STORE);
                    assert_eq!(writable, j < n_out, "{what}: outputs are read-write and inputs read-only");
                }
                _ => {}
            }
        }
    }
    eprintln!("{} kernel keys checked", keys.len());
}
