//! One serverless endpoint as a discrete-event simulation: its queue, its workers (cold, starting, idle, running),
//! and its jobs' lifecycle IN_QUEUE -> IN_PROGRESS -> COMPLETED / FAILED / CANCELLED / TIMED_OUT. Every method
//! takes the current time and first plays every event up to it, so nothing runs in the background.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::config::EndpointConfig;
use super::handler::{self, OutputImage};

/// A job's `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    InQueue,
    InProgress,
    Completed,
    Failed,
    Cancelled,
    TimedOut,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::InQueue => "IN_QUEUE",
            JobStatus::InProgress => "IN_PROGRESS",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Failed => "FAILED",
            JobStatus::Cancelled => "CANCELLED",
            JobStatus::TimedOut => "TIMED_OUT",
        }
    }

    pub fn is_final(self) -> bool {
        !matches!(self, JobStatus::InQueue | JobStatus::InProgress)
    }
}

/// A fault attached to a job when it is submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobFault {
    RuntimeError,
    Hangs,
}

/// What a job will do once a worker takes it, decided then.
#[derive(Clone, Debug)]
enum Plan {
    Succeed(Vec<OutputImage>),
    Fail(String),
    Hang,
}

/// A snapshot of one job, for tests ([`crate::FakeRunpod::job`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RunpodJob {
    pub id: String,
    pub endpoint_id: String,
    pub status: JobStatus,
    /// Submitted by `/runsync` (id starts `sync-`).
    pub sync: bool,
    pub input: Value,
    pub delay_ms: u64,
    pub execution_ms: Option<u64>,
    pub worker_id: Option<String>,
    pub output: Option<Value>,
    pub error: Option<String>,
    /// How many times `/retry` re-queued it.
    pub retries: u32,
}

struct Job {
    id: String,
    sync: bool,
    input: Value,
    execution_timeout: Duration,
    fault: Option<JobFault>,
    status: JobStatus,
    submitted: Instant,
    started: Option<Instant>,
    finished: Option<Instant>,
    worker_id: Option<String>,
    plan: Option<Plan>,
    output: Option<Value>,
    error: Option<String>,
    retries: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WorkerState {
    Cold,
    Starting { ready_at: Instant },
    Idle { since: Instant },
    Running { until: Instant },
}

struct Worker {
    id: String,
    state: WorkerState,
    /// The job it runs while `Running`.
    job: Option<String>,
}

/// `/health` counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Health {
    pub completed: u64,
    /// FAILED and TIMED_OUT jobs.
    pub failed: u64,
    pub retried: u64,
    pub in_progress: u64,
    pub in_queue: u64,
    /// Warm workers without a job.
    pub idle: u64,
    /// Workers running a job.
    pub running: u64,
    /// Workers in their cold start.
    pub initializing: u64,
}

impl Health {
    pub fn to_json(self) -> Value {
        json!({
            "jobs": {
                "completed": self.completed,
                "failed": self.failed,
                "inProgress": self.in_progress,
                "inQueue": self.in_queue,
                "retried": self.retried,
            },
            "workers": {"idle": self.idle, "initializing": self.initializing, "running": self.running},
        })
    }
}

/// Why `/retry` refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RetryError {
    Unknown,
    NotRetryable(JobStatus),
}

pub(crate) struct Endpoint {
    pub config: EndpointConfig,
    /// Base of the `s3_url` links (`{fake url}/s3/fake-bucket/{endpoint}`).
    s3_base: String,
    workers: Vec<Worker>,
    queue: VecDeque<String>,
    jobs: BTreeMap<String, Job>,
    job_faults: VecDeque<JobFault>,
    image_counter: u32,
    completed: u64,
    failed: u64,
    retried: u64,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

fn worker_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..14].to_string()
}

impl Endpoint {
    pub fn new(config: EndpointConfig, s3_base: String) -> Self {
        let workers = (0..config.workers.max(1))
            .map(|_| Worker {
                id: worker_id(),
                state: WorkerState::Cold,
                job: None,
            })
            .collect();
        Endpoint {
            config,
            s3_base,
            workers,
            queue: VecDeque::new(),
            jobs: BTreeMap::new(),
            job_faults: VecDeque::new(),
            image_counter: 0,
            completed: 0,
            failed: 0,
            retried: 0,
        }
    }

    /// Keeps the workers, queue and jobs; takes new timings for what happens next.
    pub fn reconfigure(&mut self, config: EndpointConfig) {
        self.config = config;
    }

    pub fn add_job_fault(&mut self, fault: JobFault, times: u32) {
        self.job_faults.extend((0..times).map(|_| fault));
    }

    /// Queues a job and answers its id. `execution_timeout` is `policy.executionTimeout` when given.
    pub fn submit(
        &mut self,
        input: Value,
        sync: bool,
        execution_timeout: Option<Duration>,
        now: Instant,
    ) -> String {
        self.advance(now);
        let uuid = uuid::Uuid::new_v4();
        let id = if sync {
            format!("sync-{uuid}-u1")
        } else {
            format!("{uuid}-u1")
        };
        let job = Job {
            id: id.clone(),
            sync,
            input,
            execution_timeout: execution_timeout.unwrap_or(self.config.execution_timeout),
            fault: self.job_faults.pop_front(),
            status: JobStatus::InQueue,
            submitted: now,
            started: None,
            finished: None,
            worker_id: None,
            plan: None,
            output: None,
            error: None,
            retries: 0,
        };
        self.jobs.insert(id.clone(), job);
        self.queue.push_back(id.clone());
        self.dispatch(now);
        id
    }

    /// Plays every event up to `now`: cold starts ending, jobs ending, idle workers going cold, results expiring.
    pub fn advance(&mut self, now: Instant) {
        while let Some(at) = self.next_event().filter(|at| *at <= now) {
            self.apply_events(at);
            self.dispatch(at);
        }
        let (run_ttl, sync_ttl) = (self.config.run_result_ttl, self.config.runsync_result_ttl);
        self.jobs.retain(|_, job| match job.finished {
            Some(done) => now < done + if job.sync { sync_ttl } else { run_ttl },
            None => true,
        });
    }

    fn next_event(&self) -> Option<Instant> {
        self.workers
            .iter()
            .filter_map(|w| match w.state {
                WorkerState::Cold => None,
                WorkerState::Starting { ready_at } => Some(ready_at),
                WorkerState::Idle { since } => Some(since + self.config.idle_timeout),
                WorkerState::Running { until } => Some(until),
            })
            .min()
    }

    fn apply_events(&mut self, at: Instant) {
        let idle_timeout = self.config.idle_timeout;
        let mut ended = Vec::new();
        for worker in &mut self.workers {
            worker.state = match worker.state {
                WorkerState::Starting { ready_at } if ready_at <= at => {
                    WorkerState::Idle { since: ready_at }
                }
                WorkerState::Idle { since } if since + idle_timeout <= at => WorkerState::Cold,
                WorkerState::Running { until } if until <= at => {
                    if let Some(job) = worker.job.take() {
                        ended.push((job, until));
                    }
                    WorkerState::Idle { since: until }
                }
                other => other,
            };
        }
        for (id, at) in ended {
            self.finish(&id, at);
        }
    }

    /// A job's worker is done with it: the planned outcome becomes its status.
    fn finish(&mut self, id: &str, at: Instant) {
        let flavour = self.config.output.clone();
        let s3 = format!("{}/{id}", self.s3_base);
        let Some(job) = self.jobs.get_mut(id) else {
            return;
        };
        if job.status != JobStatus::InProgress {
            return;
        }
        job.finished = Some(at);
        let ran = at.duration_since(job.started.unwrap_or(at));
        match job.plan.as_ref() {
            _ if ran >= job.execution_timeout => {
                job.status = JobStatus::TimedOut;
                self.failed += 1;
            }
            Some(Plan::Succeed(images)) => {
                job.output = Some(handler::output(images, &flavour, |name| {
                    format!("{s3}/{name}")
                }));
                job.status = JobStatus::Completed;
                self.completed += 1;
            }
            Some(Plan::Fail(error)) => {
                job.error = Some(error.clone());
                job.status = JobStatus::Failed;
                self.failed += 1;
            }
            Some(Plan::Hang) | None => {
                job.status = JobStatus::TimedOut;
                self.failed += 1;
            }
        }
    }

    /// Idle workers take queued jobs; cold workers start for the jobs no worker will take soon.
    fn dispatch(&mut self, at: Instant) {
        while !self.queue.is_empty() {
            let Some(w) = self
                .workers
                .iter()
                .position(|w| matches!(w.state, WorkerState::Idle { .. }))
            else {
                break;
            };
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            let until = self.start_job(&id, at, w);
            self.workers[w].state = WorkerState::Running { until };
            self.workers[w].job = Some(id);
        }
        let starting = self
            .workers
            .iter()
            .filter(|w| matches!(w.state, WorkerState::Starting { .. }))
            .count();
        let mut wanted = self.queue.len().saturating_sub(starting);
        for worker in &mut self.workers {
            if wanted == 0 {
                break;
            }
            if worker.state == WorkerState::Cold {
                worker.state = WorkerState::Starting {
                    ready_at: at + self.config.cold_start,
                };
                wanted -= 1;
            }
        }
    }

    /// Runs the handler on the job's input and answers when the worker will be done with it.
    fn start_job(&mut self, id: &str, at: Instant, worker: usize) -> Instant {
        let exec = self.config.exec_time;
        let worker_id = self.workers[worker].id.clone();
        let counter = &mut self.image_counter;
        let Some(job) = self.jobs.get_mut(id) else {
            return at;
        };
        job.status = JobStatus::InProgress;
        job.started = Some(at);
        job.worker_id = Some(worker_id);
        let (plan, takes) = match job.fault {
            Some(JobFault::Hangs) => (Plan::Hang, job.execution_timeout),
            Some(JobFault::RuntimeError) => (Plan::Fail(handler::uncaught_exception()), exec / 2),
            None => match handler::run(&job.input, counter) {
                Ok(images) => (Plan::Succeed(images), exec),
                // Checks fail before ComfyUI runs anything.
                Err(error) => (Plan::Fail(error), Duration::ZERO),
            },
        };
        job.plan = Some(plan);
        at + takes.min(job.execution_timeout)
    }

    pub fn cancel(&mut self, id: &str, now: Instant) -> Option<JobStatus> {
        self.advance(now);
        let status = self.jobs.get(id)?.status;
        match status {
            JobStatus::InQueue => self.queue.retain(|q| q != id),
            JobStatus::InProgress => {
                if let Some(w) = self
                    .workers
                    .iter_mut()
                    .find(|w| w.job.as_deref() == Some(id))
                {
                    w.job = None;
                    w.state = WorkerState::Idle { since: now };
                }
            }
            _ => return Some(status),
        }
        if let Some(job) = self.jobs.get_mut(id) {
            job.status = JobStatus::Cancelled;
            job.finished = Some(now);
        }
        self.dispatch(now);
        Some(JobStatus::Cancelled)
    }

    pub fn retry(&mut self, id: &str, now: Instant) -> Result<(), RetryError> {
        self.advance(now);
        let job = self.jobs.get_mut(id).ok_or(RetryError::Unknown)?;
        if !matches!(job.status, JobStatus::Failed | JobStatus::TimedOut) {
            return Err(RetryError::NotRetryable(job.status));
        }
        job.status = JobStatus::InQueue;
        job.submitted = now;
        job.started = None;
        job.finished = None;
        job.worker_id = None;
        job.plan = None;
        job.fault = None;
        job.output = None;
        job.error = None;
        job.retries += 1;
        self.retried += 1;
        self.queue.push_back(id.to_string());
        self.dispatch(now);
        Ok(())
    }

    /// Drops every queued job; answers how many.
    pub fn purge_queue(&mut self, now: Instant) -> usize {
        self.advance(now);
        let removed: Vec<String> = self.queue.drain(..).collect();
        for id in &removed {
            self.jobs.remove(id);
        }
        removed.len()
    }

    pub fn health(&mut self, now: Instant) -> Health {
        self.advance(now);
        let count_jobs = |s: JobStatus| self.jobs.values().filter(|j| j.status == s).count() as u64;
        let count_workers = |f: fn(&WorkerState) -> bool| {
            self.workers.iter().filter(|w| f(&w.state)).count() as u64
        };
        Health {
            completed: self.completed,
            failed: self.failed,
            retried: self.retried,
            in_progress: count_jobs(JobStatus::InProgress),
            in_queue: count_jobs(JobStatus::InQueue),
            idle: count_workers(|s| matches!(s, WorkerState::Idle { .. })),
            running: count_workers(|s| matches!(s, WorkerState::Running { .. })),
            initializing: count_workers(|s| matches!(s, WorkerState::Starting { .. })),
        }
    }

    pub fn job(&mut self, id: &str, now: Instant) -> Option<RunpodJob> {
        self.advance(now);
        let job = self.jobs.get(id)?;
        let delay = job.started.unwrap_or(now).duration_since(job.submitted);
        Some(RunpodJob {
            id: job.id.clone(),
            endpoint_id: self.config.id.clone(),
            status: job.status,
            sync: job.sync,
            input: job.input.clone(),
            delay_ms: ms(delay),
            execution_ms: job
                .started
                .map(|s| ms(job.finished.unwrap_or(now).duration_since(s))),
            worker_id: job.worker_id.clone(),
            output: job.output.clone(),
            error: job.error.clone(),
            retries: job.retries,
        })
    }

    /// The PNG an `s3_url` output points at.
    pub fn s3_file(&mut self, job_id: &str, name: &str, now: Instant) -> Option<Vec<u8>> {
        self.advance(now);
        match self.jobs.get(job_id)?.plan.as_ref()? {
            Plan::Succeed(images) => images
                .iter()
                .find(|i| i.filename == name)
                .map(|i| i.png.clone()),
            _ => None,
        }
    }
}

impl RunpodJob {
    /// The body of `/status/{id}` (and of `/runsync` once it answers).
    pub fn status_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("id".into(), json!(self.id));
        body.insert("status".into(), json!(self.status.as_str()));
        body.insert("delayTime".into(), json!(self.delay_ms));
        if self.status.is_final() && self.status != JobStatus::Cancelled {
            if let Some(e) = self.execution_ms {
                body.insert("executionTime".into(), json!(e));
            }
        }
        if let Some(w) = &self.worker_id {
            body.insert("workerId".into(), json!(w));
        }
        if let Some(output) = &self.output {
            body.insert("output".into(), output.clone());
        }
        if let Some(error) = &self.error {
            body.insert("error".into(), json!(error));
        }
        Value::Object(body)
    }

    /// The body of `/stream/{id}`: the handler is not a generator, so its one output arrives when it completes.
    pub fn stream_json(&self) -> Value {
        let mut body = json!({
            "status": self.status.as_str(),
            "stream": match &self.output {
                Some(output) => json!([{"output": output}]),
                None => json!([]),
            },
        });
        if let Some(error) = &self.error {
            body["error"] = json!(error);
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(workers: u32) -> Endpoint {
        let mut config = EndpointConfig::new("ep");
        config.workers = workers;
        config.cold_start = Duration::from_millis(100);
        config.exec_time = Duration::from_millis(50);
        config.idle_timeout = Duration::from_millis(1000);
        Endpoint::new(config, "http://s3".into())
    }

    fn workflow() -> Value {
        json!({"workflow": {"1": {"class_type": "EmptyImage", "inputs": {}}, "2": {"class_type": "SaveImage", "inputs": {}}}})
    }

    #[test]
    fn serverless_job_waits_for_a_cold_start_then_runs() {
        let t0 = Instant::now();
        let at = |n: u64| t0 + Duration::from_millis(n);
        let mut ep = endpoint(1);
        let id = ep.submit(workflow(), false, None, t0);
        let job = ep.job(&id, at(60)).unwrap();
        assert_eq!((job.status, job.delay_ms), (JobStatus::InQueue, 60));
        assert_eq!(ep.health(at(60)).initializing, 1);
        let job = ep.job(&id, at(120)).unwrap();
        assert_eq!((job.status, job.delay_ms), (JobStatus::InProgress, 100));
        let job = ep.job(&id, at(200)).unwrap();
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!((job.delay_ms, job.execution_ms), (100, Some(50)));
        // Warm now: the next job starts at once.
        let second = ep.submit(workflow(), false, None, at(300));
        assert_eq!(
            ep.job(&second, at(300)).unwrap().status,
            JobStatus::InProgress
        );
        let health = ep.health(at(400));
        assert_eq!((health.completed, health.idle, health.running), (2, 1, 0));
        // Idle for longer than the timeout: cold again.
        let third = ep.submit(workflow(), false, None, at(2000));
        assert_eq!(ep.job(&third, at(2050)).unwrap().status, JobStatus::InQueue);
    }

    #[test]
    fn serverless_jobs_queue_behind_the_max_workers() {
        let t0 = Instant::now();
        let at = |n: u64| t0 + Duration::from_millis(n);
        let mut ep = endpoint(1);
        let a = ep.submit(workflow(), false, None, t0);
        let b = ep.submit(workflow(), false, None, t0);
        assert_eq!(ep.health(at(120)).in_queue, 1);
        assert_eq!(ep.job(&a, at(120)).unwrap().status, JobStatus::InProgress);
        let b_job = ep.job(&b, at(160)).unwrap();
        assert_eq!((b_job.status, b_job.delay_ms), (JobStatus::InProgress, 150));
    }

    #[test]
    fn serverless_cancel_retry_and_timeouts() {
        let t0 = Instant::now();
        let at = |n: u64| t0 + Duration::from_millis(n);
        let mut ep = endpoint(1);
        let a = ep.submit(workflow(), false, None, t0);
        assert_eq!(ep.cancel(&a, at(10)), Some(JobStatus::Cancelled));
        assert_eq!(ep.job(&a, at(500)).unwrap().status, JobStatus::Cancelled);
        ep.add_job_fault(JobFault::Hangs, 1);
        let b = ep.submit(workflow(), false, Some(Duration::from_millis(80)), at(500));
        let job = ep.job(&b, at(600)).unwrap();
        assert_eq!(
            (job.status, job.execution_ms),
            (JobStatus::TimedOut, Some(80))
        );
        assert_eq!(
            ep.retry(&a, at(600)),
            Err(RetryError::NotRetryable(JobStatus::Cancelled))
        );
        assert_eq!(ep.retry(&b, at(600)), Ok(()));
        assert_eq!(ep.job(&b, at(700)).unwrap().status, JobStatus::Completed);
        assert_eq!(ep.health(at(700)).retried, 1);
    }
}
