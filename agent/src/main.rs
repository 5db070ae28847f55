//! `omnipanel-agent`: the agent's executable, which is also the `omnipanel`
//! CLI when started under that name (`program.rs` chooses).

use std::process::ExitCode;

use omnipanel_agent::platform::memory;

/// The process's allocator, chosen per OS (`platform/memory.rs`: jemalloc
/// on Linux, where glibc's malloc fragmented under long loads).
#[global_allocator]
static ALLOCATOR: memory::Allocator = memory::ALLOCATOR;

fn main() -> ExitCode {
    omnipanel_agent::program::main()
}
