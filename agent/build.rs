//! Build script: two link-time choices that shrink the agent's resident
//! memory (docs/BENCHMARKS.md, idle RSS), both only where they are safe.
//!
//! - Packed relative relocations (DT_RELR). A position-independent Rust
//!   binary carries tens of thousands of relative relocations; as classic
//!   RELA entries they took 1.2 MB of the file and of resident memory, read
//!   once at start and never again. Packed, they take a few kilobytes.
//!   glibc applies them from 2.36 on; against an older glibc the agent is
//!   linked the classic way. A binary built on a newer glibc needs that
//!   glibc anyway, for its symbol versions, so this adds no requirement.
//! - Start-up code first (`startup-order.txt`, from scripts/startup-order),
//!   for release builds linked by rust-lld.

use std::process::Command;

/// The first glibc whose loader applies DT_RELR.
const RELR_SINCE: (u32, u32) = (2, 36);

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let target_is = |key: &str, value: &str| std::env::var(key).is_ok_and(|v| v == value);
    let native = std::env::var("HOST").ok() == std::env::var("TARGET").ok();
    if native
        && target_is("CARGO_CFG_TARGET_OS", "linux")
        && target_is("CARGO_CFG_TARGET_ENV", "gnu")
        && build_glibc().is_some_and(|version| version >= RELR_SINCE)
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
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

/// The glibc version of the build machine, from `getconf` ("glibc 2.36").
fn build_glibc() -> Option<(u32, u32)> {
    let output = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let (major, minor) = text.trim().strip_prefix("glibc ")?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}
