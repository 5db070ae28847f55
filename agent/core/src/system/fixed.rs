//! A fixed reading of the machine, for screenshot tests only: with
//! `OMNIPANEL_TEST_METRICS=1` in the agent's environment, every reading is
//! the same made-up machine (23% CPU, 6.0 GiB of 16 GiB used, 120 KiB/s in
//! and 24 KiB/s out), so the panel's Overview looks the same on every
//! machine and every run. Never set it outside tests: the agent would
//! report a machine that is not there.

use std::time::Instant;

use crate::{
    error::Result,
    store::now_ms,
    system::{
        metrics::{
            CpuStats, DiskStats, GpuReading, LoadStats, MemoryStats, NetworkStats, ProcessListing,
            ProcessOrder, Sample,
        },
        probe::{OllamaHint, SampleSource},
    },
};

/// The environment variable that turns the fixed reading on (`1`).
pub const ENV: &str = "OMNIPANEL_TEST_METRICS";

const GIB: u64 = 1 << 30;

/// Whether the environment asks for the fixed reading.
pub fn wanted() -> bool {
    std::env::var(ENV).is_ok_and(|v| v.trim() == "1")
}

/// Always the same machine.
#[derive(Debug)]
pub struct Fixed {
    epoch: Instant,
}

impl Fixed {
    /// A fixed source; alert hold times still run on a real clock.
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }
}

impl Default for Fixed {
    fn default() -> Self {
        Self::new()
    }
}

impl SampleSource for Fixed {
    fn sample(&mut self, _ollama: OllamaHint) -> Result<Sample> {
        Ok(Sample {
            time_ms: now_ms(),
            mono_ms: i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(i64::MAX),
            run: 0,
            cpu: CpuStats {
                usage_percent: 23.0,
                per_core: vec![20.0, 26.0],
                physical_cores: 2,
                brand: "Test CPU".to_owned(),
            },
            load: LoadStats {
                one: 0.5,
                five: 0.4,
                fifteen: 0.3,
            },
            memory: MemoryStats {
                total: 16 * GIB,
                used: 6 * GIB,
                available: 10 * GIB,
                swap_total: 0,
                swap_used: 0,
            },
            disks: vec![DiskStats {
                mount_point: "/".to_owned(),
                file_system: "ext4".to_owned(),
                device: "/dev/test".to_owned(),
                total: 512 * GIB,
                available: 384 * GIB,
                read_only: false,
                removable: false,
            }],
            networks: vec![NetworkStats {
                interface: "eth0".to_owned(),
                rx_per_second: 120.0 * 1024.0,
                tx_per_second: 24.0 * 1024.0,
                rx_total: 0,
                tx_total: 0,
            }],
            agent: None,
            ollama: None,
            gpu: GpuReading::Absent("no GPU in the test machine".to_owned()),
            uptime_seconds: 3600,
            hostname: "omnipanel-test".to_owned(),
        })
    }

    fn processes(&mut self, _order: ProcessOrder, _limit: usize) -> Result<ProcessListing> {
        Ok(ProcessListing::default())
    }

    fn gpu_memory(&mut self) -> Option<(u64, u64)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reading_is_the_same_machine() -> Result<()> {
        let mut fixed = Fixed::new();
        let first = fixed.sample(OllamaHint::default())?;
        let second = fixed.sample(OllamaHint::default())?;
        assert_eq!(first.cpu, second.cpu);
        assert_eq!(first.memory, second.memory);
        assert_eq!(first.networks, second.networks);
        assert_eq!(first.memory.used_percent(), Some(37.5));
        Ok(())
    }
}
