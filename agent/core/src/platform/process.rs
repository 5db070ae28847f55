//! Process control: tying a child to our life (PR_SET_PDEATHSIG on Linux),
//! asking a process to stop (SIGTERM), replacing the running program
//! (`exec`), reading the signal that ended a child, and telling whether a
//! process known by its pid and start time still runs. Callers decide when;
//! this module only knows how on each OS.

use std::process::ExitStatus;

/// Make the child `command` starts get SIGTERM when this process dies, so
/// a crashed agent leaves no orphan behind. Only Linux offers this; other
/// systems rely on the caller stopping its children on the way out.
pub fn die_with_parent(command: &mut tokio::process::Command) {
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs between fork and exec and only makes one
    // async-signal-safe syscall (prctl), as pre_exec requires.
    #[allow(unsafe_code)] // The only way to set PR_SET_PDEATHSIG on a child.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
                .map_err(std::io::Error::from)
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// Ask process `pid` to stop (SIGTERM); a gone process is not an error.
/// Without signals (Windows) this does nothing and the caller's kill after
/// its grace period ends the process.
pub fn terminate(pid: u32) {
    #[cfg(unix)]
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    #[cfg(not(unix))]
    let _ = pid;
}

/// The signal that ended a process, where the OS has signals.
pub fn exit_signal(status: &ExitStatus) -> Option<i32> {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal()
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        None
    }
}

/// Replace this process with `command`, keeping the pid (a service manager
/// or waiting parent sees one continuous process). Returns only on failure.
pub fn exec(command: &mut std::process::Command) -> std::io::Error {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        #[cfg(coverage)]
        write_coverage_profile();
        command.exec()
    }
    #[cfg(not(unix))]
    {
        let _ = command;
        std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "replacing the running program is not available on this platform",
        )
    }
}

/// When process `pid` started, in an OS-specific unit that only needs to
/// differ between two processes that had the same pid (on Linux, clock
/// ticks since boot, from `/proc/PID/stat`); `None` where the process does
/// not exist, and 0 where the OS does not tell.
pub fn start_time(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The name (field 2) may hold spaces and parentheses; the fields
        // after its last ')' start with the 3rd, so the 22nd is the 20th.
        let (_, rest) = stat.rsplit_once(')')?;
        rest.split_whitespace().nth(19)?.parse().ok()
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        let alive = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .is_some_and(|pid| {
                !matches!(
                    rustix::process::test_kill_process(pid),
                    Err(rustix::io::Errno::SRCH)
                )
            });
        alive.then_some(0)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        Some(0)
    }
}

/// Write this process's coverage counts now, in an instrumented build
/// (`cargo llvm-cov` sets `cfg(coverage)`; normal builds have none of
/// this). The LLVM runtime writes them when the process exits, and exec
/// replaces the process without exiting: without this, the code that ran
/// before an exec (the update handover) would never count.
#[cfg(coverage)]
#[allow(unsafe_code)] // The LLVM profile runtime's C entry point; there is no safe one.
fn write_coverage_profile() {
    unsafe extern "C" {
        // Linked in by `-C instrument-coverage`; returns 0 on success.
        fn __llvm_profile_write_file() -> std::ffi::c_int;
    }
    // SAFETY: takes no arguments and only writes the counters to the
    // profile file named at start (LLVM_PROFILE_FILE), merging under a file
    // lock with the %m pattern; other threads still counting only make a
    // count a little stale.
    if unsafe { __llvm_profile_write_file() } != 0 {
        eprintln!("omnipanel: the coverage profile could not be written before exec");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_has_one_start_time_and_a_gone_one_none() -> std::io::Result<()> {
        let own = start_time(std::process::id());
        assert!(own.is_some());
        assert_eq!(start_time(std::process::id()), own);
        let mut child = std::process::Command::new("true").spawn()?;
        let pid = child.id();
        child.wait()?;
        assert_eq!(start_time(pid), None, "a reaped child is gone");
        Ok(())
    }

    #[tokio::test]
    async fn terminate_ends_a_child_and_its_signal_is_read() -> std::io::Result<()> {
        let mut command = tokio::process::Command::new("sleep");
        command.arg("30").kill_on_drop(true);
        die_with_parent(&mut command);
        let mut child = command.spawn()?;
        let pid = child.id().ok_or_else(|| std::io::Error::other("no pid"))?;
        terminate(pid);
        let status = child.wait().await?;
        assert_eq!(status.code(), None);
        assert_eq!(exit_signal(&status), Some(15));
        Ok(())
    }
}
