//! What one reading of the machine contains, as plain Rust types: CPU,
//! load, memory, disks, network rates, the agent's and Ollama's processes,
//! GPUs. Produced by the probe, shared (behind `Arc`) by every subscriber,
//! the alert evaluator and snapshots, and converted to proto by `rpc/`.

/// One reading of the machine.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sample {
    /// Wall-clock time of the reading, ms since the Unix epoch.
    pub time_ms: i64,
    /// Monotonic time of the reading, ms since the sampler was created.
    /// Alert hold times are measured on this clock, so a wall-clock step
    /// (NTP, a manual change) cannot raise or clear anything.
    pub mono_ms: i64,
    /// Which reading this is (the sampler's run counter after taking it).
    pub run: u64,
    /// Processor usage.
    pub cpu: CpuStats,
    /// Load average.
    pub load: LoadStats,
    /// RAM and swap.
    pub memory: MemoryStats,
    /// Mounted file systems.
    pub disks: Vec<DiskStats>,
    /// Network interfaces.
    pub networks: Vec<NetworkStats>,
    /// The agent's own process.
    pub agent: Option<ProcessStats>,
    /// The Ollama server and its children, when one is known.
    pub ollama: Option<ProcessStats>,
    /// GPUs.
    pub gpu: GpuReading,
    /// Seconds since boot.
    pub uptime_seconds: u64,
    /// Host name.
    pub hostname: String,
}

/// Processor usage since the previous reading.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CpuStats {
    /// All cores, 0-100.
    pub usage_percent: f64,
    /// Per logical core, 0-100.
    pub per_core: Vec<f64>,
    /// Physical cores; 0 when unknown.
    pub physical_cores: u32,
    /// Processor model.
    pub brand: String,
}

/// Load averages.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadStats {
    /// 1 minute.
    pub one: f64,
    /// 5 minutes.
    pub five: f64,
    /// 15 minutes.
    pub fifteen: f64,
}

/// RAM and swap, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryStats {
    /// Installed.
    pub total: u64,
    /// In use (total minus available).
    pub used: u64,
    /// Available without swapping.
    pub available: u64,
    /// Swap size.
    pub swap_total: u64,
    /// Swap in use.
    pub swap_used: u64,
}

impl MemoryStats {
    /// RAM in use, percent of installed.
    pub fn used_percent(&self) -> Option<f64> {
        percent(self.used, self.total)
    }

    /// Swap in use, percent of swap size; `None` without swap.
    pub fn swap_percent(&self) -> Option<f64> {
        percent(self.swap_used, self.swap_total)
    }
}

/// One mounted file system.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskStats {
    /// Mount point.
    pub mount_point: String,
    /// File system type.
    pub file_system: String,
    /// Device.
    pub device: String,
    /// Size, bytes.
    pub total: u64,
    /// Available to unprivileged users, bytes.
    pub available: u64,
    /// Read-only.
    pub read_only: bool,
    /// Removable media.
    pub removable: bool,
}

impl DiskStats {
    /// Space in use, bytes.
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.available)
    }

    /// Free space, percent of size.
    pub fn free_percent(&self) -> Option<f64> {
        percent(self.available, self.total)
    }
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetworkStats {
    /// Interface name.
    pub interface: String,
    /// Received, bytes per second since the previous reading.
    pub rx_per_second: f64,
    /// Sent, bytes per second since the previous reading.
    pub tx_per_second: f64,
    /// Received since the interface came up.
    pub rx_total: u64,
    /// Sent since the interface came up.
    pub tx_total: u64,
}

/// Resource use of a process (with its children, for Ollama).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessStats {
    /// Process id.
    pub pid: u32,
    /// Executable name.
    pub name: String,
    /// CPU, percent of one core.
    pub cpu_percent: f64,
    /// Resident memory, bytes.
    pub rss: u64,
    /// GPU memory, bytes (0 when none or unknown).
    pub vram: u64,
    /// Processes counted.
    pub process_count: u32,
}

/// Whether and what GPUs could be read.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum GpuReading {
    /// Not read yet.
    #[default]
    NotRead,
    /// No supported GPU; the text says why. Not an error.
    Absent(String),
    /// GPUs read.
    Present {
        /// Driver version.
        driver_version: String,
        /// The GPUs.
        gpus: Vec<GpuStats>,
    },
    /// The driver is there but reading failed.
    Error(String),
}

impl GpuReading {
    /// The GPUs read, if any.
    pub fn gpus(&self) -> &[GpuStats] {
        match self {
            Self::Present { gpus, .. } => gpus,
            _ => &[],
        }
    }

    /// Free and total memory of the GPU with the most free memory.
    pub fn most_free_vram(&self) -> Option<(u64, u64)> {
        self.gpus()
            .iter()
            .filter(|gpu| gpu.memory_total > 0)
            .map(|gpu| {
                (
                    gpu.memory_total.saturating_sub(gpu.memory_used),
                    gpu.memory_total,
                )
            })
            .max_by_key(|(free, _)| *free)
    }
}

/// One GPU. Fields the driver cannot report are `None`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GpuStats {
    /// NVML index.
    pub index: u32,
    /// Model.
    pub name: String,
    /// UUID.
    pub uuid: String,
    /// Utilisation, 0-100.
    pub utilization_percent: Option<f64>,
    /// Memory in use, bytes.
    pub memory_used: u64,
    /// Memory installed, bytes.
    pub memory_total: u64,
    /// Temperature, °C.
    pub temperature_celsius: Option<f64>,
    /// Power draw, W.
    pub power_watts: Option<f64>,
    /// Processes holding memory on it.
    pub processes: Vec<GpuProcess>,
}

impl GpuStats {
    /// Memory in use, percent of installed.
    pub fn memory_used_percent(&self) -> Option<f64> {
        percent(self.memory_used, self.memory_total)
    }
}

/// A process using a GPU.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GpuProcess {
    /// Process id.
    pub pid: u32,
    /// Executable name, filled in by the probe when it can see the process.
    pub name: String,
    /// Memory held, bytes, when the driver says.
    pub memory: Option<u64>,
}

/// `part` as a percentage of `whole`; `None` when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> Option<f64> {
    // Precision loss above 2^53 bytes is irrelevant for a percentage.
    #[allow(clippy::cast_precision_loss)]
    (whole > 0).then(|| part.min(whole) as f64 * 100.0 / whole as f64)
}

/// One process of a ListProcesses answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessEntry {
    /// Process id.
    pub pid: u32,
    /// Parent process id; 0 when none.
    pub parent_pid: u32,
    /// Executable name.
    pub name: String,
    /// Command line.
    pub command: String,
    /// CPU, percent of one core.
    pub cpu_percent: f64,
    /// Resident memory, bytes.
    pub rss: u64,
    /// Virtual memory, bytes.
    pub virtual_bytes: u64,
    /// Owner uid.
    pub uid: Option<u32>,
    /// Start time, ms since the Unix epoch.
    pub start_time_ms: i64,
    /// Scheduler state.
    pub status: String,
}

/// How ListProcesses orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessOrder {
    /// By CPU, highest first.
    #[default]
    Cpu,
    /// By resident memory, largest first.
    Memory,
}

/// A ListProcesses answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessListing {
    /// The top processes.
    pub processes: Vec<ProcessEntry>,
    /// Processes on the machine.
    pub total: u32,
    /// When it was taken, ms since the Unix epoch.
    pub time_ms: i64,
}

impl ProcessListing {
    /// Blank the command lines of processes not run by `own_uid` (their
    /// names stay). A process whose owner is unknown counts as foreign.
    pub fn hide_foreign_command_lines(&mut self, own_uid: u32) {
        for entry in &mut self.processes {
            if entry.uid != Some(own_uid) {
                entry.command.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_command_lines_survive_for_tokens() {
        let entry = |pid, uid: Option<u32>| ProcessEntry {
            pid,
            command: format!("tool --password=secret{pid}"),
            uid,
            ..ProcessEntry::default()
        };
        let mut listing = ProcessListing {
            processes: vec![entry(1, Some(0)), entry(2, Some(1000)), entry(3, None)],
            total: 3,
            time_ms: 0,
        };
        listing.hide_foreign_command_lines(1000);
        let commands: Vec<&str> = listing
            .processes
            .iter()
            .map(|p| p.command.as_str())
            .collect();
        assert_eq!(commands, ["", "tool --password=secret2", ""]);
    }

    #[test]
    fn percentages_handle_zero_and_overflow() {
        assert_eq!(percent(1, 0), None);
        assert_eq!(percent(50, 200), Some(25.0));
        assert_eq!(percent(300, 200), Some(100.0));
    }

    #[test]
    fn most_free_vram_picks_the_emptiest_gpu() {
        let gpu = |used, total| GpuStats {
            memory_used: used,
            memory_total: total,
            ..GpuStats::default()
        };
        let reading = GpuReading::Present {
            driver_version: "1".into(),
            gpus: vec![gpu(10, 24), gpu(2, 20), gpu(0, 0)],
        };
        assert_eq!(reading.most_free_vram(), Some((18, 20)));
        assert_eq!(GpuReading::Absent("none".into()).most_free_vram(), None);
    }
}
