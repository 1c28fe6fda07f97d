//! The local GPU's power draw sampled (through NVML) while a local job runs, for its electricity cost: a mean of
//! samples, the GPU alone. No NVIDIA GPU (or no NVML): no samples, and the job's cost says so.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Reads the draw now in milliwatts (`None` when it cannot be read).
pub type PowerReader = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// Every NVIDIA GPU's draw summed, through NVML.
pub fn nvml_reader() -> PowerReader {
    Arc::new(|| {
        let draws = crate::gpu::power_draw_mw();
        (!draws.is_empty()).then(|| draws.iter().map(|&mw| mw as u64).sum())
    })
}

/// Samples a reader every `interval` on a blocking thread (NVML calls block) until finished.
pub struct PowerSampler {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<(u64, u64)>,
}

impl PowerSampler {
    pub fn start(interval: Duration, read: PowerReader) -> PowerSampler {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let (mut sum, mut n) = (0u64, 0u64);
            loop {
                let r = read.clone();
                if let Ok(Some(mw)) = tokio::task::spawn_blocking(move || r()).await {
                    sum = sum.saturating_add(mw);
                    n += 1;
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stopped.changed() => break,
                }
            }
            (sum, n)
        });
        PowerSampler { stop, task }
    }

    /// The mean draw in milliwatts over the samples taken, `None` when none could be read.
    pub async fn finish(self) -> Option<u64> {
        let _ = self.stop.send(true);
        let (sum, n) = self.task.await.ok()?;
        (n > 0).then(|| sum / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test]
    async fn power_sampler_averages_what_it_reads_and_says_when_it_read_nothing() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        // 100 W, then 300 W, then 300 W…: a mean between the two.
        let reader: PowerReader = Arc::new(move || {
            let i = c.fetch_add(1, Ordering::SeqCst);
            Some(if i == 0 { 100_000 } else { 300_000 })
        });
        let s = PowerSampler::start(Duration::from_millis(10), reader);
        tokio::time::sleep(Duration::from_millis(80)).await;
        let mean = s.finish().await.unwrap();
        let n = calls.load(Ordering::SeqCst);
        assert!(n >= 2, "{n} samples");
        assert_eq!(mean, (100_000 + 300_000 * (n - 1)) / n);
        let none = PowerSampler::start(Duration::from_millis(10), Arc::new(|| None));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(none.finish().await, None);
        // No NVIDIA GPU here: NVML reads nothing, without an error.
        let _ = nvml_reader()();
    }
}
