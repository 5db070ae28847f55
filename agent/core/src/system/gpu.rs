//! NVIDIA GPUs through NVML. The driver's `libnvidia-ml.so.1` is loaded at
//! run time (nvml-wrapper uses libloading), so the agent builds and runs
//! without anything NVIDIA installed: a machine without the library, or
//! with the library but no device, reports the GPU as *absent*, which is
//! not an error. Only a driver that loads but then fails is reported as an
//! error.
//!
//! `OMNIPANEL_NVML_LIBRARY` names another library file (a path, or a name
//! the dynamic loader looks up); tests point it at a file that does not
//! exist to exercise the absent path on any machine, and at a fake driver
//! (`tests/doubles/nvml/fake_nvml.c`) to read two made-up GPUs.

use std::{
    ffi::OsString,
    time::{Duration, Instant},
};

use nvml_wrapper::{
    Device, Nvml, enum_wrappers::device::TemperatureSensor, enums::device::UsedGpuMemory,
    error::NvmlError, struct_wrappers::device::ProcessInfo,
};

use crate::system::metrics::{GpuProcess, GpuReading, GpuStats};

/// Environment variable naming the NVML library to load.
pub const LIBRARY_ENV: &str = "OMNIPANEL_NVML_LIBRARY";

/// The library's file name on Linux (the unversioned `.so` comes only with
/// development packages).
const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";

/// How long an NVML that failed to initialise (driver not loaded yet, GPU
/// being reset) is left alone before the next attempt. A missing library
/// is not retried: installing a driver needs a restart of the agent anyway.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Something that reads GPUs. The real one is [`Nvidia`]; tests use fakes.
pub trait GpuSource: Send + 'static {
    /// Read every GPU; `processes` also lists the processes using them.
    fn read(&mut self, processes: bool) -> GpuReading;
}

/// NVML, loaded on first use.
pub struct Nvidia {
    library: OsString,
    state: State,
}

impl std::fmt::Debug for Nvidia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nvidia")
            .field("library", &self.library)
            .finish_non_exhaustive()
    }
}

enum State {
    NotLoaded,
    Loaded(Box<Nvml>),
    Absent(String),
    Failed { reason: String, retry_at: Instant },
}

impl Nvidia {
    /// NVML from `OMNIPANEL_NVML_LIBRARY`, else `libnvidia-ml.so.1`.
    pub fn from_env() -> Self {
        let library = std::env::var_os(LIBRARY_ENV)
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| OsString::from(DEFAULT_LIBRARY));
        Self::with_library(library)
    }

    /// NVML from a specific library file or name.
    pub fn with_library(library: OsString) -> Self {
        Self {
            library,
            state: State::NotLoaded,
        }
    }

    fn load(&mut self) {
        let retry = match &self.state {
            State::NotLoaded => true,
            State::Failed { retry_at, .. } => Instant::now() >= *retry_at,
            State::Loaded(_) | State::Absent(_) => false,
        };
        if !retry {
            return;
        }
        let library = self.library.to_string_lossy().into_owned();
        self.state = match Nvml::builder().lib_path(&self.library).init() {
            Ok(nvml) => {
                tracing::info!(library, "NVML loaded");
                State::Loaded(Box::new(nvml))
            }
            Err(NvmlError::LibloadingError(err)) => {
                tracing::info!(library, error = %err, "no NVIDIA driver library; GPUs are reported as absent");
                State::Absent(format!(
                    "no NVIDIA driver library: {library} could not be loaded"
                ))
            }
            Err(NvmlError::DriverNotLoaded | NvmlError::LibraryNotFound) => {
                State::Absent("the NVIDIA driver is not loaded".to_owned())
            }
            Err(err) => {
                tracing::warn!(library, error = %err, "NVML failed to initialise");
                State::Failed {
                    reason: format!("NVML failed to initialise: {err}"),
                    retry_at: Instant::now() + RETRY_AFTER,
                }
            }
        };
    }
}

impl GpuSource for Nvidia {
    fn read(&mut self, processes: bool) -> GpuReading {
        self.load();
        match &self.state {
            State::NotLoaded => GpuReading::NotRead,
            State::Absent(reason) => GpuReading::Absent(reason.clone()),
            State::Failed { reason, .. } => GpuReading::Error(reason.clone()),
            State::Loaded(nvml) => read_all(nvml, processes),
        }
    }
}

fn read_all(nvml: &Nvml, processes: bool) -> GpuReading {
    let count = match nvml.device_count() {
        Ok(count) => count,
        Err(err) => return GpuReading::Error(format!("cannot count GPUs: {err}")),
    };
    if count == 0 {
        return GpuReading::Absent("the NVIDIA driver reports no GPU".to_owned());
    }
    let driver_version = nvml.sys_driver_version().unwrap_or_default();
    let mut gpus = Vec::with_capacity(count as usize);
    for index in 0..count {
        match nvml.device_by_index(index) {
            Ok(device) => gpus.push(read_device(index, &device, processes)),
            Err(err) => {
                return GpuReading::Error(format!("cannot open GPU {index}: {err}"));
            }
        }
    }
    GpuReading::Present {
        driver_version,
        gpus,
    }
}

fn read_device(index: u32, device: &Device<'_>, processes: bool) -> GpuStats {
    let memory = device.memory_info().ok();
    GpuStats {
        index,
        name: device.name().unwrap_or_default(),
        uuid: device.uuid().unwrap_or_default(),
        utilization_percent: device.utilization_rates().ok().map(|u| f64::from(u.gpu)),
        memory_used: memory.as_ref().map_or(0, |m| m.used),
        memory_total: memory.as_ref().map_or(0, |m| m.total),
        temperature_celsius: device
            .temperature(TemperatureSensor::Gpu)
            .ok()
            .map(f64::from),
        // NVML reports milliwatts.
        power_watts: device.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
        processes: if processes {
            gpu_processes(device)
        } else {
            Vec::new()
        },
    }
}

/// Compute and graphics processes on a device, merged by pid. A driver too
/// old for these entry points just lists none.
fn gpu_processes(device: &Device<'_>) -> Vec<GpuProcess> {
    let compute = device.running_compute_processes().unwrap_or_default();
    let graphics = device.running_graphics_processes().unwrap_or_default();
    merge_processes(compute.into_iter().chain(graphics).map(to_process))
}

fn to_process(info: ProcessInfo) -> GpuProcess {
    GpuProcess {
        pid: info.pid,
        name: String::new(),
        memory: match info.used_gpu_memory {
            UsedGpuMemory::Used(bytes) => Some(bytes),
            UsedGpuMemory::Unavailable => None,
        },
    }
}

/// One entry per pid; a process listed as compute and graphics holds one
/// allocation, so the larger figure is kept rather than the sum.
fn merge_processes(entries: impl Iterator<Item = GpuProcess>) -> Vec<GpuProcess> {
    let mut merged: Vec<GpuProcess> = Vec::new();
    for entry in entries {
        match merged.iter_mut().find(|p| p.pid == entry.pid) {
            Some(existing) => {
                existing.memory = match (existing.memory, entry.memory) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            None => merged.push(entry),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const GIB: u64 = 1024 * 1024 * 1024;

    /// The fake driver library, built by the C compiler (which building
    /// this crate needs anyway) into `dir` with `switch` choosing how it
    /// behaves (see the file).
    fn fake_nvml(dir: &Path, switch: Option<&str>) -> OsString {
        let source = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/doubles/nvml/fake_nvml.c"
        );
        let library = dir.join(format!("libfake-nvml-{}.so", switch.unwrap_or("gpus")));
        let mut cc =
            std::process::Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()));
        cc.args(["-shared", "-fPIC", "-o"])
            .arg(&library)
            .arg(source);
        if let Some(switch) = switch {
            cc.arg(format!("-D{switch}"));
        }
        let status = cc.status().expect("the C compiler `cc` runs");
        assert!(status.success(), "the fake NVML did not build: {status}");
        library.into_os_string()
    }

    fn read_with(switch: &str) -> GpuReading {
        let dir = tempfile::tempdir().unwrap();
        Nvidia::with_library(fake_nvml(dir.path(), Some(switch))).read(true)
    }

    #[test]
    fn gpus_and_the_processes_using_them_are_read_through_nvml() {
        let dir = tempfile::tempdir().unwrap();
        let mut nvidia = Nvidia::with_library(fake_nvml(dir.path(), None));
        assert!(format!("{nvidia:?}").contains("libfake-nvml-gpus.so"));
        let GpuReading::Present {
            driver_version,
            gpus,
        } = nvidia.read(true)
        else {
            panic!("expected GPUs");
        };
        assert_eq!(driver_version, "999.1.2-fake");
        let process = |pid, memory| GpuProcess {
            pid,
            name: String::new(),
            memory,
        };
        assert_eq!(
            gpus,
            [
                GpuStats {
                    index: 0,
                    name: "Fake GPU 9000".into(),
                    uuid: "GPU-00000000-fake-0000-0000-000000000000".into(),
                    utilization_percent: Some(37.0),
                    memory_used: 6 * GIB,
                    memory_total: 24 * GIB,
                    temperature_celsius: Some(55.0),
                    power_watts: Some(123.456),
                    // Listed as compute (4 GiB) and graphics (1 GiB): one
                    // allocation, the larger figure.
                    processes: vec![process(4242, Some(4 * GIB)), process(4343, None)],
                },
                // What a GPU does not support is left out, not an error.
                GpuStats {
                    index: 1,
                    name: "Fake GPU 100".into(),
                    uuid: String::new(),
                    utilization_percent: None,
                    memory_used: 0,
                    memory_total: 8 * GIB,
                    temperature_celsius: None,
                    power_watts: None,
                    processes: Vec::new(),
                },
            ]
        );
        // Without processes, none are asked for.
        let again = nvidia.read(false);
        assert_eq!(again.gpus().len(), 2);
        assert!(again.gpus().iter().all(|g| g.processes.is_empty()));
    }

    #[test]
    fn a_driver_not_loaded_or_without_a_gpu_means_absent() {
        match read_with("FAKE_NVML_NOT_LOADED") {
            GpuReading::Absent(reason) => {
                assert_eq!(reason, "the NVIDIA driver is not loaded");
            }
            other => panic!("expected absent, got {other:?}"),
        }
        match read_with("FAKE_NVML_NO_GPU") {
            GpuReading::Absent(reason) => {
                assert_eq!(reason, "the NVIDIA driver reports no GPU");
            }
            other => panic!("expected absent, got {other:?}"),
        }
    }

    #[test]
    fn a_failing_driver_is_an_error_that_says_what_failed() {
        let dir = tempfile::tempdir().unwrap();
        let mut nvidia = Nvidia::with_library(fake_nvml(dir.path(), Some("FAKE_NVML_INIT_FAILS")));
        let first = nvidia.read(true);
        match &first {
            GpuReading::Error(reason) => {
                assert!(reason.starts_with("NVML failed to initialise"), "{reason}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
        // Not tried again at once: the same error until RETRY_AFTER.
        assert_eq!(nvidia.read(true), first);
        match read_with("FAKE_NVML_COUNT_FAILS") {
            GpuReading::Error(reason) => {
                assert!(reason.starts_with("cannot count GPUs"), "{reason}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
        match read_with("FAKE_NVML_OPEN_FAILS") {
            GpuReading::Error(reason) => {
                assert!(reason.starts_with("cannot open GPU 1"), "{reason}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_library_means_absent_not_failed() {
        let mut nvidia =
            Nvidia::with_library(OsString::from("/nonexistent/omnipanel/libnvidia-ml.so.1"));
        match nvidia.read(true) {
            GpuReading::Absent(reason) => assert!(reason.contains("no NVIDIA"), "{reason}"),
            other => panic!("expected absent, got {other:?}"),
        }
        // Asked again, it stays absent without trying to load again.
        assert!(matches!(nvidia.read(false), GpuReading::Absent(_)));
    }

    #[test]
    fn processes_are_merged_by_pid() {
        let p = |pid, memory| GpuProcess {
            pid,
            name: String::new(),
            memory,
        };
        let merged = merge_processes(
            vec![p(1, Some(10)), p(2, None), p(1, Some(4)), p(2, Some(7))].into_iter(),
        );
        assert_eq!(merged, vec![p(1, Some(10)), p(2, Some(7))]);
    }
}
