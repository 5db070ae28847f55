//! Build script: the agent's executable is linked with packed relative
//! relocations and its start-up functions first (`startup-order.txt`, from
//! scripts/startup-order); both in `link_layout.rs`, which the tray's
//! build script shares.

#[path = "link_layout.rs"]
mod link_layout;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link_layout.rs");
    link_layout::pack_relative_relocations();
    link_layout::put_startup_code_first(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("startup-order.txt"),
    );
}
