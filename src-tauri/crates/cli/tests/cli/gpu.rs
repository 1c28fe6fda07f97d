//! `comfyfleet gpu` on this machine (which has no NVIDIA GPU).

use crate::Cli;

#[test]
fn cli_gpu_json_reports_the_machine_and_no_nvidia_gpu_without_error() {
    let cli = Cli::new();
    let out = cli.ok(&["gpu", "--json"], None);
    let facts: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(facts["ram_total"].as_u64().unwrap() > 0);
    assert!(facts["cpu_cores"].as_u64().unwrap() > 0);
    let gpus = facts["gpu"]["gpus"].as_array().unwrap();
    let nvidia = gpus.iter().any(|g| g["vendor"] == "nvidia");
    if !nvidia {
        let why = facts["gpu"]["nvml_unavailable"].as_str().unwrap();
        assert!(why.contains("NVML") || why.contains("NVIDIA"), "{why}");
    }
    let text = cli.ok(&["gpu"], None);
    assert!(text.contains("RAM:") && text.contains("CPU:"), "{text}");
    if !nvidia {
        assert!(text.contains("NVIDIA: not available"), "{text}");
    }
}
