//! RunPod pods over REST v2: create from a preset, read, list, start/stop/terminate, and wait until ComfyUI answers
//! behind the pod's proxy address. Money in integer micro-dollars. Which pods the app created (and may act on) is
//! the caller's record; this client acts only on the ids it is given.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::account::explain_status;
use super::RunpodUrls;
use crate::secrets::Secret;

/// What to create: the defaults are ComfyUI on one 24 GB GPU, HTTP on 8188.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PodPreset {
    pub name: String,
    pub image: String,
    /// RunPod GPU type ids, in order of preference.
    pub gpu_types: Vec<String>,
    pub gpu_count: u32,
    /// "SECURE" or "COMMUNITY".
    pub cloud_type: String,
    pub container_disk_gb: u32,
    pub volume_gb: u32,
    pub env: std::collections::BTreeMap<String, String>,
}

impl Default for PodPreset {
    fn default() -> Self {
        PodPreset {
            name: "comfyfleet-comfyui".into(),
            image: "runpod/worker-comfyui:5.8.0-base".into(),
            gpu_types: vec!["NVIDIA GeForce RTX 4090".into()],
            gpu_count: 1,
            cloud_type: "SECURE".into(),
            container_disk_gb: 30,
            volume_gb: 0,
            env: Default::default(),
        }
    }
}

/// A pod as the app shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Pod {
    pub id: String,
    pub name: String,
    /// PROVISIONING, STARTING, RUNNING, EXITED, ERROR, TERMINATED (others kept as given).
    pub status: String,
    pub gpu: String,
    /// Price per hour in micro-dollars.
    pub cost_per_hr_micros: u64,
    pub uptime_secs: Option<u64>,
    /// The pod's HTTP ports that are up.
    pub http_ports: Vec<u16>,
}

/// Dollars (as RunPod writes them) to micro-dollars, rounded to the nearest. Pure.
pub fn micros(dollars: f64) -> u64 {
    if dollars.is_finite() && dollars > 0.0 {
        (dollars * 1e6).round() as u64
    } else {
        0
    }
}

/// A GPU type RunPod offers, with its prices in micro-dollars (`None` where it is not offered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct GpuType {
    /// The id pods are created with (`gpuTypeIds`).
    pub id: String,
    pub name: String,
    pub memory_gb: u32,
    pub secure_per_hr_micros: Option<u64>,
    pub community_per_hr_micros: Option<u64>,
    pub serverless_per_sec_micros: Option<u64>,
}

/// A GPU type from `/v2/catalog/gpus` (or the legacy GraphQL `gpuTypes`), reading prices leniently: RunPod's field
/// names inside `price` are not documented, so any number whose name says secure/community and hour, or serverless
/// and second, is taken. Pure.
pub fn parse_gpu_type(v: &Value) -> Option<GpuType> {
    let id = v["id"].as_str()?.to_string();
    let name = v["name"]
        .as_str()
        .or(v["displayName"].as_str())
        .unwrap_or(&id)
        .to_string();
    let memory_gb = v["memory"]
        .as_u64()
        .or(v["memoryInGb"].as_u64())
        .unwrap_or(0) as u32;
    let mut prices: Vec<(String, f64)> = Vec::new();
    if let Some(obj) = v["price"].as_object() {
        prices.extend(
            obj.iter()
                .filter_map(|(k, x)| Some((k.to_ascii_lowercase(), x.as_f64()?))),
        );
    }
    for key in ["securePrice", "communityPrice"] {
        if let Some(x) = v[key].as_f64() {
            prices.push((format!("{}perhour", key.to_ascii_lowercase()), x));
        }
    }
    let find = |a: &str, b: &str| {
        prices
            .iter()
            .find(|(k, _)| k.contains(a) && k.contains(b))
            .map(|(_, x)| micros(*x))
            .filter(|m| *m > 0)
    };
    Some(GpuType {
        id,
        name,
        memory_gb,
        secure_per_hr_micros: find("secure", "hour"),
        community_per_hr_micros: find("community", "hour"),
        serverless_per_sec_micros: find("serverless", "second"),
    })
}

/// A pod from REST v2's JSON (the v2 runtime names, or the older GraphQL ones). Pure.
pub fn parse_pod(v: &Value) -> Option<Pod> {
    let runtime = &v["runtime"];
    let ports = runtime["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["type"].as_str() == Some("http"))
                .filter_map(|p| p["private"].as_u64().or(p["privatePort"].as_u64()))
                .map(|p| p as u16)
                .collect()
        })
        .unwrap_or_default();
    Some(Pod {
        id: v["id"].as_str()?.to_string(),
        name: v["name"].as_str().unwrap_or_default().to_string(),
        status: v["status"]
            .as_str()
            .or(v["desiredStatus"].as_str())
            .unwrap_or("UNKNOWN")
            .to_string(),
        gpu: v["gpu"]["displayName"]
            .as_str()
            .or(v["gpu"]["id"].as_str())
            .unwrap_or_default()
            .to_string(),
        cost_per_hr_micros: micros(v["costPerHr"].as_f64().unwrap_or(0.0)),
        uptime_secs: runtime["uptime"]
            .as_u64()
            .or(runtime["uptimeInSeconds"].as_u64()),
        http_ports: ports,
    })
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PodError {
    #[error("{0}")]
    Refused(String),
    #[error("RunPod has no pod {0} (404); it may have been terminated.")]
    NotFound(String),
    #[error("RunPod cannot do that to pod {id} now ({status}): {detail}")]
    Conflict {
        id: String,
        status: u16,
        detail: String,
    },
    #[error("RunPod refused the request ({status}): {detail}")]
    Http { status: u16, detail: String },
    #[error("Could not reach RunPod: {0}. Check the network connection.")]
    Network(String),
    #[error("Pod {id} did not become ready within {secs} s (last: {last}). It keeps costing money while it runs: stop or terminate it if it does not come up.")]
    NotReady { id: String, secs: u64, last: String },
}

impl crate::HasErrorInfo for PodError {
    fn code(&self) -> &'static str {
        match self {
            PodError::Refused(_) => "pods.refused",
            PodError::NotFound(_) => "pods.not_found",
            PodError::Conflict { .. } => "pods.conflict",
            PodError::Http { .. } => "pods.http",
            PodError::Network(_) => "pods.network",
            PodError::NotReady { .. } => "pods.not_ready",
        }
    }
}

#[derive(Clone)]
pub struct PodsClient {
    http: reqwest::Client,
    urls: RunpodUrls,
    key: Secret,
}

impl PodsClient {
    pub fn new(http: reqwest::Client, urls: RunpodUrls, key: Secret) -> Self {
        PodsClient { http, urls, key }
    }

    /// Where RunPod's APIs and the pods' proxy are.
    pub fn urls(&self) -> &RunpodUrls {
        &self.urls
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, PodError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.urls.rest))
            .bearer_auth(self.key.expose())
            .timeout(Duration::from_secs(30));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.map_err(|e| {
            PodError::Network(crate::downloads::redact_text(&e.without_url().to_string()))
        })?;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let detail = || {
            let t: String = text.chars().take(300).collect();
            crate::downloads::redact_text(t.trim())
        };
        match status {
            200..=299 => Ok(serde_json::from_str(&text).unwrap_or(Value::Null)),
            401 | 403 | 429 => Err(PodError::Refused(
                explain_status(status).unwrap_or_default(),
            )),
            404 => Err(PodError::NotFound(
                path.rsplit('/')
                    .find(|s| !s.is_empty() && *s != "action")
                    .unwrap_or_default()
                    .to_string(),
            )),
            409 | 422 => Err(PodError::Conflict {
                id: path.to_string(),
                status,
                detail: detail(),
            }),
            _ => Err(PodError::Http {
                status,
                detail: detail(),
            }),
        }
    }

    /// The GPU types and their prices (`GET /v2/catalog/gpus`).
    pub async fn gpu_types(&self) -> Result<Vec<GpuType>, PodError> {
        let v = self
            .call(reqwest::Method::GET, "/catalog/gpus", None)
            .await?;
        let items = v
            .as_array()
            .cloned()
            .or_else(|| v["gpus"].as_array().cloned())
            .or_else(|| v["data"].as_array().cloned())
            .unwrap_or_default();
        Ok(items.iter().filter_map(parse_gpu_type).collect())
    }

    pub async fn list(&self) -> Result<Vec<Pod>, PodError> {
        let v = self.call(reqwest::Method::GET, "/pods", None).await?;
        let items = v
            .as_array()
            .cloned()
            .or_else(|| v["pods"].as_array().cloned())
            .unwrap_or_default();
        Ok(items.iter().filter_map(parse_pod).collect())
    }

    pub async fn get(&self, id: &str) -> Result<Pod, PodError> {
        let v = self
            .call(reqwest::Method::GET, &format!("/pods/{id}"), None)
            .await?;
        parse_pod(&v).ok_or_else(|| PodError::Http {
            status: 200,
            detail: "a pod without an id".into(),
        })
    }

    pub async fn create(&self, preset: &PodPreset) -> Result<Pod, PodError> {
        let body = serde_json::json!({
            "name": preset.name,
            "imageName": preset.image,
            "gpuTypeIds": preset.gpu_types,
            "gpuCount": preset.gpu_count,
            "cloudType": preset.cloud_type,
            "containerDiskInGb": preset.container_disk_gb,
            "volumeInGb": preset.volume_gb,
            "ports": ["8188/http"],
            "env": preset.env,
        });
        let v = self
            .call(reqwest::Method::POST, "/pods", Some(body))
            .await?;
        parse_pod(&v).ok_or_else(|| PodError::Http {
            status: 200,
            detail: "the created pod has no id".into(),
        })
    }

    /// "start", "stop", "restart" or "terminate".
    pub async fn action(&self, id: &str, action: &str) -> Result<(), PodError> {
        self.call(
            reqwest::Method::POST,
            &format!("/pods/{id}/action"),
            Some(serde_json::json!({ "action": action })),
        )
        .await
        .map(|_| ())
    }

    /// Waits for RUNNING and for ComfyUI to answer `/system_stats` at the pod's proxy address (502/524 and
    /// refused connections while it boots are expected). Answers the address.
    pub async fn wait_ready(&self, id: &str, timeout: Duration) -> Result<String, PodError> {
        self.wait_ready_with(id, timeout, |_| {}).await
    }

    /// [`Self::wait_ready`], telling `on_wait` what it is waiting for ("the pod is STARTING", "ComfyUI does not
    /// answer yet") after each look.
    pub async fn wait_ready_with(
        &self,
        id: &str,
        timeout: Duration,
        mut on_wait: impl FnMut(&str),
    ) -> Result<String, PodError> {
        let deadline = Instant::now() + timeout;
        let url = self.urls.pod_url(id, 8188);
        loop {
            let last: String;
            match self.get(id).await {
                Ok(p) if p.status == "RUNNING" => {
                    match self
                        .http
                        .get(format!("{url}/system_stats"))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => return Ok(url),
                        Ok(r) => last = format!("ComfyUI answered {}", r.status().as_u16()),
                        Err(_) => last = "ComfyUI does not answer yet".to_string(),
                    }
                }
                Ok(p) if matches!(p.status.as_str(), "EXITED" | "ERROR" | "TERMINATED") => {
                    return Err(PodError::NotReady {
                        id: id.into(),
                        secs: timeout.as_secs(),
                        last: format!("the pod is {}", p.status),
                    })
                }
                Ok(p) => last = format!("the pod is {}", p.status),
                Err(PodError::Network(e)) => last = e,
                Err(e) => return Err(e),
            }
            on_wait(&last);
            if Instant::now() > deadline {
                return Err(PodError::NotReady {
                    id: id.into(),
                    secs: timeout.as_secs(),
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_types_read_prices_from_v2_and_legacy_names() {
        let v2 = serde_json::json!({"id": "NVIDIA GeForce RTX 4090", "name": "RTX 4090", "memory": 24,
            "price": {"securePerHour": 0.69, "communityPerHour": 0.34, "serverlessPerSecond": 0.00031}});
        let g = parse_gpu_type(&v2).unwrap();
        assert_eq!(
            (
                g.memory_gb,
                g.secure_per_hr_micros,
                g.community_per_hr_micros,
                g.serverless_per_sec_micros
            ),
            (24, Some(690_000), Some(340_000), Some(310))
        );
        let legacy = serde_json::json!({"id": "NVIDIA L4", "displayName": "L4", "memoryInGb": 24, "securePrice": 0.43,
            "communityPrice": null});
        let g = parse_gpu_type(&legacy).unwrap();
        assert_eq!(
            (
                g.name.as_str(),
                g.secure_per_hr_micros,
                g.community_per_hr_micros
            ),
            ("L4", Some(430_000), None)
        );
        assert!(parse_gpu_type(&serde_json::json!({"name": "no id"})).is_none());
    }
    use serde_json::json;

    #[test]
    fn pods_parse_v2_and_legacy_runtime_names_and_price_in_micros() {
        let v2 = json!({"id": "p1", "name": "c", "status": "RUNNING", "costPerHr": 0.69, "gpu": {"displayName": "RTX 4090"},
            "runtime": {"uptime": 120, "ports": [{"private": 8188, "public": 443, "type": "http", "ip": "x"}, {"private": 22, "type": "tcp"}]}});
        let p = parse_pod(&v2).unwrap();
        assert_eq!(
            (p.cost_per_hr_micros, p.uptime_secs, p.http_ports.clone()),
            (690_000, Some(120), vec![8188])
        );
        let legacy = json!({"id": "p2", "desiredStatus": "RUNNING", "costPerHr": 0.34,
            "runtime": {"uptimeInSeconds": 5, "ports": [{"privatePort": 8188, "type": "http"}]}});
        let p = parse_pod(&legacy).unwrap();
        assert_eq!(
            (p.status.as_str(), p.uptime_secs, p.http_ports),
            ("RUNNING", Some(5), vec![8188])
        );
        assert_eq!(
            parse_pod(&json!({"id": "p3", "runtime": null}))
                .unwrap()
                .uptime_secs,
            None
        );
        assert!(parse_pod(&json!({"name": "no id"})).is_none());
        assert_eq!(micros(f64::NAN), 0);
    }
}
