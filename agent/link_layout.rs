//! Packed relative relocations (DT_RELR) for a crate's binaries, shared by
//! the agent's and the tray's build scripts. A position-independent Rust
//! binary carries tens of thousands of relative relocations; as classic
//! RELA entries they took 1.2 MB of the agent's file and of its resident
//! memory, read once at start and never again. Packed, they take a few
//! kilobytes. glibc applies them from 2.36 on; against an older glibc the
//! binaries are linked the classic way. A binary built on a newer glibc
//! needs that glibc anyway, for its symbol versions, so this adds no
//! requirement.

use std::process::Command;

/// The first glibc whose loader applies DT_RELR.
const RELR_SINCE: (u32, u32) = (2, 36);

/// Ask for packed relocations in this crate's binaries where the build
/// machine's glibc (the one they will need) applies them.
/// (Each build script names this file in its own `rerun-if-changed`:
/// the path is relative to the crate.)
pub fn pack_relative_relocations() {
    let target_is = |key: &str, value: &str| std::env::var(key).is_ok_and(|v| v == value);
    let native = std::env::var("HOST").ok() == std::env::var("TARGET").ok();
    if native
        && target_is("CARGO_CFG_TARGET_OS", "linux")
        && target_is("CARGO_CFG_TARGET_ENV", "gnu")
        && build_glibc().is_some_and(|version| version >= RELR_SINCE)
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
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
