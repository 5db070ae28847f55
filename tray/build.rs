//! Build script: packed relative relocations for the tray's executable
//! (`../agent/relr.rs`, shared with the agent): half a megabyte less of the
//! file and of the tray's resident memory.

#[path = "../agent/relr.rs"]
mod relr;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../agent/relr.rs");
    relr::pack_relative_relocations();
}
