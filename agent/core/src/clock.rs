//! The time retention decides by. Deleting what has grown old (activity-log
//! rows, rotated log files) trusts the wall clock, and the wall clock can
//! jump: an RTC reset, a wrong NTP answer, a user setting the date by hand.
//! A jump of a year forward would delete a year of history in one write,
//! and nothing brings it back when the clock is corrected. So retention
//! asks [`retention_now`]: the wall clock, but never ahead of the wall
//! clock this process started with plus the monotonic time since, which no
//! clock change moves. A clock that jumps forward is not believed; one that
//! jumps back is (it only keeps more). Monotonic time stops while the
//! machine sleeps, so after a suspend retention runs behind by the time
//! slept: things are kept a little longer, never deleted early.

use std::{
    sync::OnceLock,
    time::{Duration, Instant, SystemTime},
};

/// The wall clock and the monotonic clock, read together once.
fn origin() -> (SystemTime, Instant) {
    static ORIGIN: OnceLock<(SystemTime, Instant)> = OnceLock::new();
    *ORIGIN.get_or_init(|| (SystemTime::now(), Instant::now()))
}

/// The time to judge ages by for deleting (see the module text).
pub fn retention_now() -> SystemTime {
    let (wall, mono) = origin();
    bounded(SystemTime::now(), wall, mono.elapsed())
}

/// [`retention_now`] in milliseconds since the Unix epoch.
pub fn retention_now_ms() -> i64 {
    retention_now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `now`, but no later than `started + elapsed`.
fn bounded(now: SystemTime, started: SystemTime, elapsed: Duration) -> SystemTime {
    match started.checked_add(elapsed) {
        Some(limit) if now > limit => limit,
        _ => now,
    }
}

/// Read the origin now, so a jump before the first deletion is seen too.
pub fn start() {
    let _ = origin();
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_clock_that_jumps_forward_is_not_believed_and_one_that_goes_back_is() {
        let started = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let elapsed = Duration::from_secs(3600);
        let honest = started + elapsed;
        assert_eq!(bounded(honest, started, elapsed), honest);
        assert_eq!(bounded(started + 400 * DAY, started, elapsed), honest);
        let back = started - DAY;
        assert_eq!(bounded(back, started, elapsed), back);
    }

    #[test]
    fn retention_now_is_never_ahead_of_the_wall_clock() {
        start();
        let before = SystemTime::now();
        let judged = retention_now();
        assert!(judged <= SystemTime::now());
        assert!(before.duration_since(judged).unwrap_or_default() < Duration::from_secs(1));
    }
}
