//! Talking to a RunPod serverless endpoint: `/run`, `/status`, `/cancel`, `/health`, with the key from the
//! keychain, backing off on 429 and 5xx, and following a job to its end about once a second.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::account::explain_status;
use super::serverless::{failure_text, outputs, poll_delay_ms, JobState, OutputFile, StatusBody};
use super::RunpodUrls;
use crate::secrets::Secret;

/// Tries per request on 429 / 5xx / network errors before giving up.
const ATTEMPTS: u32 = 5;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunpodError {
    #[error("{0}")]
    Refused(String),
    #[error("RunPod has no job {id} on this endpoint any more (results are kept 30 minutes).")]
    Expired { id: String },
    #[error("RunPod endpoint '{endpoint}' does not exist (404). Check the endpoint id in the RunPod console.")]
    NoEndpoint { endpoint: String },
    #[error("RunPod refused the request ({status}): {detail}")]
    Http { status: u16, detail: String },
    #[error("Could not reach RunPod: {0}. Check the network connection.")]
    Network(String),
    #[error("RunPod answered something unexpected: {0}")]
    Protocol(String),
}

impl crate::HasErrorInfo for RunpodError {
    fn code(&self) -> &'static str {
        match self {
            RunpodError::Refused(_) => "runpod.refused",
            RunpodError::Expired { .. } => "runpod.expired",
            RunpodError::NoEndpoint { .. } => "runpod.no_endpoint",
            RunpodError::Http { .. } => "runpod.http",
            RunpodError::Network(_) => "runpod.network",
            RunpodError::Protocol(_) => "runpod.protocol",
        }
    }
}

/// `/health`: what the endpoint's workers and queue are doing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct EndpointHealth {
    pub jobs_in_queue: u32,
    pub jobs_in_progress: u32,
    pub workers_idle: u32,
    pub workers_running: u32,
}

impl EndpointHealth {
    /// A worker is up: a job would start without a cold start.
    pub fn warm(&self) -> bool {
        self.workers_idle + self.workers_running > 0
    }
}

/// How a followed job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    Completed {
        outputs: Vec<OutputFile>,
        delay_ms: Option<u64>,
        execution_ms: Option<u64>,
    },
    Failed {
        message: String,
        delay_ms: Option<u64>,
        execution_ms: Option<u64>,
    },
    TimedOut {
        execution_ms: Option<u64>,
    },
    Cancelled,
}

/// What the follower reports while a job waits and runs.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// Waiting for a worker; `cold` when none was up (a worker is being woken).
    Queued {
        delay_ms: Option<u64>,
    },
    Running,
}

#[derive(Clone)]
pub struct ServerlessClient {
    http: reqwest::Client,
    base: String,
    endpoint: String,
    key: Secret,
    /// Status requests made (for the benchmark and tests).
    pub polls: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ServerlessClient {
    pub fn new(http: reqwest::Client, urls: &RunpodUrls, endpoint: &str, key: Secret) -> Self {
        ServerlessClient {
            http,
            base: format!("{}/{}", urls.serverless, endpoint.trim()),
            endpoint: endpoint.trim().to_string(),
            key,
            polls: Default::default(),
        }
    }

    /// One request with retries: 429 and 5xx wait (Retry-After, else 1, 2, 4, 8 s) and try again.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, String), RunpodError> {
        let url = format!("{}{path}", self.base);
        let mut last = RunpodError::Network("no attempt".into());
        for attempt in 0..ATTEMPTS {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.key.expose())
                .timeout(Duration::from_secs(30));
            if let Some(b) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.clone());
            }
            let wait = match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = r
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    let text = r.text().await.unwrap_or_default();
                    if status == 429 || status == 408 || status >= 500 {
                        last = match explain_status(status) {
                            Some(m) => RunpodError::Refused(m),
                            None => RunpodError::Http {
                                status,
                                detail: short(&text),
                            },
                        };
                        retry_after.map(Duration::from_secs)
                    } else {
                        return Ok((status, text));
                    }
                }
                Err(e) => {
                    last = RunpodError::Network(crate::downloads::redact_text(
                        &e.without_url().to_string(),
                    ));
                    None
                }
            };
            if attempt + 1 < ATTEMPTS {
                let backoff = Duration::from_secs(1 << attempt);
                tokio::time::sleep(wait.unwrap_or(backoff).min(Duration::from_secs(30))).await;
            }
        }
        Err(last)
    }

    fn refused(&self, status: u16, text: &str) -> RunpodError {
        match status {
            401 | 403 => RunpodError::Refused(explain_status(status).unwrap_or_default()),
            404 => RunpodError::NoEndpoint {
                endpoint: self.endpoint.clone(),
            },
            _ => RunpodError::Http {
                status,
                detail: short(text),
            },
        }
    }

    fn parse_status(&self, status: u16, text: &str) -> Result<StatusBody, RunpodError> {
        if !(200..300).contains(&status) {
            return Err(self.refused(status, text));
        }
        serde_json::from_str(text)
            .map_err(|e| RunpodError::Protocol(format!("{e}: {}", short(text))))
    }

    /// Sends a `/run` body (see [`super::serverless::run_body`]); answers the job as queued.
    pub async fn run(&self, body: Vec<u8>) -> Result<StatusBody, RunpodError> {
        let (status, text) = self.send(reqwest::Method::POST, "/run", Some(body)).await?;
        self.parse_status(status, &text)
    }

    pub async fn status(&self, id: &str) -> Result<StatusBody, RunpodError> {
        self.polls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (status, text) = self
            .send(reqwest::Method::GET, &format!("/status/{id}"), None)
            .await?;
        if status == 404 {
            return Err(RunpodError::Expired { id: id.into() });
        }
        self.parse_status(status, &text)
    }

    pub async fn cancel(&self, id: &str) -> Result<(), RunpodError> {
        let (status, text) = self
            .send(reqwest::Method::POST, &format!("/cancel/{id}"), None)
            .await?;
        match status {
            200..=299 | 404 => Ok(()),
            _ => Err(self.refused(status, &text)),
        }
    }

    pub async fn health(&self) -> Result<EndpointHealth, RunpodError> {
        let (status, text) = self.send(reqwest::Method::GET, "/health", None).await?;
        if !(200..300).contains(&status) {
            return Err(self.refused(status, &text));
        }
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| RunpodError::Protocol(e.to_string()))?;
        let n = |a: &str, b: &str| v[a][b].as_u64().unwrap_or(0) as u32;
        Ok(EndpointHealth {
            jobs_in_queue: n("jobs", "inQueue"),
            jobs_in_progress: n("jobs", "inProgress"),
            workers_idle: n("workers", "idle"),
            workers_running: n("workers", "running"),
        })
    }

    /// Follows job `id` to its end: about one status request a second (slower while it is expected to take long),
    /// events when it starts running; `cancel` flipping to true cancels it on RunPod.
    pub async fn follow(
        &self,
        id: &str,
        expected_ms: u64,
        mut cancel: watch::Receiver<bool>,
        mut on_event: impl FnMut(JobEvent) + Send,
    ) -> Result<JobEnd, RunpodError> {
        let started = Instant::now();
        // It was just sent: it waits for a worker until RunPod says otherwise.
        on_event(JobEvent::Queued { delay_ms: None });
        let mut last_state: Option<JobState> = Some(JobState::InQueue);
        loop {
            // `/run` has just said IN_QUEUE: the first look waits like the others.
            let wait = poll_delay_ms(started.elapsed().as_millis() as u64, expected_ms);
            let cancelled = tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => false,
                r = cancel.wait_for(|c| *c) => r.is_ok(),
            };
            if cancelled {
                self.cancel(id).await?;
                return Ok(JobEnd::Cancelled);
            }
            let st = self.status(id).await?;
            let state = st.state();
            if last_state.as_ref() != Some(&state) {
                match &state {
                    JobState::InQueue => on_event(JobEvent::Queued {
                        delay_ms: st.delay_time,
                    }),
                    JobState::InProgress => on_event(JobEvent::Running),
                    _ => {}
                }
                last_state = Some(state.clone());
            }
            match state {
                JobState::Completed => {
                    let files = outputs(st.output.as_ref().unwrap_or(&serde_json::Value::Null));
                    return Ok(match files {
                        Ok(outputs) => JobEnd::Completed {
                            outputs,
                            delay_ms: st.delay_time,
                            execution_ms: st.execution_time,
                        },
                        Err(message) => JobEnd::Failed {
                            message,
                            delay_ms: st.delay_time,
                            execution_ms: st.execution_time,
                        },
                    });
                }
                JobState::Failed => {
                    return Ok(JobEnd::Failed {
                        message: failure_text(st.error.as_ref()),
                        delay_ms: st.delay_time,
                        execution_ms: st.execution_time,
                    })
                }
                JobState::TimedOut => {
                    return Ok(JobEnd::TimedOut {
                        execution_ms: st.execution_time,
                    })
                }
                JobState::Cancelled => return Ok(JobEnd::Cancelled),
                _ => {}
            }
        }
    }

    /// The bytes of an output (inline, or fetched from the worker's bucket URL, without the RunPod key).
    pub async fn fetch_output(
        &self,
        file: &OutputFile,
        limit: u64,
    ) -> Result<Vec<u8>, RunpodError> {
        match file {
            OutputFile::Inline { bytes, .. } => Ok(bytes.clone()),
            OutputFile::Url { url, .. } => {
                let r = self
                    .http
                    .get(url)
                    .timeout(Duration::from_secs(120))
                    .send()
                    .await
                    .map_err(|e| {
                        RunpodError::Network(crate::downloads::redact_text(&e.to_string()))
                    })?;
                if !r.status().is_success() {
                    return Err(RunpodError::Http {
                        status: r.status().as_u16(),
                        detail: format!(
                            "fetching the output {}",
                            crate::downloads::redact_url(url)
                        ),
                    });
                }
                if r.content_length().is_some_and(|n| n > limit) {
                    return Err(RunpodError::Protocol(format!(
                        "an output is larger than {limit} bytes"
                    )));
                }
                let bytes = r
                    .bytes()
                    .await
                    .map_err(|e| RunpodError::Network(e.to_string()))?;
                Ok(bytes.to_vec())
            }
        }
    }
}

fn short(text: &str) -> String {
    let t: String = text.chars().take(300).collect();
    crate::downloads::redact_text(t.trim())
}
