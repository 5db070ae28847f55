//! Build script: two link-time choices that shrink the agent's resident
//! memory (docs/BENCHMARKS.md, idle RSS), both only where they are safe.
//!
//! - Packed relative relocations (DT_RELR), in `relr.rs`, which the tray's
//!   build script shares.
//! - Start-up code first (`startup-order.txt`, from scripts/startup-order),
//!   for release builds linked by rust-lld.

use std::process::Command;

#[path = "relr.rs"]
mod relr;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=relr.rs");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let target_is = |key: &str, value: &str| std::env::var(key).is_ok_and(|v| v == value);
    let native = std::env::var("HOST").ok() == std::env::var("TARGET").ok();
    relr::pack_relative_relocations();
    if native
        && target_is("CARGO_CFG_TARGET_OS", "linux")
        && std::env::var("PROFILE").is_ok_and(|p| p == "release")
        && links_with_rust_lld()
    {
        // See scripts/startup-order: the code that runs from start to idle,
        // gathered at the front instead of spread over 17 MB.
        let order = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("startup-order.txt");
        if order.exists() {
            println!(
                "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
                order.display()
            );
            // Names the build does not have (a newer toolchain or
            // dependency renamed them) are skipped, not errors.
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
        }
        println!("cargo:rerun-if-changed=startup-order.txt");
    }
}

/// Whether the binary is linked by rust-lld, which understands
/// `--symbol-ordering-file` (GNU ld does not): the default for
/// x86_64-unknown-linux-gnu since Rust 1.90, unless a linker is chosen in
/// the environment or the flags.
fn links_with_rust_lld() -> bool {
    let var = |key: &str| std::env::var(key).unwrap_or_default();
    if var("TARGET") != "x86_64-unknown-linux-gnu"
        || !var("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_empty()
        || ["linker", "fuse-ld", "link-self-contained"]
            .iter()
            .any(|flag| var("CARGO_ENCODED_RUSTFLAGS").contains(flag))
    {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let Ok(output) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let text = String::from_utf8_lossy(&output.stdout);
    let mut version = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    (version.next().unwrap_or(0), version.next().unwrap_or(0)) >= (1, 90)
}
