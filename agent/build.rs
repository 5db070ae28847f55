//! Build script: link the agent with packed relative relocations (DT_RELR)
//! where the C library understands them. A position-independent Rust
//! binary carries tens of thousands of relative relocations; as classic
//! RELA entries they took 1.2 MB of the agent's file and of its resident
//! memory, read once at start and never again. Packed, they take a few
//! kilobytes. glibc applies them from 2.36 on; a binary built against an
//! older glibc (which could not apply them) is linked the classic way. A
//! binary built on a newer glibc needs that glibc anyway, for its symbol
//! versions, so this adds no requirement of its own.

use std::process::Command;

/// The first glibc whose loader applies DT_RELR.
const RELR_SINCE: (u32, u32) = (2, 36);

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
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
