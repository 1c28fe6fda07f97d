//! The machine an install would run on: OS, CPU, RAM, free disk at a path, and its GPUs.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::gpu::GpuReport;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SystemFacts {
    /// "linux", "macos", "windows".
    pub os: String,
    /// E.g. "Linux 12 Debian GNU/Linux 12 (bookworm)".
    pub os_version: String,
    /// E.g. "x86_64", "aarch64".
    pub arch: String,
    pub cpu: String,
    pub cpu_cores: u32,
    pub ram_total: u64,
    pub ram_available: u64,
    pub gpu: GpuReport,
}

/// Free space for the volume holding `path`, or its nearest existing ancestor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct DiskSpace {
    /// The folder that was measured (the path itself, or the nearest parent that exists).
    pub measured: String,
    pub mount_point: String,
    pub available: u64,
    pub total: u64,
}

/// Collect the facts (GPUs through NVML when present). Takes tens of milliseconds.
pub fn facts() -> SystemFacts {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_memory(MemoryRefreshKind::nothing().with_ram())
            .with_cpu(CpuRefreshKind::nothing()),
    );
    let cpu = sys
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "unknown CPU".into());
    SystemFacts {
        os: std::env::consts::OS.into(),
        os_version: System::long_os_version().unwrap_or_else(|| std::env::consts::OS.into()),
        arch: System::cpu_arch(),
        cpu,
        cpu_cores: sys.cpus().len() as u32,
        ram_total: sys.total_memory(),
        ram_available: sys.available_memory(),
        gpu: crate::gpu::detect(),
    }
}

/// The nearest existing folder at or above `path` (an install path usually does not exist yet).
pub fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    abs.ancestors().find(|p| p.is_dir()).map(Path::to_path_buf)
}

/// The mount point in `mounts` that holds `path`: the longest one that is a prefix of it. Pure.
pub fn volume_of<'a>(path: &Path, mounts: &'a [PathBuf]) -> Option<&'a PathBuf> {
    mounts
        .iter()
        .filter(|m| path.starts_with(m))
        .max_by_key(|m| m.components().count())
}

/// Free and total space of the volume that `path` would be written to.
pub fn disk_space(path: &Path) -> Option<DiskSpace> {
    let measured = existing_ancestor(path)?;
    let measured = measured.canonicalize().unwrap_or(measured);
    let disks = sysinfo::Disks::new_with_refreshed_list();
    let mounts: Vec<PathBuf> = disks
        .list()
        .iter()
        .map(|d| d.mount_point().to_path_buf())
        .collect();
    let mount = volume_of(&measured, &mounts)?;
    let disk = disks.list().iter().find(|d| d.mount_point() == mount)?;
    Some(DiskSpace {
        measured: measured.display().to_string(),
        mount_point: mount.display().to_string(),
        available: disk.available_space(),
        total: disk.total_space(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_volume_is_the_longest_mount_point_holding_the_path() {
        let mounts: Vec<PathBuf> = ["/", "/home", "/home/ann/models", "/mnt"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let v = |p: &str| volume_of(Path::new(p), &mounts).map(|m| m.display().to_string());
        assert_eq!(v("/home/ann/ComfyUI").as_deref(), Some("/home"));
        assert_eq!(
            v("/home/ann/models/sdxl").as_deref(),
            Some("/home/ann/models")
        );
        assert_eq!(
            v("/homeless").as_deref(),
            Some("/"),
            "a prefix of the name is not a parent"
        );
        assert_eq!(v("/opt/x").as_deref(), Some("/"));
    }

    #[test]
    fn system_measures_the_nearest_existing_parent_of_a_new_install_path() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("not/yet/created");
        assert_eq!(existing_ancestor(&target).unwrap(), dir.path());
        let space = disk_space(&target).expect("the temp volume is found");
        assert!(space.total > 0 && space.available <= space.total);
    }

    #[test]
    fn system_facts_on_this_machine_are_complete() {
        let f = facts();
        assert!(f.ram_total > 0 && f.ram_available <= f.ram_total);
        assert!(f.cpu_cores > 0);
        assert!(!f.os.is_empty() && !f.arch.is_empty());
    }
}
