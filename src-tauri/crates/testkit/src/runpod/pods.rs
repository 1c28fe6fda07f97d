//! On-demand pods as REST v2 shows them: the create body's checks, the lifecycle PROVISIONING -> STARTING ->
//! RUNNING, actions (start, stop, restart, terminate) and which are allowed in which state, and the pod object.
//! Pure: every method takes the current time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::catalog::{catalog_gpu, dollars};
use super::config::{MicroUsd, RuntimeNames, SeededPod};

/// A pod's `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodStatus {
    Provisioning,
    Starting,
    Running,
    Exited,
    Terminated,
}

impl PodStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PodStatus::Provisioning => "PROVISIONING",
            PodStatus::Starting => "STARTING",
            PodStatus::Running => "RUNNING",
            PodStatus::Exited => "EXITED",
            PodStatus::Terminated => "TERMINATED",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// PROVISIONING until `starting_at`, STARTING until `running_at`, then RUNNING.
    Up {
        starting_at: Instant,
        running_at: Instant,
    },
    Exited,
    Terminated {
        at: Instant,
    },
}

/// What a test sees of a pod ([`crate::FakeRunpod::pods`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RunpodPod {
    pub id: String,
    pub name: String,
    pub status: PodStatus,
    pub image_name: String,
    pub gpu_type_id: String,
    pub gpu_count: u32,
    pub cloud_type: String,
    pub container_disk_in_gb: u32,
    pub volume_in_gb: u32,
    pub ports: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cost_per_hr: MicroUsd,
    /// Seeded by the config ("not created by the app").
    pub seeded: bool,
}

#[derive(Clone, Debug)]
struct Pod {
    view: RunpodPod,
    phase: Phase,
    public_port: u16,
}

/// What an action did, for the side effects the server makes (the pod's ComfyUI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    Boot,
    Stop,
    Terminate,
}

/// Why a request about a pod was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PodError {
    /// 404
    NotFound,
    /// 409, with the message.
    Conflict(String),
    /// 422, with the message.
    Invalid(String),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Timings {
    pub provisioning: Duration,
    pub starting: Duration,
    pub terminated_visible: Duration,
}

#[derive(Default)]
pub(crate) struct Pods {
    pods: BTreeMap<String, Pod>,
    next_port: u16,
}

fn pod_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..14].to_string()
}

fn invalid(message: &str) -> PodError {
    PodError::Invalid(message.to_string())
}

impl Pods {
    pub fn seed(&mut self, seeded: &SeededPod, now: Instant) {
        let cost = catalog_gpu(&seeded.gpu_type_id)
            .and_then(|g| g.per_hour("SECURE"))
            .unwrap_or(0);
        let view = RunpodPod {
            id: seeded.id.clone(),
            name: seeded.name.clone(),
            status: PodStatus::Running,
            image_name: seeded.image_name.clone(),
            gpu_type_id: seeded.gpu_type_id.clone(),
            gpu_count: 1,
            cloud_type: "SECURE".to_string(),
            container_disk_in_gb: 50,
            volume_in_gb: 20,
            ports: vec!["8888/http".to_string(), "22/tcp".to_string()],
            env: BTreeMap::new(),
            cost_per_hr: cost,
            seeded: true,
        };
        let phase = if seeded.running {
            Phase::Up {
                starting_at: now,
                running_at: now,
            }
        } else {
            Phase::Exited
        };
        self.insert(view, phase);
    }

    fn insert(&mut self, view: RunpodPod, phase: Phase) {
        self.next_port = self.next_port.wrapping_add(1);
        let public_port = 40_000 + self.next_port % 20_000;
        self.pods.insert(
            view.id.clone(),
            Pod {
                view,
                phase,
                public_port,
            },
        );
    }

    /// `POST /v2/pods`: checks the body as REST v2 does and creates the pod, PROVISIONING.
    pub fn create(
        &mut self,
        body: &Value,
        t: Timings,
        now: Instant,
    ) -> Result<RunpodPod, PodError> {
        let body = body
            .as_object()
            .ok_or_else(|| invalid("request body must be a JSON object"))?;
        let text = |key: &str| body.get(key).and_then(Value::as_str);
        let uint = |key: &str, default: u32| -> Result<u32, PodError> {
            match body.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        PodError::Invalid(format!("{key} must be a non-negative integer"))
                    }),
            }
        };
        let image_name = text("imageName")
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| invalid("imageName is required"))?;
        let gpu_ids: Vec<String> = match (body.get("gpuTypeIds"), text("gpuTypeId")) {
            (Some(Value::Array(ids)), _) => ids
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| invalid("gpuTypeIds must be a list of GPU type ids"))?,
            (Some(_), _) => return Err(invalid("gpuTypeIds must be a list of GPU type ids")),
            (None, Some(id)) => vec![id.to_string()],
            (None, None) => return Err(invalid("gpuTypeIds is required for a GPU pod")),
        };
        let cloud_type = text("cloudType").unwrap_or("SECURE").to_string();
        if !matches!(cloud_type.as_str(), "SECURE" | "COMMUNITY" | "ALL") {
            return Err(invalid("cloudType must be SECURE, COMMUNITY or ALL"));
        }
        let gpu_count = uint("gpuCount", 1)?;
        if gpu_count == 0 {
            return Err(invalid("gpuCount must be at least 1"));
        }
        let gpu = gpu_ids
            .iter()
            .filter_map(|id| catalog_gpu(id))
            .find_map(|g| g.per_hour(&cloud_type).map(|price| (g, price)));
        let Some((gpu, price)) = gpu else {
            return Err(PodError::Invalid(format!(
                "no GPU type in {gpu_ids:?} is offered in {cloud_type} cloud"
            )));
        };
        let ports = parse_ports(body.get("ports"))?;
        let env = parse_env(body.get("env"))?;
        let view = RunpodPod {
            id: pod_id(),
            name: text("name").unwrap_or("pod").to_string(),
            status: PodStatus::Provisioning,
            image_name: image_name.to_string(),
            gpu_type_id: gpu.id.to_string(),
            gpu_count,
            cloud_type: if cloud_type == "ALL" {
                "SECURE".into()
            } else {
                cloud_type
            },
            container_disk_in_gb: uint("containerDiskInGb", 50)?,
            volume_in_gb: uint("volumeInGb", 20)?,
            ports,
            env,
            cost_per_hr: price * u64::from(gpu_count),
            seeded: false,
        };
        let phase = Phase::Up {
            starting_at: now + t.provisioning,
            running_at: now + t.provisioning + t.starting,
        };
        let id = view.id.clone();
        self.insert(view, phase);
        self.get(&id, now, t).ok_or(PodError::NotFound)
    }

    fn status(phase: Phase, now: Instant) -> PodStatus {
        match phase {
            Phase::Up { starting_at, .. } if now < starting_at => PodStatus::Provisioning,
            Phase::Up { running_at, .. } if now < running_at => PodStatus::Starting,
            Phase::Up { .. } => PodStatus::Running,
            Phase::Exited => PodStatus::Exited,
            Phase::Terminated { .. } => PodStatus::Terminated,
        }
    }

    fn visible(pod: &Pod, now: Instant, t: Timings) -> bool {
        match pod.phase {
            Phase::Terminated { at } => now < at + t.terminated_visible,
            _ => true,
        }
    }

    pub fn get(&self, id: &str, now: Instant, t: Timings) -> Option<RunpodPod> {
        let pod = self.pods.get(id).filter(|p| Self::visible(p, now, t))?;
        let mut view = pod.view.clone();
        view.status = Self::status(pod.phase, now);
        Some(view)
    }

    pub fn list(&self, now: Instant, t: Timings) -> Vec<RunpodPod> {
        self.pods
            .keys()
            .filter_map(|id| self.get(id, now, t))
            .collect()
    }

    /// `POST /v2/pods/{id}/action`, and `DELETE` (terminate).
    pub fn act(
        &mut self,
        id: &str,
        action: &str,
        now: Instant,
        t: Timings,
    ) -> Result<Effect, PodError> {
        let status = self.get(id, now, t).ok_or(PodError::NotFound)?.status;
        let pod = self.pods.get_mut(id).ok_or(PodError::NotFound)?;
        let conflict = || {
            PodError::Conflict(format!(
                "cannot {action} pod {id}: it is {}",
                status.as_str()
            ))
        };
        let boot = Phase::Up {
            starting_at: now,
            running_at: now + t.starting,
        };
        let (phase, effect) = match (action, status) {
            (_, PodStatus::Terminated) => return Err(conflict()),
            ("start" | "resume", PodStatus::Exited) => (boot, Effect::Boot),
            ("stop", PodStatus::Provisioning | PodStatus::Starting | PodStatus::Running) => {
                (Phase::Exited, Effect::Stop)
            }
            ("restart", PodStatus::Running) => (boot, Effect::Boot),
            ("terminate", _) => (Phase::Terminated { at: now }, Effect::Terminate),
            ("start" | "resume" | "stop" | "restart", _) => return Err(conflict()),
            _ => {
                return Err(PodError::Invalid(format!(
                    "unknown action '{action}': use start, stop, restart or terminate"
                )))
            }
        };
        pod.phase = phase;
        Ok(effect)
    }

    /// `PATCH /v2/pods/{id}`: name, imageName, env, ports, disk sizes.
    pub fn update(
        &mut self,
        id: &str,
        body: &Value,
        now: Instant,
        t: Timings,
    ) -> Result<RunpodPod, PodError> {
        let status = self.get(id, now, t).ok_or(PodError::NotFound)?.status;
        if status == PodStatus::Terminated {
            return Err(PodError::Conflict(format!("pod {id} is TERMINATED")));
        }
        let body = body
            .as_object()
            .ok_or_else(|| invalid("request body must be a JSON object"))?;
        let pod = self.pods.get_mut(id).ok_or(PodError::NotFound)?;
        let mut view = pod.view.clone();
        for (key, value) in body {
            match (key.as_str(), value) {
                ("name", Value::String(s)) => view.name = s.clone(),
                ("imageName", Value::String(s)) if !s.trim().is_empty() => {
                    view.image_name = s.clone()
                }
                ("env", v) => view.env = parse_env(Some(v))?,
                ("ports", v) => view.ports = parse_ports(Some(v))?,
                ("containerDiskInGb", v) => view.container_disk_in_gb = as_u32(key, v)?,
                ("volumeInGb", v) => view.volume_in_gb = as_u32(key, v)?,
                _ => return Err(PodError::Invalid(format!("{key} cannot be set to {value}"))),
            }
        }
        pod.view = view;
        self.get(id, now, t).ok_or(PodError::NotFound)
    }

    /// The pod object of REST v2.
    pub fn to_json(&self, pod: &RunpodPod, names: RuntimeNames, now: Instant) -> Value {
        let Some(stored) = self.pods.get(&pod.id) else {
            return Value::Null;
        };
        let desired = match pod.status {
            PodStatus::Exited => "EXITED",
            PodStatus::Terminated => "TERMINATED",
            _ => "RUNNING",
        };
        let gpu = catalog_gpu(&pod.gpu_type_id);
        let runtime = match stored.phase {
            Phase::Up { running_at, .. } if pod.status == PodStatus::Running => {
                let uptime = now.duration_since(running_at).as_secs();
                let ports: Vec<Value> = pod
                    .ports
                    .iter()
                    .filter_map(|p| p.split_once('/'))
                    .filter_map(|(port, kind)| port.parse::<u16>().ok().map(|n| (n, kind)))
                    .enumerate()
                    .map(|(i, (private, kind))| {
                        let public = stored.public_port + (i as u16) * 100;
                        match names {
                            RuntimeNames::V2 => json!({"ip": "100.65.12.34", "private": private, "public": public, "type": kind}),
                            RuntimeNames::Legacy => json!({"ip": "100.65.12.34", "isIpPublic": false, "privatePort": private, "publicPort": public, "type": kind}),
                        }
                    })
                    .collect();
                let gpus =
                    json!([{"id": "GPU-fake-0", "gpuUtilPercent": 0, "memoryUtilPercent": 0}]);
                match names {
                    RuntimeNames::V2 => {
                        json!({"uptime": uptime, "gpus": gpus, "cpu": {"count": 8}, "memory": {"totalGb": 62}, "ports": ports})
                    }
                    RuntimeNames::Legacy => {
                        json!({"uptimeInSeconds": uptime, "gpus": gpus, "ports": ports})
                    }
                }
            }
            _ => Value::Null,
        };
        json!({
            "id": pod.id,
            "name": pod.name,
            "status": pod.status.as_str(),
            "desiredStatus": desired,
            "imageName": pod.image_name,
            "cloudType": pod.cloud_type,
            "gpuCount": pod.gpu_count,
            "containerDiskInGb": pod.container_disk_in_gb,
            "volumeInGb": pod.volume_in_gb,
            "ports": pod.ports,
            "env": pod.env,
            "costPerHr": dollars(pod.cost_per_hr),
            "gpu": {
                "id": pod.gpu_type_id,
                "displayName": gpu.map(|g| g.name).unwrap_or(&pod.gpu_type_id),
                "count": pod.gpu_count,
                "memoryInGb": gpu.map(|g| g.memory_gb),
            },
            "runtime": runtime,
        })
    }
}

fn as_u32(key: &str, v: &Value) -> Result<u32, PodError> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| PodError::Invalid(format!("{key} must be a non-negative integer")))
}

/// `["8188/http", "22/tcp"]` (REST v2) or `"8188/http,22/tcp"` (GraphQL's form).
fn parse_ports(value: Option<&Value>) -> Result<Vec<String>, PodError> {
    let items: Vec<String> = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| invalid("ports must be a list like [\"8188/http\"]"))?,
        Some(_) => return Err(invalid("ports must be a list like [\"8188/http\"]")),
    };
    for port in &items {
        let ok = port.split_once('/').is_some_and(|(n, kind)| {
            n.parse::<u16>().is_ok_and(|n| n > 0) && matches!(kind, "http" | "tcp" | "udp")
        });
        if !ok {
            return Err(PodError::Invalid(format!(
                "port '{port}' must look like 8188/http or 22/tcp"
            )));
        }
    }
    Ok(items)
}

fn parse_env(value: Option<&Value>) -> Result<BTreeMap<String, String>, PodError> {
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect::<Option<_>>()
            .ok_or_else(|| invalid("env values must be strings")),
        Some(_) => Err(invalid("env must be an object of strings")),
    }
}

/// The `{"error": ...}` body of a refused pod request.
pub(crate) fn error_body(message: &str) -> Value {
    let mut map = Map::new();
    map.insert("error".into(), json!(message));
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings() -> Timings {
        Timings {
            provisioning: Duration::from_millis(10),
            starting: Duration::from_millis(20),
            terminated_visible: Duration::from_millis(50),
        }
    }

    fn body() -> Value {
        json!({"name": "comfy", "imageName": "runpod/worker-comfyui:5.8.0-base", "gpuTypeIds": ["NVIDIA GeForce RTX 4090"], "gpuCount": 1, "ports": ["8188/http"], "env": {"A": "1"}})
    }

    #[test]
    fn pods_boot_stop_start_and_terminate() {
        let t0 = Instant::now();
        let at = |n: u64| t0 + Duration::from_millis(n);
        let t = timings();
        let mut pods = Pods::default();
        let pod = pods.create(&body(), t, t0).unwrap();
        assert_eq!(pod.status, PodStatus::Provisioning);
        assert_eq!(pod.cost_per_hr, 690_000);
        assert_eq!(
            pods.get(&pod.id, at(15), t).unwrap().status,
            PodStatus::Starting
        );
        assert_eq!(
            pods.get(&pod.id, at(30), t).unwrap().status,
            PodStatus::Running
        );
        let json = pods.to_json(
            &pods.get(&pod.id, at(30), t).unwrap(),
            RuntimeNames::V2,
            at(30),
        );
        assert_eq!(json["runtime"]["ports"][0]["private"], 8188);
        assert!(matches!(
            pods.act(&pod.id, "start", at(30), t),
            Err(PodError::Conflict(_))
        ));
        assert_eq!(pods.act(&pod.id, "stop", at(30), t), Ok(Effect::Stop));
        assert_eq!(
            pods.get(&pod.id, at(31), t).unwrap().status,
            PodStatus::Exited
        );
        assert!(matches!(
            pods.act(&pod.id, "stop", at(31), t),
            Err(PodError::Conflict(_))
        ));
        assert_eq!(
            pods.act(&pod.id, "terminate", at(40), t),
            Ok(Effect::Terminate)
        );
        assert_eq!(pods.list(at(41), t).len(), 1);
        assert!(pods.list(at(100), t).is_empty());
        assert_eq!(
            pods.act(&pod.id, "start", at(100), t),
            Err(PodError::NotFound)
        );
    }

    #[test]
    fn pods_refuse_bad_create_bodies() {
        let t = timings();
        let now = Instant::now();
        let mut pods = Pods::default();
        for bad in [
            json!({"gpuTypeIds": ["NVIDIA L4"]}),
            json!({"imageName": "x"}),
            json!({"imageName": "x", "gpuTypeIds": ["NVIDIA Nope"]}),
            json!({"imageName": "x", "gpuTypeId": "NVIDIA L4", "ports": ["8188"]}),
            json!({"imageName": "x", "gpuTypeId": "NVIDIA L4", "gpuCount": 0}),
            json!({"imageName": "x", "gpuTypeId": "NVIDIA L4", "cloudType": "COMMUNITY"}),
            json!([1]),
        ] {
            assert!(
                matches!(pods.create(&bad, t, now), Err(PodError::Invalid(_))),
                "{bad}"
            );
        }
        assert!(pods
            .create(
                &json!({"imageName": "x", "gpuTypeId": "NVIDIA L4", "ports": "8188/http,22/tcp"}),
                t,
                now
            )
            .is_ok());
    }
}
