//! `omnipanel`, as cargo builds it: the agent's executable again, under
//! the CLI's name, so development builds have both programs. Packages
//! install one file and a link (`scripts/package`); either way the name
//! chooses the program (`program.rs`).

use std::process::ExitCode;

use omnipanel_agent::platform::memory;

/// The same allocator as `omnipanel-agent`'s: the file is the same.
#[global_allocator]
static ALLOCATOR: memory::Allocator = memory::ALLOCATOR;

fn main() -> ExitCode {
    omnipanel_agent::program::main()
}
