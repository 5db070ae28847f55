//! Compiles `proto/omnipanel/v1/*.proto` with protox (pure Rust, so no system
//! `protoc` is needed), writes the descriptor set for server reflection, and
//! generates prost messages, tonic stubs and proto3-JSON serde impls.

use std::{env, fs, path::PathBuf};

use prost::Message;

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

    let fds = protox::compile(&files, [&proto_dir])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_bytes = fds.encode_to_vec();
    fs::write(out_dir.join("omnipanel_descriptor.bin"), &descriptor_bytes)?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .build(&[".omnipanel"])?;
    Ok(())
}
