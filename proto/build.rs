//! Compiles `proto/omnipanel/v1/*.proto` with protox (pure Rust, so no system
//! `protoc` is needed), writes the descriptor set for server reflection, and
//! generates prost messages, tonic stubs and proto3-JSON serde impls.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let api_dir = proto_dir.join("omnipanel").join("v1");
    let mut files: Vec<PathBuf> = fs::read_dir(&api_dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    println!("cargo:rerun-if-changed={}", api_dir.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let mut compiler = protox::Compiler::new([&proto_dir])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(&files)?;
    let fds = compiler.file_descriptor_set();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // prost's own descriptor types drop extension options, so the set the
    // agent reads its access policies from is encoded by protox, which keeps
    // them (the `omnipanel.v1.access` option on every RPC).
    let descriptor_bytes = compiler.encode_file_descriptor_set();
    fs::write(out_dir.join("omnipanel_descriptor.bin"), &descriptor_bytes)?;
    // The same files without their comments (source info), for the access
    // and audit tables the agent builds at start-up: decoding the full
    // set cost about 10 ms and kept 5 MB alive for the agent's lifetime.
    let mut compact = protox::Compiler::new([&proto_dir])?;
    compact
        .include_source_info(false)
        .include_imports(true)
        .open_files(&files)?;
    fs::write(
        out_dir.join("omnipanel_descriptor_compact.bin"),
        compact.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .build(&[".omnipanel"])?;
    Ok(())
}
