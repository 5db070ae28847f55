//! Measurements the benchmarks share: a process's CPU time, resident
//! memory and inotify watches from `/proc`, a description of the machine
//! and build for the tables' headings, the median and percentiles the
//! tables report, and the timing of a streamed reply (time to first token,
//! tokens per second).

/// utime + stime of a process in clock ticks (all threads, including ones
/// that already exited).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall.
    let after = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of a process in MB (0 when it cannot be read).
pub fn rss_mb(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = text
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// "N cores, CPU model, release build" for a table's heading.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let agent = crate::binary("omnipanel-agent");
    // By what the agent carries rather than where it lies: a benchmark run
    // beside a copied agent (an A/B folder) has no "release" in its path.
    let build = match has_line_tables(&agent) {
        Some(false) => "release build",
        Some(true) => "debug build",
        None if agent.components().any(|c| c.as_os_str() == "release") => "release build",
        None => "debug build",
    };
    format!("{cores} cores, {cpu}, {build}")
}

/// Whether the ELF file at `path` has a `.debug_line` section: dev builds
/// keep line tables (`debug = "line-tables-only"`), release builds strip
/// them (`strip = "debuginfo"`). `None` when it cannot be read as a
/// 64-bit little-endian ELF file.
fn has_line_tables(path: &std::path::Path) -> Option<bool> {
    let file = std::fs::read(path).ok()?;
    let bytes = |at: usize, len: usize| file.get(at..at.checked_add(len)?);
    let u16_at = |at| Some(u16::from_le_bytes(bytes(at, 2)?.try_into().ok()?) as usize);
    let u32_at = |at| Some(u32::from_le_bytes(bytes(at, 4)?.try_into().ok()?) as usize);
    let u64_at = |at| usize::try_from(u64::from_le_bytes(bytes(at, 8)?.try_into().ok()?)).ok();
    if bytes(0, 6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (table, entry, count, names) = (u64_at(0x28)?, u16_at(0x3a)?, u16_at(0x3c)?, u16_at(0x3e)?);
    let section = |i: usize| table.checked_add(i.checked_mul(entry)?);
    let names_at = u64_at(section(names)? + 0x18)?;
    Some((0..count).any(|i| {
        section(i)
            .and_then(&u32_at)
            .and_then(|name| bytes(names_at + name, 12))
            == Some(b".debug_line\0".as_slice())
    }))
}

/// The median (the upper one of an even count); sorts `values`.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The timing of one streamed reply.
#[derive(Debug, Clone, Copy)]
pub struct StreamSample {
    /// From the request to the first piece of text.
    pub first_token: std::time::Duration,
    /// Pieces of text received.
    pub tokens: usize,
    /// From the request to the end of the stream.
    pub elapsed: std::time::Duration,
}

impl StreamSample {
    /// Streamed tokens per second.
    pub fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.elapsed.as_secs_f64()
    }
}

/// Medians of a run of stream samples: time to first token in
/// milliseconds, and tokens per second.
pub fn stream_medians(samples: &[StreamSample]) -> (f64, f64) {
    let mut ttft: Vec<f64> = samples
        .iter()
        .map(|s| s.first_token.as_secs_f64() * 1000.0)
        .collect();
    let mut rate: Vec<f64> = samples
        .iter()
        .map(StreamSample::tokens_per_second)
        .collect();
    (median(&mut ttft), median(&mut rate))
}

/// A prompt of `words` distinct words (the fakes answer one token each).
pub fn word_prompt(words: usize) -> String {
    (0..words)
        .map(|i| format!("word{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `p` quantile (0.0 to 1.0) by the nearest rank; sorts `values`.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(rank).copied().unwrap_or(f64::NAN)
}

/// The kernel inotify watches a process holds: the `inotify wd:` lines of
/// its `/proc/PID/fdinfo` entries, one per watched path. `None` when the
/// folder cannot be read (another user's process, or not Linux).
pub fn inotify_watches(pid: u32) -> Option<usize> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fdinfo")).ok()?;
    Some(
        entries
            .filter_map(Result::ok)
            // An fd closed since the listing is simply not counted.
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .map(|text| {
                text.lines()
                    .filter(|line| line.starts_with("inotify wd:"))
                    .count()
            })
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dev_build_has_line_tables_and_other_files_are_not_read_as_elf() -> crate::TestResult {
        // This test is itself a dev build.
        let exe = std::env::current_exe()?;
        assert_eq!(has_line_tables(&exe), Some(true));
        let dir = tempfile::tempdir()?;
        let text = dir.path().join("not-elf");
        std::fs::write(&text, "#!/bin/sh\n")?;
        assert_eq!(has_line_tables(&text), None);
        assert_eq!(has_line_tables(&dir.path().join("missing")), None);
        Ok(())
    }
}
