//! RunPod: the account key, and (next) serverless endpoints and pods as backends of the router. Base URLs follow
//! runpod-python's conventions, so tests and mirrors point them elsewhere: `RUNPOD_ENDPOINT_BASE_URL`
//! (serverless), `RUNPOD_REST_API_URL` (pods, REST v2) and `COMFYFLEET_RUNPOD_PROXY_URL` (a pod's HTTP port).

pub mod account;
pub mod client;
pub mod fleet;
pub mod pods;
pub mod serverless;

/// Where RunPod's APIs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunpodUrls {
    /// Serverless: `{serverless}/{endpoint_id}/run`.
    pub serverless: String,
    /// Pods and the GPU catalog (REST v2): `{rest}/pods`.
    pub rest: String,
    /// A pod's HTTP port; `{pod_id}` and `{port}` are replaced.
    pub proxy: String,
}

pub const SERVERLESS_URL: &str = "https://api.runpod.ai/v2";
pub const REST_URL: &str = "https://api.runpod.io/v2";
pub const PROXY_URL: &str = "https://{pod_id}-{port}.proxy.runpod.net";

impl RunpodUrls {
    /// RunPod's own addresses, each replaced by its environment variable when set.
    pub fn from_env() -> RunpodUrls {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Pure: from any lookup of the variables.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> RunpodUrls {
        let pick = |key: &str, default: &str| {
            get(key)
                .map(|v| v.trim().trim_end_matches('/').to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        RunpodUrls {
            serverless: pick("RUNPOD_ENDPOINT_BASE_URL", SERVERLESS_URL),
            rest: pick("RUNPOD_REST_API_URL", REST_URL),
            proxy: pick("COMFYFLEET_RUNPOD_PROXY_URL", PROXY_URL),
        }
    }

    /// The address of a pod's HTTP port.
    pub fn pod_url(&self, pod_id: &str, port: u16) -> String {
        self.proxy
            .replace("{pod_id}", pod_id)
            .replace("{podId}", pod_id)
            .replace("{port}", &port.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runpod_urls_default_to_runpod_and_follow_the_environment() {
        let none = RunpodUrls::from_lookup(|_| None);
        assert_eq!(none.serverless, "https://api.runpod.ai/v2");
        assert_eq!(none.rest, "https://api.runpod.io/v2");
        assert_eq!(
            none.pod_url("abc123", 8188),
            "https://abc123-8188.proxy.runpod.net"
        );
        let local = RunpodUrls::from_lookup(|k| match k {
            "RUNPOD_ENDPOINT_BASE_URL" => Some("http://127.0.0.1:9/v2/".into()),
            "RUNPOD_REST_API_URL" => Some(" ".into()),
            "COMFYFLEET_RUNPOD_PROXY_URL" => Some("http://127.0.0.1:7/pods/{pod_id}".into()),
            _ => None,
        });
        assert_eq!(local.serverless, "http://127.0.0.1:9/v2");
        assert_eq!(local.rest, "https://api.runpod.io/v2");
        assert_eq!(local.pod_url("p1", 8188), "http://127.0.0.1:7/pods/p1");
    }
}
