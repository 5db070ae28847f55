//! How many folders the agent may watch, and what it tells the user when
//! it cannot watch them all. Two limits apply: the agent's own
//! (`files.max_watches`, shared by every open project, so the agent never
//! takes the whole per-user budget that editors draw on too) and the
//! kernel's (`fs.inotify.max_user_watches`, per user). Hitting either puts
//! the project in degraded mode; the message names the limit and the exact
//! command or key that raises it.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The kernel setting that limits inotify watches per user.
const SYSCTL_WATCHES: &str = "fs.inotify.max_user_watches";

/// Where the kernel publishes [`SYSCTL_WATCHES`].
const SYSCTL_WATCHES_PATH: &str = "/proc/sys/fs/inotify/max_user_watches";

/// Which limit stopped the watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The agent's `files.max_watches`.
    Configured {
        /// Its value.
        max: usize,
    },
    /// The kernel refused another watch (ENOSPC: `fs.inotify.max_user_watches`).
    Kernel,
}

/// The watches every project of this agent draws from.
#[derive(Debug)]
pub struct WatchBudget {
    /// Most watches in all (0: no limit of the agent's own).
    max: usize,
    used: AtomicUsize,
}

impl WatchBudget {
    /// A budget of `max` watches (0 for none but the kernel's).
    pub fn new(max: usize) -> Self {
        Self {
            max,
            used: AtomicUsize::new(0),
        }
    }

    /// Take one watch, or say which limit is reached.
    pub fn take(&self) -> Result<(), LimitKind> {
        if self.max == 0 {
            self.used.fetch_add(1, Ordering::AcqRel);
            return Ok(());
        }
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.max).then_some(used + 1)
            })
            .map(|_| ())
            .map_err(|_| LimitKind::Configured { max: self.max })
    }

    /// Give `count` watches back.
    pub fn release(&self, count: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(count))
            });
    }

    /// Watches in use.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// The kernel's current per-user watch limit, where it can be read.
fn kernel_max_watches() -> Option<u64> {
    std::fs::read_to_string(SYSCTL_WATCHES_PATH)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What to set the kernel limit to: enough for this project on top of what
/// is in use, rounded up to a power of two, and never below the common
/// 524 288 that editors' documentation recommends.
fn suggested_kernel_max(current: Option<u64>, unwatched: u64) -> u64 {
    let needed = current
        .unwrap_or(0)
        .saturating_add(unwatched.saturating_mul(2));
    needed.next_power_of_two().max(524_288)
}

/// Why a project is in degraded mode and how to leave it.
pub fn degraded_detail(kind: LimitKind, watched: u64, unwatched: u64) -> String {
    degraded_detail_with(kind, watched, unwatched, kernel_max_watches())
}

fn degraded_detail_with(
    kind: LimitKind,
    watched: u64,
    unwatched: u64,
    kernel_max: Option<u64>,
) -> String {
    let head = format!(
        "{unwatched} folder(s) are not watched ({watched} are): changes inside them are not reported live, \
         and file search re-reads them when asked."
    );
    match kind {
        LimitKind::Configured { max } => format!(
            "{head} The agent's limit files.max_watches = {max} is reached; raise it \
             (`omnipanel settings set files.max_watches {}`, or 0 for no limit of the agent's own), \
             then close and reopen the project.",
            (max as u64).saturating_add(unwatched).next_power_of_two()
        ),
        LimitKind::Kernel => {
            let current =
                kernel_max.map_or_else(|| "its current value".to_owned(), |v| v.to_string());
            let suggested = suggested_kernel_max(kernel_max, unwatched);
            format!(
                "{head} The kernel's limit on watches per user is reached ({SYSCTL_WATCHES} = {current}; \
                 editors and other tools share it). Raise it with `sudo sysctl {SYSCTL_WATCHES}={suggested}`, \
                 keep it across reboots with \
                 `echo {SYSCTL_WATCHES}={suggested} | sudo tee /etc/sysctl.d/60-omnipanel.conf`, \
                 then close and reopen the project."
            )
        }
    }
}

/// Why a project cannot be watched at all (no inotify instance).
pub fn unavailable_detail(err: &std::io::Error) -> String {
    if out_of_instances(err) {
        "the project cannot be watched: the kernel's limit on inotify instances per user is reached \
         (fs.inotify.max_user_instances); raise it with `sudo sysctl fs.inotify.max_user_instances=1024`, \
         then close and reopen the project. Changes are not reported live until then."
            .to_owned()
    } else {
        format!("the project cannot be watched ({err}); changes are not reported live")
    }
}

/// Whether `err` is inotify_init's EMFILE: `max_user_instances` reached.
fn out_of_instances(err: &std::io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        err.raw_os_error() == Some(rustix::io::Errno::MFILE.raw_os_error())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = err;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_stops_at_its_maximum_and_takes_back_what_is_released() {
        let budget = WatchBudget::new(2);
        assert_eq!(budget.take(), Ok(()));
        assert_eq!(budget.take(), Ok(()));
        assert_eq!(budget.take(), Err(LimitKind::Configured { max: 2 }));
        budget.release(1);
        assert_eq!(budget.take(), Ok(()));
        budget.release(5);
        assert_eq!(budget.used(), 0);
        let unlimited = WatchBudget::new(0);
        for _ in 0..10 {
            assert_eq!(unlimited.take(), Ok(()));
        }
        assert_eq!(unlimited.used(), 10);
    }

    #[test]
    fn the_kernel_message_names_the_sysctl_with_a_value_that_fits() {
        let text = degraded_detail_with(LimitKind::Kernel, 8000, 2000, Some(8192));
        assert!(
            text.contains("2000 folder(s) are not watched (8000 are)"),
            "{text}"
        );
        assert!(
            text.contains("fs.inotify.max_user_watches = 8192"),
            "{text}"
        );
        assert!(
            text.contains("`sudo sysctl fs.inotify.max_user_watches=524288`"),
            "{text}"
        );
        assert!(text.contains("/etc/sysctl.d/"), "{text}");
        // A limit already above the usual advice grows with the need.
        let big = degraded_detail_with(LimitKind::Kernel, 1, 600_000, Some(600_000));
        assert!(big.contains("fs.inotify.max_user_watches=2097152"), "{big}");
        let unknown = degraded_detail_with(LimitKind::Kernel, 1, 1, None);
        assert!(unknown.contains("= its current value"), "{unknown}");
    }

    #[test]
    fn the_configured_message_names_the_key() {
        let text = degraded_detail_with(LimitKind::Configured { max: 10 }, 10, 30, None);
        assert!(text.contains("files.max_watches = 10"), "{text}");
        assert!(
            text.contains("omnipanel settings set files.max_watches 64"),
            "{text}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn running_out_of_instances_names_that_sysctl() {
        let text = unavailable_detail(&std::io::Error::from_raw_os_error(24));
        assert!(text.contains("fs.inotify.max_user_instances"), "{text}");
        let other = unavailable_detail(&std::io::Error::other("boom"));
        assert!(other.contains("boom"), "{other}");
    }
}
