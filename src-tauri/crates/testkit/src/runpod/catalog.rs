//! The GPU catalog of `GET /v2/catalog/gpus` and the prices pods are charged at.
//!
//! Figures marked "reference" are RunPod's serverless flex prices per second from
//! `shared/reference/external-apis.md` (section A). Everything else (ids' pools, per-hour pod prices, the exact
//! field names inside `price`) is **made up for the fake**, plausible but not recorded: clients must not hard-code it.

use serde_json::{json, Value};

use super::config::MicroUsd;

/// One GPU type as the fake's catalog lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatalogGpu {
    /// RunPod's GPU type id, also its display name (`gpuTypeIds` in `POST /v2/pods`).
    pub id: &'static str,
    pub name: &'static str,
    /// Serverless pool id (made up).
    pub pool: &'static str,
    /// VRAM in GB.
    pub memory_gb: u32,
    /// Serverless flex price per second (reference).
    pub serverless_per_second: MicroUsd,
    /// On-demand pod price per hour in Secure Cloud (made up).
    pub secure_per_hour: MicroUsd,
    /// On-demand pod price per hour in Community Cloud (made up); 0 means not offered there.
    pub community_per_hour: MicroUsd,
}

/// The catalog. Serverless per-second prices: reference; the rest: made up.
pub const GPU_CATALOG: [CatalogGpu; 8] = [
    gpu(
        "NVIDIA RTX A4000",
        "RTX A4000",
        "AMPERE_16",
        16,
        160,
        250_000,
        170_000,
    ),
    gpu(
        "NVIDIA GeForce RTX 3090",
        "RTX 3090",
        "AMPERE_24",
        24,
        190,
        460_000,
        220_000,
    ),
    gpu("NVIDIA L4", "L4", "ADA_24", 24, 190, 430_000, 0),
    gpu(
        "NVIDIA GeForce RTX 4090",
        "RTX 4090",
        "ADA_24_PRO",
        24,
        310,
        690_000,
        340_000,
    ),
    gpu(
        "NVIDIA RTX A6000",
        "RTX A6000",
        "AMPERE_48",
        48,
        340,
        490_000,
        330_000,
    ),
    gpu(
        "NVIDIA L40S",
        "L40S",
        "ADA_48_PRO",
        48,
        530,
        860_000,
        790_000,
    ),
    gpu(
        "NVIDIA A100 80GB PCIe",
        "A100 PCIe",
        "AMPERE_80",
        80,
        760,
        1_640_000,
        1_190_000,
    ),
    gpu(
        "NVIDIA H100 80GB HBM3",
        "H100 SXM",
        "HOPPER_80_PRO",
        80,
        1_160,
        2_990_000,
        2_690_000,
    ),
];

#[allow(clippy::too_many_arguments)]
const fn gpu(
    id: &'static str,
    name: &'static str,
    pool: &'static str,
    memory_gb: u32,
    serverless_per_second: MicroUsd,
    secure_per_hour: MicroUsd,
    community_per_hour: MicroUsd,
) -> CatalogGpu {
    CatalogGpu {
        id,
        name,
        pool,
        memory_gb,
        serverless_per_second,
        secure_per_hour,
        community_per_hour,
    }
}

/// The catalog entry with this id.
pub fn catalog_gpu(id: &str) -> Option<&'static CatalogGpu> {
    GPU_CATALOG.iter().find(|g| g.id == id)
}

/// Micro-dollars as the JSON number RunPod sends (dollars, a float).
pub(crate) fn dollars(micro: MicroUsd) -> Value {
    json!(micro as f64 / 1_000_000.0)
}

impl CatalogGpu {
    /// The pod price per hour in `cloud_type` (`SECURE` or `COMMUNITY`), if offered there.
    pub fn per_hour(&self, cloud_type: &str) -> Option<MicroUsd> {
        match cloud_type {
            "COMMUNITY" if self.community_per_hour > 0 => Some(self.community_per_hour),
            "COMMUNITY" => None,
            _ => Some(self.secure_per_hour),
        }
    }

    pub(crate) fn to_json(self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "pool": self.pool,
            "memory": self.memory_gb,
            "secure": true,
            "community": self.community_per_hour > 0,
            "price": {
                "securePerHour": dollars(self.secure_per_hour),
                "communityPerHour": if self.community_per_hour > 0 { dollars(self.community_per_hour) } else { Value::Null },
                "serverlessPerSecond": dollars(self.serverless_per_second),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_carries_the_reference_serverless_prices() {
        assert_eq!(
            catalog_gpu("NVIDIA GeForce RTX 4090").map(|g| g.serverless_per_second),
            Some(310)
        );
        assert_eq!(
            catalog_gpu("NVIDIA L40S").map(|g| g.serverless_per_second),
            Some(530)
        );
        assert_eq!(
            catalog_gpu("NVIDIA L4").and_then(|g| g.per_hour("COMMUNITY")),
            None
        );
        assert_eq!(dollars(310), json!(0.00031));
    }
}
