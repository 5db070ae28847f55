//! "Will it fit?": a model's size against free VRAM, RAM and disk. The
//! verdict is a pure function of the numbers (tested without hardware);
//! the numbers come from the machine (available memory via sysinfo, free
//! disk where models are stored via statvfs, GPU memory when a GPU probe
//! reports one).

use std::{path::Path, sync::Arc};

/// Reads free and total memory of the GPU with the most free memory
/// (blocking; `None` without a GPU). The system module provides it, so
/// this module stays free of GPU details.
#[derive(Clone)]
pub struct VramSource(Arc<dyn Fn() -> Option<(u64, u64)> + Send + Sync>);

impl VramSource {
    /// Wrap a reader.
    pub fn new(read: impl Fn() -> Option<(u64, u64)> + Send + Sync + 'static) -> Self {
        Self(Arc::new(read))
    }

    /// Read now (blocking).
    pub fn read(&self) -> Option<(u64, u64)> {
        (self.0)()
    }
}

impl std::fmt::Debug for VramSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VramSource")
    }
}

/// Where a model can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitVerdict {
    /// In free VRAM.
    FitsGpu,
    /// Not in VRAM (or no GPU), but in free RAM.
    FitsCpuOnly,
    /// Not installed and not enough disk to download it.
    NoDisk,
    /// Neither in VRAM nor in RAM.
    TooLarge,
}

/// What the machine has free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    /// Free and total GPU memory, when a GPU is present.
    pub vram: Option<(u64, u64)>,
    /// Available RAM.
    pub free_ram: u64,
    /// Free disk where models are stored.
    pub free_disk: u64,
}

/// The verdict and the numbers behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitReport {
    /// Verdict.
    pub verdict: FitVerdict,
    /// Size of the model files.
    pub model_bytes: u64,
    /// Memory needed to run it.
    pub required_bytes: u64,
    /// The machine's numbers.
    pub resources: Resources,
    /// Whether it is installed.
    pub installed: bool,
    /// One sentence for people.
    pub explanation: String,
}

/// Memory to run a model: its weights plus a fifth for the KV cache and
/// compute buffers at default context, plus a fixed runtime overhead. The
/// same rule of thumb Ollama's docs give (file size + ~20 %).
pub fn required_memory(model_bytes: u64) -> u64 {
    const RUNTIME_OVERHEAD: u64 = 256 * 1024 * 1024;
    model_bytes
        .saturating_add(model_bytes / 5)
        .saturating_add(RUNTIME_OVERHEAD)
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

/// Decide where a model of `model_bytes` can run.
pub fn assess(model_bytes: u64, installed: bool, resources: Resources) -> FitReport {
    let required = required_memory(model_bytes);
    let (verdict, explanation) = if !installed && model_bytes > resources.free_disk {
        (
            FitVerdict::NoDisk,
            format!(
                "downloading needs {} but only {} of disk is free",
                gib(model_bytes),
                gib(resources.free_disk)
            ),
        )
    } else if let Some((free_vram, _)) = resources.vram.filter(|(free, _)| required <= *free) {
        (
            FitVerdict::FitsGpu,
            format!(
                "needs about {} and {} of GPU memory is free",
                gib(required),
                gib(free_vram)
            ),
        )
    } else if required <= resources.free_ram {
        let gpu = match resources.vram {
            Some((free, _)) => format!("only {} of GPU memory is free", gib(free)),
            None => "there is no supported GPU".to_owned(),
        };
        (
            FitVerdict::FitsCpuOnly,
            format!(
                "needs about {}; {gpu}, so it will run on the CPU with {} of RAM free (slower)",
                gib(required),
                gib(resources.free_ram)
            ),
        )
    } else {
        (
            FitVerdict::TooLarge,
            format!(
                "needs about {} but only {} of RAM{} is free",
                gib(required),
                gib(resources.free_ram),
                resources
                    .vram
                    .map(|(free, _)| format!(" and {} of GPU memory", gib(free)))
                    .unwrap_or_default()
            ),
        )
    };
    FitReport {
        verdict,
        model_bytes,
        required_bytes: required,
        resources,
        installed,
        explanation,
    }
}

/// Available RAM in bytes (0 when the OS will not say).
pub fn available_memory() -> u64 {
    match sysinfo::System::new() {
        Ok(mut system) => {
            system.refresh_memory();
            system.available_memory()
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot read memory figures");
            0
        }
    }
}

/// Free bytes on the file system holding `path` (or its nearest existing
/// ancestor, since the models folder may not exist yet).
pub fn free_disk(path: &Path) -> u64 {
    let mut current = Some(path);
    while let Some(candidate) = current {
        if candidate.exists() {
            return crate::platform::fs::free_bytes(candidate).unwrap_or(0);
        }
        current = candidate.parent();
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * 1024 * 1024;

    fn machine(vram: Option<u64>, ram: u64, disk: u64) -> Resources {
        Resources {
            vram: vram.map(|v| (v, 24 * GIB)),
            free_ram: ram,
            free_disk: disk,
        }
    }

    #[test]
    fn verdicts() {
        let small = 2 * GIB;
        assert_eq!(
            assess(small, false, machine(Some(8 * GIB), 16 * GIB, 100 * GIB)).verdict,
            FitVerdict::FitsGpu
        );
        assert_eq!(
            assess(small, false, machine(Some(GIB), 16 * GIB, 100 * GIB)).verdict,
            FitVerdict::FitsCpuOnly
        );
        assert_eq!(
            assess(small, false, machine(None, 16 * GIB, 100 * GIB)).verdict,
            FitVerdict::FitsCpuOnly
        );
        assert_eq!(
            assess(small, false, machine(None, 16 * GIB, GIB)).verdict,
            FitVerdict::NoDisk
        );
        // Installed models need no disk.
        assert_eq!(
            assess(small, true, machine(None, 16 * GIB, 0)).verdict,
            FitVerdict::FitsCpuOnly
        );
        assert_eq!(
            assess(40 * GIB, false, machine(Some(8 * GIB), 16 * GIB, 100 * GIB)).verdict,
            FitVerdict::TooLarge
        );
        let report = assess(40 * GIB, false, machine(None, 16 * GIB, 100 * GIB));
        assert!(report.explanation.contains("RAM"), "{}", report.explanation);
    }

    #[test]
    fn free_disk_walks_up_to_an_existing_folder() {
        assert!(free_disk(Path::new("/definitely/not/here/models")) > 0);
    }
}
