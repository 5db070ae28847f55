//! Build script: the tray's executable (which is also the panel's) is
//! linked with packed relative relocations and the tray's and then the
//! panel's start-up functions first (`startup-order.txt`, from
//! scripts/startup-order), as the agent's is (`../agent/link_layout.rs`).

#[path = "../agent/link_layout.rs"]
mod link_layout;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../agent/link_layout.rs");
    link_layout::pack_relative_relocations();
    link_layout::put_startup_code_first(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("startup-order.txt"),
    );
}
