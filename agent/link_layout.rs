//! How the agent's and the tray's executables are laid out by the linker,
//! shared by both crates' build scripts: two link-time choices that shrink
//! resident memory (docs/BENCHMARKS.md, idle RSS), each taken only where it
//! is safe.
//!
//! - Packed relative relocations (DT_RELR). A position-independent Rust
//!   binary carries tens of thousands of relative relocations; as classic
//!   RELA entries they took 1.2 MB of the agent's file and of its resident
//!   memory, read once at start and never again. Packed, they take a few
//!   kilobytes. glibc applies them from 2.36 on; against an older glibc the
//!   binaries are linked the classic way. A binary built on a newer glibc
//!   needs that glibc anyway, for its symbol versions, so this adds no
//!   requirement.
//! - Start-up code first: the functions a program runs from exec to idle
//!   (a list scripts/startup-order records), placed together at the front
//!   of the code. The kernel maps code in 64 KiB windows around each page
//!   touched, so start-up code spread over the whole binary made most of it
//!   resident. Only rust-lld understands the list (GNU ld does not), and
//!   only release builds are worth it. The agent's list also brackets the
//!   code an idle agent does not run (start-up's, reflection's) between two
//!   markers, which the agent unmaps; builds laid out by a list get
//!   `cfg(startup_code_first)` to say the markers are in place
//!   (`agent/src/platform/cold_code.rs`).
//!
//! (Each build script names this file in its own `rerun-if-changed`: the
//! path is relative to the crate.)

use std::{path::Path, process::Command};

/// The first glibc whose loader applies DT_RELR.
const RELR_SINCE: (u32, u32) = (2, 36);

fn var(key: &str) -> String {
    std::env::var(key).unwrap_or_default()
}

/// Whether the build makes binaries for the machine it runs on, Linux.
fn native_linux() -> bool {
    var("HOST") == var("TARGET") && var("CARGO_CFG_TARGET_OS") == "linux"
}

/// Ask for packed relocations in this crate's binaries where the build
/// machine's glibc (the one they will need) applies them.
pub fn pack_relative_relocations() {
    if native_linux()
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && build_glibc().is_some_and(|version| version >= RELR_SINCE)
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Hand `list` (functions, one linker name a line, `#` comments) to the
/// linker of this crate's release binaries, to be placed first.
pub fn put_startup_code_first(list: &Path) {
    println!("cargo:rerun-if-changed={}", list.display());
    println!("cargo:rustc-check-cfg=cfg(startup_code_first)");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    if native_linux() && var("PROFILE") == "release" && links_with_rust_lld() && list.exists() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        // Names the build does not have (a newer toolchain or dependency
        // renamed them) are skipped, not errors: a stale list only costs
        // memory, and `scripts/startup-order --check` catches it.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
        // The code between the list's two markers is cold
        // (agent/src/platform/cold_code.rs); only a build laid out by the
        // list may hand it back.
        println!("cargo:rustc-cfg=startup_code_first");
    }
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

/// Whether the binary is linked by rust-lld: the default for
/// x86_64-unknown-linux-gnu since Rust 1.90, unless a linker is chosen in
/// the environment or the flags.
fn links_with_rust_lld() -> bool {
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
