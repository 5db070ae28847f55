//! Reading the machine: [`MachineProbe`] turns sysinfo, statvfs, the
//! kernel's process files and NVML into a [`Sample`]. Every method blocks
//! (file reads, and a short sleep when CPU counters need a second reading),
//! so callers run it on the blocking pool. The sampler reaches it through
//! the [`SampleSource`] trait so its scheduling is tested with fakes.

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, Pid, ProcessRefreshKind,
    ProcessesToUpdate,
};

use crate::{
    error::{Error, Result},
    store::now_ms,
    system::{
        gpu::GpuSource,
        metrics::{
            CpuStats, DiskStats, GpuReading, LoadStats, MemoryStats, NetworkStats, ProcessListing,
            ProcessOrder, ProcessStats, Sample,
        },
        processes::{self, ProcessTable},
    },
};

/// What the probe needs to know about the Ollama server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OllamaHint {
    /// Pid of a server OmniPanel started.
    pub pid: Option<u32>,
    /// A server started elsewhere answers (its pid must be looked up).
    pub external: bool,
}

/// Anything that can read the machine. Methods block.
pub trait SampleSource: Send + 'static {
    /// Take a reading.
    fn sample(&mut self, ollama: OllamaHint) -> Result<Sample>;
    /// The top processes.
    fn processes(&mut self, order: ProcessOrder, limit: usize) -> Result<ProcessListing>;
    /// Free and total memory of the GPU with the most free memory.
    fn gpu_memory(&mut self) -> Option<(u64, u64)>;
}

/// Counters older than this are read twice before a reading, so rates
/// describe the moment rather than the time since the previous reading.
const STALE_AFTER: Duration = Duration::from_secs(10);

/// The mount table is re-read this often (usage is read every time).
const DISK_LIST_EVERY: Duration = Duration::from_secs(30);

/// How often a server started elsewhere is looked for in the process
/// table while its pid is unknown.
const EXTERNAL_SCAN_EVERY: Duration = Duration::from_secs(60);

/// Most processes counted as the Ollama server's tree.
const OLLAMA_TREE_LIMIT: usize = 64;

/// The real machine.
pub struct MachineProbe {
    /// CPU and memory.
    system: sysinfo::System,
    /// The agent's own and Ollama's processes, and nothing else.
    tracked: sysinfo::System,
    tracked_pids: BTreeSet<u32>,
    disks: Disks,
    disks_listed_at: Option<Instant>,
    networks: Networks,
    previous_net: HashMap<String, (u64, u64)>,
    counters_read_at: Option<Instant>,
    gpu: Box<dyn GpuSource>,
    own_pid: u32,
    external_ollama: Option<u32>,
    external_scanned_at: Option<Instant>,
    table: Option<ProcessTable>,
    epoch: Instant,
    hostname: String,
    physical_cores: u32,
}

impl std::fmt::Debug for MachineProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineProbe")
            .field("tracked_pids", &self.tracked_pids)
            .field("disks", &self.disks.len())
            .finish_non_exhaustive()
    }
}

fn sysinfo_error(err: impl std::fmt::Display) -> Error {
    Error::internal(format!("cannot read system figures: {err}"))
}

impl MachineProbe {
    /// A probe reading GPUs through `gpu`.
    pub fn new(gpu: Box<dyn GpuSource>) -> Result<Self> {
        let system = sysinfo::System::new().map_err(sysinfo_error)?;
        let tracked = sysinfo::System::new().map_err(sysinfo_error)?;
        Ok(Self {
            system,
            tracked,
            tracked_pids: BTreeSet::new(),
            disks: Disks::new().map_err(sysinfo_error)?,
            disks_listed_at: None,
            networks: Networks::new().map_err(sysinfo_error)?,
            previous_net: HashMap::new(),
            counters_read_at: None,
            gpu,
            own_pid: std::process::id(),
            external_ollama: None,
            external_scanned_at: None,
            table: None,
            epoch: Instant::now(),
            hostname: sysinfo::System::host_name().unwrap_or_default(),
            physical_cores: sysinfo::System::physical_core_count()
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
        })
    }

    /// Read the rate counters (CPU, network, tracked processes).
    fn read_counters(&mut self, pids: &BTreeSet<u32>) {
        self.system
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        self.networks.refresh(true);
        if *pids != self.tracked_pids {
            // A fresh table forgets processes no longer tracked (a runner
            // that exited, a server that was replaced).
            if let Ok(fresh) = sysinfo::System::new() {
                self.tracked = fresh;
            }
            self.tracked_pids.clone_from(pids);
        }
        let list: Vec<Pid> = pids.iter().map(|p| Pid::from_u32(*p)).collect();
        self.tracked.refresh_processes_specifics(
            ProcessesToUpdate::Some(&list),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
    }

    fn ollama_pid(&mut self, hint: OllamaHint) -> Option<u32> {
        if let Some(pid) = hint.pid {
            self.external_ollama = None;
            return Some(pid);
        }
        if !hint.external {
            self.external_ollama = None;
            self.external_scanned_at = None;
            return None;
        }
        if let Some(pid) = self.external_ollama
            && std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            return Some(pid);
        }
        let due = self
            .external_scanned_at
            .is_none_or(|at| at.elapsed() >= EXTERNAL_SCAN_EVERY);
        if due {
            self.external_scanned_at = Some(Instant::now());
            self.external_ollama = processes::find_ollama_server();
        }
        self.external_ollama
    }

    fn disks(&mut self) -> Vec<DiskStats> {
        let list_due = self
            .disks_listed_at
            .is_none_or(|at| at.elapsed() >= DISK_LIST_EVERY);
        if list_due {
            self.disks
                .refresh_specifics(true, DiskRefreshKind::nothing().with_storage().with_kind());
            self.disks_listed_at = Some(Instant::now());
        } else {
            for disk in self.disks.iter_mut() {
                disk.refresh_specifics(DiskRefreshKind::nothing().with_storage());
            }
        }
        let mut out: Vec<(Option<u64>, DiskStats)> = Vec::new();
        for disk in self.disks.iter() {
            let mount_point = disk.mount_point();
            // Files bind-mounted into containers (/etc/hosts) are not disks.
            if !mount_point.is_dir() || disk.total_space() == 0 {
                continue;
            }
            let stats = DiskStats {
                mount_point: mount_point.display().to_string(),
                file_system: disk.file_system().to_string_lossy().into_owned(),
                device: disk.name().to_string_lossy().into_owned(),
                total: disk.total_space(),
                available: disk.available_space(),
                read_only: disk.is_read_only(),
                removable: disk.is_removable(),
            };
            // One entry per file system: bind mounts repeat it.
            match out
                .iter_mut()
                .find(|(id, _)| id.is_some() && *id == disk.id())
            {
                Some((_, existing)) => {
                    if stats.mount_point.len() < existing.mount_point.len() {
                        *existing = stats;
                    }
                }
                None => out.push((disk.id(), stats)),
            }
        }
        let mut disks: Vec<DiskStats> = out.into_iter().map(|(_, d)| d).collect();
        disks.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        disks
    }

    fn networks(&mut self, elapsed: Duration) -> Vec<NetworkStats> {
        let seconds = elapsed.as_secs_f64();
        let mut out = Vec::new();
        let mut seen = HashMap::new();
        for (name, data) in self.networks.iter() {
            let name = name.to_string_lossy().into_owned();
            let (rx, tx) = (data.total_received(), data.total_transmitted());
            let rate = |now: u64, before: Option<u64>| match before {
                // Precision loss above 2^53 bytes is irrelevant for a rate.
                #[allow(clippy::cast_precision_loss)]
                Some(before) if seconds > 0.0 && now >= before => (now - before) as f64 / seconds,
                _ => 0.0,
            };
            let previous = self.previous_net.get(&name).copied();
            out.push(NetworkStats {
                interface: name.clone(),
                rx_per_second: rate(rx, previous.map(|p| p.0)),
                tx_per_second: rate(tx, previous.map(|p| p.1)),
                rx_total: rx,
                tx_total: tx,
            });
            seen.insert(name, (rx, tx));
        }
        self.previous_net = seen;
        out.sort_by(|a, b| a.interface.cmp(&b.interface));
        out
    }

    fn process_stats(
        &self,
        pids: &BTreeSet<u32>,
        root: u32,
        gpu: &GpuReading,
    ) -> Option<ProcessStats> {
        let main = self.tracked.process(Pid::from_u32(root))?;
        let mut stats = ProcessStats {
            pid: root,
            name: main.name().to_string_lossy().into_owned(),
            ..ProcessStats::default()
        };
        for pid in pids {
            if let Some(process) = self.tracked.process(Pid::from_u32(*pid)) {
                stats.cpu_percent += f64::from(process.cpu_usage());
                stats.rss += process.memory();
                stats.process_count += 1;
            }
        }
        stats.vram = gpu
            .gpus()
            .iter()
            .flat_map(|g| &g.processes)
            .filter(|p| pids.contains(&p.pid))
            .filter_map(|p| p.memory)
            .sum();
        Some(stats)
    }
}

impl SampleSource for MachineProbe {
    fn sample(&mut self, ollama: OllamaHint) -> Result<Sample> {
        self.table = self
            .table
            .take()
            .filter(|t| t.refreshed_at().elapsed() < processes::DROP_AFTER);
        let ollama_pid = self.ollama_pid(ollama);
        let ollama_tree = ollama_pid
            .map(|pid| processes::process_tree(pid, OLLAMA_TREE_LIMIT))
            .unwrap_or_default();
        let mut pids = ollama_tree.clone();
        pids.insert(self.own_pid);

        let stale = self
            .counters_read_at
            .is_none_or(|at| at.elapsed() >= STALE_AFTER);
        if stale {
            self.read_counters(&pids);
            self.counters_read_at = Some(Instant::now());
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        }
        let since = self
            .counters_read_at
            .map_or(Duration::ZERO, |at| at.elapsed());
        self.read_counters(&pids);
        self.counters_read_at = Some(Instant::now());
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::everything());

        let mut gpu = self.gpu.read(true);
        if let GpuReading::Present { gpus, .. } = &mut gpu {
            for process in gpus.iter_mut().flat_map(|g| g.processes.iter_mut()) {
                if let Some(found) = self.tracked.process(Pid::from_u32(process.pid)) {
                    process.name = found.name().to_string_lossy().into_owned();
                }
            }
        }
        let cpus = self.system.cpus();
        let load = sysinfo::System::load_average().unwrap_or_default();
        let total = self.system.total_memory();
        let available = self.system.available_memory();
        let own = BTreeSet::from([self.own_pid]);
        Ok(Sample {
            time_ms: now_ms(),
            mono_ms: i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(i64::MAX),
            run: 0,
            cpu: CpuStats {
                usage_percent: f64::from(self.system.global_cpu_usage()),
                per_core: cpus.iter().map(|c| f64::from(c.usage())).collect(),
                physical_cores: self.physical_cores,
                brand: cpus
                    .first()
                    .map(|c| c.brand().trim().to_owned())
                    .unwrap_or_default(),
            },
            load: LoadStats {
                one: load.one,
                five: load.five,
                fifteen: load.fifteen,
            },
            memory: MemoryStats {
                total,
                used: total.saturating_sub(available),
                available,
                swap_total: self.system.total_swap(),
                swap_used: self.system.used_swap(),
            },
            disks: self.disks(),
            networks: self.networks(since),
            agent: self.process_stats(&own, self.own_pid, &gpu),
            ollama: ollama_pid.and_then(|pid| self.process_stats(&ollama_tree, pid, &gpu)),
            gpu,
            uptime_seconds: sysinfo::System::uptime().unwrap_or(0),
            hostname: self.hostname.clone(),
        })
    }

    fn processes(&mut self, order: ProcessOrder, limit: usize) -> Result<ProcessListing> {
        let table = ProcessTable::refreshed(self.table.take())?;
        let listing = table.top(order, limit);
        self.table = Some(table);
        Ok(listing)
    }

    fn gpu_memory(&mut self) -> Option<(u64, u64)> {
        self.gpu.read(false).most_free_vram()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::gpu::Nvidia;

    fn probe() -> Result<MachineProbe> {
        MachineProbe::new(Box::new(Nvidia::with_library(
            "/nonexistent/libnvidia-ml.so.1".into(),
        )))
    }

    #[test]
    fn a_reading_describes_this_machine() -> Result<()> {
        let mut probe = probe()?;
        let sample = probe.sample(OllamaHint::default())?;
        assert!(!sample.cpu.per_core.is_empty());
        assert!((0.0..=100.0).contains(&sample.cpu.usage_percent));
        assert!(sample.memory.total > 0);
        assert!(sample.memory.used <= sample.memory.total);
        let agent = sample
            .agent
            .as_ref()
            .ok_or_else(|| Error::internal("no own process"))?;
        assert_eq!(agent.pid, std::process::id());
        assert!(agent.rss > 0);
        assert!(sample.ollama.is_none());
        assert!(matches!(sample.gpu, GpuReading::Absent(_)));
        // The second reading is no longer stale, so it is not primed; its
        // network rates are measured against the first.
        let second = probe.sample(OllamaHint::default())?;
        assert!(second.mono_ms >= sample.mono_ms);
        Ok(())
    }

    #[test]
    fn a_child_tree_counts_as_the_ollama_server() -> Result<()> {
        let mut probe = probe()?;
        let sample = probe.sample(OllamaHint {
            pid: Some(std::process::id()),
            external: false,
        })?;
        let ollama = sample.ollama.ok_or_else(|| Error::internal("no tree"))?;
        assert_eq!(ollama.pid, std::process::id());
        assert!(ollama.process_count >= 1);
        Ok(())
    }
}
