//! Cost simulation: a working day of 500 mixed ComfyUI jobs over one local 24 GB GPU and one RunPod serverless
//! endpoint, routed by the REAL router (`router::decide`) with candidates built as the dispatcher builds them, priced
//! by the REAL cost arithmetic (`costs::prices`, `dispatcher::cloud_estimate_micros`) and capped by the REAL
//! `costs::caps::cap_check`, in VIRTUAL time (an event queue in integer milliseconds; nothing sleeps). Deterministic:
//! a fixed seed and a tiny PRNG. Prints cost, mean and p95 latency, jobs per backend and cold starts for local-only,
//! cloud-only and the default hybrid policy, then checks the targets of issue 7.
//! Run: cargo bench -p comfyfleet-core --bench costs_sim
//!
//! The model, and where each number comes from:
//! - Day: 09:00–18:00, quiet first hour, busy late morning, a lunch lull, busy afternoon, tapering evening. An artist
//!   submits either one job (55%), a batch of 4 (30%) or a batch of 12 (15%) at once; a batch is one workflow.
//! - Mix (per submission): 50% SD 1.5 (~4 s on the local GPU), 35% SDXL (~12 s), 15% FLUX (~30 s), each job ±10%.
//! - Local GPU (24 GB, e.g. a 4090): runs one job at a time (ComfyUI's queue); the dispatcher keeps at most
//!   `max_in_flight` of ours on it. Cost: electricity at 350 W × $0.15/kWh while a job runs (the app's default price
//!   is $0/kWh; we charge power so local is not free by assumption), through `prices::electricity_charge`.
//! - RunPod endpoint: class `ADA_24` at its shipped per-second price; 1.3× as fast as the local GPU (a job takes
//!   local time / 1.3); up to 3 workers; a worker wakes in 15–40 s (uniform) when a job finds none idle, stays up
//!   `DEFAULT_IDLE_TIMEOUT_MS` (5 s) after its last job, then goes cold. The dispatcher holds at most `max_in_flight`
//!   jobs on it too, so at most that many workers are busy with our jobs.
//! - Cloud cost, as the app's ledger settles it: per job `serverless_charge(rate, run, cold start, idle timeout)`
//!   (the dispatcher's `settle`: a job submitted while no worker was up is billed its whole delay as cold start,
//!   and every job carries the 5 s idle timeout). For comparison, what RunPod bills by worker uptime (boot to stop,
//!   per worker session) is printed beside it.
//! - Router inputs as in `Dispatcher::candidates`: `in_flight` = our jobs there, `queue_depth` = its queue
//!   (only ours here), `secs_per_job` learnt per (server, workflow) with the dispatcher's smoothing from completed
//!   runs, `warmup_secs` = the dispatcher's cold-start constant when the endpoint has no worker up.
//! - Caps (hybrid only): before a job goes to the endpoint its estimate (`cloud_estimate_micros`) is checked with
//!   `cap_check` against today's settled spend and outstanding reservations (the default caps: $5/day, $50/month;
//!   the month's spend is taken to be today's); at the cap the router decides again without the endpoint, as the
//!   dispatcher's `afford` does. Cloud-only has no cap (it is the uncapped baseline).
//!
//! After the three policies and the target lines: what-ifs that are NOT the app's defaults (other thresholds, the
//! fastest policy, the router before it counted our jobs waiting ahead toward the local threshold — it then never
//! overflowed — and overflowing to a cold endpoint only when it finishes sooner), the cap at work with a tight cap,
//! and the same comparison over 20 other days (seeds 1–20), since one day's verdict can be luck. The exit code
//! follows the two targets on the fixed day.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use comfyfleet_core::costs::caps::{cap_check, CapVerdict, Caps};
use comfyfleet_core::costs::prices::{self, DEFAULT_IDLE_TIMEOUT_MS};
use comfyfleet_core::dispatcher::cloud_estimate_micros;
use comfyfleet_core::router::{
    decide, estimated_finish, Candidate, Decision, JobNeeds, Policy, RouterConfig,
};

const SEED: u64 = 0x00C0_FFEE_F1EE_7007;
const JOBS: usize = 500;
/// 09:00 to 18:00, in ms from 09:00.
const DAY_MS: u64 = 9 * 3_600_000;
/// Relative submission rate per hour from 09:00: quiet start, busy morning, lunch, busy afternoon, taper.
const HOURLY_WEIGHT: [f64; 9] = [0.5, 1.4, 1.5, 0.2, 1.0, 1.5, 1.3, 0.8, 0.3];

const LOCAL_WATTS_MW: u64 = 350_000;
const ELECTRICITY_MICROS_PER_KWH: u64 = 150_000;
const CLOUD_CLASS: &str = "ADA_24";
/// The endpoint's GPU time as a fraction of the local GPU's: 1.3× as fast.
const CLOUD_SPEEDUP: f64 = 1.3;
const CLOUD_MAX_WORKERS: usize = 3;
const COLD_START_MS: (u64, u64) = (15_000, 40_000);

const LOCAL: &str = "local";
const CLOUD: &str = "runpod";

// ---------------------------------------------------------------------------------------------------------------
// A tiny deterministic PRNG (SplitMix64).

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi].
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The day's jobs.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Sd15,
    Sdxl,
    Flux,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Sd15, Kind::Sdxl, Kind::Flux];
    fn name(self) -> &'static str {
        match self {
            Kind::Sd15 => "SD1.5",
            Kind::Sdxl => "SDXL",
            Kind::Flux => "FLUX",
        }
    }
    /// Nominal seconds on the local GPU.
    fn local_ms(self) -> u64 {
        match self {
            Kind::Sd15 => 4_000,
            Kind::Sdxl => 12_000,
            Kind::Flux => 30_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Arrival {
    at_ms: u64,
    kind: Kind,
    /// This job's run time on the local GPU (the endpoint takes it / `CLOUD_SPEEDUP`).
    local_ms: u64,
}

/// Exactly `n` jobs over the working day, sorted by submission time: submissions at times drawn from
/// `HOURLY_WEIGHT`, each a single job or a batch of one workflow submitted at once.
fn arrivals(seed: u64, n: usize) -> Vec<Arrival> {
    let mut rng = Rng(seed);
    let total: f64 = HOURLY_WEIGHT.iter().sum();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        // The hour by its weight, then uniform within it.
        let mut r = rng.unit() * total;
        let mut hour = 0;
        while hour + 1 < HOURLY_WEIGHT.len() && r >= HOURLY_WEIGHT[hour] {
            r -= HOURLY_WEIGHT[hour];
            hour += 1;
        }
        let at_ms = hour as u64 * 3_600_000 + rng.between(0, 3_599_999);
        let kind = match rng.unit() {
            x if x < 0.50 => Kind::Sd15,
            x if x < 0.85 => Kind::Sdxl,
            _ => Kind::Flux,
        };
        let size = match rng.unit() {
            x if x < 0.55 => 1,
            x if x < 0.85 => 4,
            _ => 12,
        };
        for _ in 0..size.min(n - out.len()) {
            let nominal = kind.local_ms();
            let local_ms = rng.between(nominal * 9 / 10, nominal * 11 / 10);
            out.push(Arrival {
                at_ms,
                kind,
                local_ms,
            });
        }
    }
    // Stable: a batch keeps its order.
    out.sort_by_key(|a| a.at_ms);
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Virtual time: events ordered by time, ties in the order they were scheduled.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// Job `i` is submitted.
    Arrive(usize),
    /// The local GPU finished the job at the head of its queue.
    LocalDone,
    /// Worker `w` finished waking.
    WorkerUp(usize),
    /// Worker `w` finished its job.
    CloudDone(usize),
    /// Worker `w`'s idle timeout, for its idle spell number `gen` (stale when it took a job since).
    IdleTimeout(usize, u64),
}

#[derive(Default)]
struct Events {
    heap: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
}

impl Events {
    fn push(&mut self, at_ms: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((at_ms, self.seq, ev)));
    }
    fn pop(&mut self) -> Option<(u64, Ev)> {
        self.heap.pop().map(|Reverse((t, _, ev))| (t, ev))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The backends.

#[derive(Debug, Clone, Copy, PartialEq)]
enum WorkerState {
    Off,
    Waking,
    Busy(usize),
    Idle,
}

#[derive(Debug, Clone, Copy)]
struct Worker {
    state: WorkerState,
    /// When this worker's current session (wake → stop) began, how long it took to wake, and its idle spells.
    session_start: u64,
    boot_ms: u64,
    idle_gen: u64,
}

/// Which fleet the router sees.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fleet {
    LocalOnly,
    CloudOnly,
    Hybrid,
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    fleet: Fleet,
    router: RouterConfig,
    caps: Option<Caps>,
    /// The app's router: local first counts our jobs waiting ahead of this one in the local queue
    /// (`JobNeeds::waiting_ahead`). Off: the router before that change, for comparison.
    count_waiting_ahead: bool,
    /// What-if (not the app's router): overflow to the endpoint only when it would finish the job sooner than the
    /// local GPU (`estimated_finish`, the endpoint's with its warm-up when cold); otherwise wait for local.
    overflow_only_if_sooner: bool,
}

#[derive(Debug, Default)]
struct Outcome {
    cloud_ledger_micros: u64,
    cloud_uptime_micros: u64,
    electricity_micros: u64,
    mean_s: f64,
    p95_s: f64,
    local_jobs: usize,
    cloud_jobs: usize,
    worker_wakes: usize,
    cold_jobs: usize,
    /// Jobs the cap kept off the endpoint (each time the router was asked again without it).
    cap_refusals: usize,
    last_finish_ms: u64,
}

impl Outcome {
    fn total_micros(&self) -> u64 {
        self.cloud_ledger_micros + self.electricity_micros
    }
}

struct Sim<'a> {
    sc: Scenario,
    jobs: &'a [Arrival],
    rng: Rng,
    ev: Events,
    now: u64,
    /// Submitted and not yet dispatched, in submission order.
    waiting: VecDeque<usize>,
    /// Learnt seconds per (server, workflow), as the dispatcher's `timings`.
    timings: HashMap<(&'static str, Kind), f64>,
    local_queue: VecDeque<usize>,
    cloud_queue: VecDeque<usize>,
    cloud_in_flight: u32,
    workers: Vec<Worker>,
    /// Per job: dispatched to the endpoint at, started at, whether it waited for a wake, its reservation.
    dispatched_at: Vec<u64>,
    started_at: Vec<u64>,
    woke: Vec<bool>,
    reserved: Vec<u64>,
    finished_at: Vec<Option<u64>>,
    spent_today: u64,
    reserved_today: u64,
    out: Outcome,
}

/// The dispatcher's `smooth`: 0.7 × previous + 0.3 × this run.
fn smooth(previous: Option<f64>, secs: f64) -> f64 {
    previous.map_or(secs, |p| 0.7 * p + 0.3 * secs)
}

/// The dispatcher's assumed cold start (its private `COLD_START_SECS`), read back from its public estimate: a cold
/// estimate minus a warm one, over the class's per-second price.
fn dispatcher_cold_start_secs() -> f64 {
    let rate = prices::serverless_rate(CLOUD_CLASS).expect("shipped class");
    let cold = cloud_estimate_micros(CLOUD_CLASS, Some(10.0), true);
    let warm = cloud_estimate_micros(CLOUD_CLASS, Some(10.0), false);
    ((cold - warm) / rate) as f64
}

impl<'a> Sim<'a> {
    fn new(sc: Scenario, jobs: &'a [Arrival], seed: u64) -> Sim<'a> {
        let n = jobs.len();
        let mut ev = Events::default();
        for (i, a) in jobs.iter().enumerate() {
            ev.push(a.at_ms, Ev::Arrive(i));
        }
        Sim {
            sc,
            jobs,
            rng: Rng(seed ^ 0xC0FF),
            ev,
            now: 0,
            waiting: VecDeque::new(),
            timings: HashMap::new(),
            local_queue: VecDeque::new(),
            cloud_queue: VecDeque::new(),
            cloud_in_flight: 0,
            workers: vec![
                Worker {
                    state: WorkerState::Off,
                    session_start: 0,
                    boot_ms: 0,
                    idle_gen: 0,
                };
                CLOUD_MAX_WORKERS
            ],
            dispatched_at: vec![0; n],
            started_at: vec![0; n],
            woke: vec![false; n],
            reserved: vec![0; n],
            finished_at: vec![None; n],
            spent_today: 0,
            reserved_today: 0,
            out: Outcome::default(),
        }
    }

    fn cloud_ms(&self, j: usize) -> u64 {
        (self.jobs[j].local_ms as f64 / CLOUD_SPEEDUP).round() as u64
    }

    /// A worker is up (idle or running): the endpoint is warm, as RunPod's health reports it.
    fn cloud_warm(&self) -> bool {
        self.workers
            .iter()
            .any(|w| matches!(w.state, WorkerState::Idle | WorkerState::Busy(_)))
    }

    /// The candidates as `Dispatcher::candidates` builds them, for a job of `kind` with `ahead` of our jobs
    /// waiting before it.
    fn candidates(&self, kind: Kind, ahead: u32, cold_start_secs: f64) -> Vec<Candidate> {
        let mut out = Vec::new();
        if self.sc.fleet != Fleet::CloudOnly {
            let in_flight = self.local_queue.len() as u32;
            // Our jobs waiting ahead reach the router through `JobNeeds::waiting_ahead`, as the dispatcher passes them.
            let _ = ahead;
            out.push(Candidate {
                id: LOCAL.into(),
                name: "Local GPU".into(),
                online: true,
                active: true,
                local: true,
                in_flight,
                queue_depth: in_flight,
                models: None,
                secs_per_job: self.timings.get(&(LOCAL, kind)).copied(),
                warmup_secs: 0.0,
            });
        }
        if self.sc.fleet != Fleet::LocalOnly {
            out.push(Candidate {
                id: CLOUD.into(),
                name: "RunPod ADA_24".into(),
                online: true,
                active: self.sc.fleet == Fleet::CloudOnly,
                local: false,
                in_flight: self.cloud_in_flight,
                queue_depth: self.cloud_in_flight,
                models: None,
                secs_per_job: self.timings.get(&(CLOUD, kind)).copied(),
                warmup_secs: if self.cloud_warm() {
                    0.0
                } else {
                    cold_start_secs
                },
            });
        }
        out
    }

    fn run(mut self) -> Outcome {
        let cold_start_secs = dispatcher_cold_start_secs();
        while let Some((t, ev)) = self.ev.pop() {
            debug_assert!(t >= self.now, "time never goes back");
            self.now = t;
            match ev {
                Ev::Arrive(j) => self.waiting.push_back(j),
                Ev::LocalDone => self.local_done(),
                Ev::WorkerUp(w) => {
                    let boot = self.now - self.workers[w].session_start;
                    self.workers[w].boot_ms = boot;
                    self.worker_free(w);
                }
                Ev::CloudDone(w) => self.cloud_done(w),
                Ev::IdleTimeout(w, gen) => {
                    if self.workers[w].state == WorkerState::Idle && self.workers[w].idle_gen == gen
                    {
                        self.worker_stop(w);
                    }
                }
            }
            self.dispatch_round(cold_start_secs);
        }
        assert!(
            self.waiting.is_empty(),
            "{}: jobs left waiting",
            self.sc.name
        );
        let mut lat: Vec<u64> = self
            .jobs
            .iter()
            .zip(&self.finished_at)
            .map(|(a, f)| f.expect("every job finishes") - a.at_ms)
            .collect();
        lat.sort_unstable();
        self.out.mean_s = lat.iter().sum::<u64>() as f64 / lat.len() as f64 / 1000.0;
        self.out.p95_s = lat[(lat.len() * 95).div_ceil(100) - 1] as f64 / 1000.0;
        self.out.last_finish_ms = self
            .finished_at
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(0);
        self.out
    }

    /// One dispatcher round (`dispatch_ready`): each waiting job in order asks the router; a paid dispatch must
    /// pass the caps (`afford`); a wait stops the round when no server has a free slot.
    fn dispatch_round(&mut self, cold_start_secs: f64) {
        let cfg = self.sc.router;
        // `i` = our jobs still waiting ahead of this one (a dispatched job leaves the list).
        let mut i = 0;
        while i < self.waiting.len() {
            let j = self.waiting[i];
            let kind = self.jobs[j].kind;
            let cands = self.candidates(kind, i as u32, cold_start_secs);
            let needs = JobNeeds {
                // This job and those behind it, as the dispatcher counts it.
                backlog: (self.waiting.len() - i) as u32,
                // Ours still waiting ahead of it, as the dispatcher passes them (off: the router before that).
                waiting_ahead: if self.sc.count_waiting_ahead {
                    i as u32
                } else {
                    0
                },
                ..Default::default()
            };
            let (mut decision, _) = decide(&needs, &cands, &cfg, 0);
            if self.sc.overflow_only_if_sooner {
                decision = self.sooner_or_wait(decision, &cands);
            }
            let decision = self.afford(j, decision, &needs, &cands);
            match decision {
                Decision::Dispatch { server_id, .. } => {
                    self.waiting.remove(i);
                    if server_id == LOCAL {
                        self.send_local(j);
                    } else {
                        self.send_cloud(j);
                    }
                }
                Decision::Wait { .. } => {
                    let any_free = cands
                        .iter()
                        .any(|c| c.online && c.in_flight < cfg.max_in_flight);
                    if !any_free {
                        break;
                    }
                    i += 1;
                }
                Decision::Refuse { reason } => panic!("job {j} refused: {reason}"),
            }
        }
    }

    /// The what-if `overflow_only_if_sooner`: a job the router sends to the endpoint waits for the local GPU instead
    /// when the local GPU (counting the jobs ahead) would finish it first.
    fn sooner_or_wait(&self, decision: Decision, cands: &[Candidate]) -> Decision {
        let (Decision::Dispatch { server_id, .. }, Some(local), Some(cloud)) = (
            &decision,
            cands.iter().find(|c| c.id == LOCAL),
            cands.iter().find(|c| c.id == CLOUD),
        ) else {
            return decision;
        };
        // The same fallback the router uses when a server has no measurement yet.
        let known: Vec<f64> = cands.iter().filter_map(|c| c.secs_per_job).collect();
        let fallback = if known.is_empty() {
            1.0
        } else {
            known.iter().sum::<f64>() / known.len() as f64
        };
        if server_id == CLOUD
            && estimated_finish(local, fallback) <= estimated_finish(cloud, fallback)
        {
            Decision::Wait {
                reason: "the local GPU finishes it first".into(),
            }
        } else {
            decision
        }
    }

    /// The dispatcher's `afford`: reserve the estimate of a paid job against the caps, or decide again without the
    /// paid backend.
    fn afford(
        &mut self,
        j: usize,
        decision: Decision,
        needs: &JobNeeds,
        cands: &[Candidate],
    ) -> Decision {
        let Decision::Dispatch { server_id, .. } = &decision else {
            return decision;
        };
        if server_id != CLOUD {
            return decision;
        }
        let Some(caps) = self.sc.caps else {
            return decision;
        };
        let cand = cands
            .iter()
            .find(|c| c.id == CLOUD)
            .expect("cloud candidate");
        let estimate =
            cloud_estimate_micros(CLOUD_CLASS, cand.secs_per_job, cand.warmup_secs > 0.0);
        let verdict = cap_check(
            self.spent_today,
            self.reserved_today,
            self.spent_today,
            self.reserved_today,
            estimate,
            &caps,
        );
        match verdict {
            CapVerdict::Allow | CapVerdict::AllowWithWarning { .. } => {
                self.reserved[j] = estimate;
                self.reserved_today += estimate;
                decision
            }
            CapVerdict::Refuse { message, .. } => {
                self.out.cap_refusals += 1;
                let free: Vec<Candidate> =
                    cands.iter().filter(|c| c.id != CLOUD).cloned().collect();
                match decide(needs, &free, &self.sc.router, 0).0 {
                    d @ Decision::Dispatch { .. } => d,
                    _ => Decision::Wait { reason: message },
                }
            }
        }
    }

    fn send_local(&mut self, j: usize) {
        self.out.local_jobs += 1;
        self.local_queue.push_back(j);
        if self.local_queue.len() == 1 {
            self.local_start();
        }
    }

    fn local_start(&mut self) {
        let j = self.local_queue[0];
        self.started_at[j] = self.now;
        self.ev
            .push(self.now + self.jobs[j].local_ms, Ev::LocalDone);
    }

    fn local_done(&mut self) {
        let j = self.local_queue.pop_front().expect("a running local job");
        let ms = self.now - self.started_at[j];
        self.finished_at[j] = Some(self.now);
        self.out.electricity_micros +=
            prices::electricity_charge(LOCAL_WATTS_MW, ms, ELECTRICITY_MICROS_PER_KWH).cost_micros;
        let key = (LOCAL, self.jobs[j].kind);
        let next = smooth(self.timings.get(&key).copied(), ms as f64 / 1000.0);
        self.timings.insert(key, next);
        if !self.local_queue.is_empty() {
            self.local_start();
        }
    }

    /// A job reaches the endpoint: an idle worker takes it now; otherwise it queues there and a worker wakes for
    /// it (RunPod scales by queued requests, up to the endpoint's max workers).
    fn send_cloud(&mut self, j: usize) {
        self.out.cloud_jobs += 1;
        self.cloud_in_flight += 1;
        self.dispatched_at[j] = self.now;
        // As the backend does: no worker up (idle or running) at submission means the job is shown as waking one,
        // and the dispatcher's settle bills its whole delay as cold start.
        self.woke[j] = !self.cloud_warm();
        if let Some(w) = self
            .workers
            .iter()
            .position(|w| w.state == WorkerState::Idle)
        {
            self.cloud_start(w, j);
            return;
        }
        self.cloud_queue.push_back(j);
        let waking = self
            .workers
            .iter()
            .filter(|w| w.state == WorkerState::Waking)
            .count();
        if waking < self.cloud_queue.len() {
            if let Some(w) = self
                .workers
                .iter()
                .position(|w| w.state == WorkerState::Off)
            {
                let boot = self.rng.between(COLD_START_MS.0, COLD_START_MS.1);
                self.workers[w].state = WorkerState::Waking;
                self.workers[w].session_start = self.now;
                self.out.worker_wakes += 1;
                self.ev.push(self.now + boot, Ev::WorkerUp(w));
            }
        }
    }

    fn cloud_start(&mut self, w: usize, j: usize) {
        self.workers[w].state = WorkerState::Busy(j);
        self.started_at[j] = self.now;
        self.ev.push(self.now + self.cloud_ms(j), Ev::CloudDone(w));
    }

    /// A worker is up and free: it takes the endpoint's next job, or idles until its timeout.
    fn worker_free(&mut self, w: usize) {
        if let Some(j) = self.cloud_queue.pop_front() {
            self.cloud_start(w, j);
        } else {
            let gen = self.workers[w].idle_gen + 1;
            self.workers[w].idle_gen = gen;
            self.workers[w].state = WorkerState::Idle;
            self.ev
                .push(self.now + DEFAULT_IDLE_TIMEOUT_MS, Ev::IdleTimeout(w, gen));
        }
    }

    /// A cloud job ended: settle it as the dispatcher does (`serverless_charge` with RunPod's delay as cold start
    /// when it waited for a wake, and the idle timeout), release its reservation, learn its time.
    fn cloud_done(&mut self, w: usize) {
        let WorkerState::Busy(j) = self.workers[w].state else {
            unreachable!("a finished worker was busy")
        };
        self.cloud_in_flight -= 1;
        self.finished_at[j] = Some(self.now);
        let exec = self.now - self.started_at[j];
        let delay = self.started_at[j] - self.dispatched_at[j];
        let cold = if self.woke[j] {
            self.out.cold_jobs += 1;
            delay
        } else {
            0
        };
        let rate = prices::serverless_rate(CLOUD_CLASS).expect("shipped class");
        let charge = prices::serverless_charge(rate, exec, cold, DEFAULT_IDLE_TIMEOUT_MS);
        self.out.cloud_ledger_micros += charge.cost_micros;
        self.spent_today += charge.cost_micros;
        self.reserved_today -= std::mem::take(&mut self.reserved[j]);
        let key = (CLOUD, self.jobs[j].kind);
        let next = smooth(self.timings.get(&key).copied(), exec as f64 / 1000.0);
        self.timings.insert(key, next);
        self.worker_free(w);
    }

    /// The idle timeout passed: the worker stops; RunPod bills its session (wake, jobs, idle) by the second.
    fn worker_stop(&mut self, w: usize) {
        let wk = self.workers[w];
        let session = self.now - wk.session_start;
        let rate = prices::serverless_rate(CLOUD_CLASS).expect("shipped class");
        let charge =
            prices::serverless_charge(rate, session - wk.boot_ms, wk.boot_ms, 0).cost_micros;
        self.out.cloud_uptime_micros += charge;
        self.workers[w].state = WorkerState::Off;
    }
}

fn run(sc: Scenario, jobs: &[Arrival]) -> Outcome {
    run_seeded(sc, jobs, SEED)
}

fn run_seeded(sc: Scenario, jobs: &[Arrival], seed: u64) -> Outcome {
    Sim::new(sc, jobs, seed).run()
}

/// The two targets of issue 7 for `hybrid` against the single backends: (cost <= half of cloud-only, mean latency
/// within 10% of the best single backend).
fn targets(local: &Outcome, cloud: &Outcome, hybrid: &Outcome) -> (bool, bool) {
    let best = local.mean_s.min(cloud.mean_s);
    (
        hybrid.total_micros() * 2 <= cloud.total_micros(),
        hybrid.mean_s <= best * 1.10,
    )
}

// ---------------------------------------------------------------------------------------------------------------
// Sanity checks of the pieces (run first, every time: the harness is off, so #[test] would not run).

fn self_check() {
    // Events pop by time, ties in the order they were scheduled.
    let mut e = Events::default();
    e.push(5, Ev::LocalDone);
    e.push(1, Ev::Arrive(7));
    e.push(5, Ev::Arrive(1));
    e.push(1, Ev::Arrive(3));
    let order: Vec<(u64, Ev)> = std::iter::from_fn(|| e.pop()).collect();
    assert_eq!(
        order,
        [
            (1, Ev::Arrive(7)),
            (1, Ev::Arrive(3)),
            (5, Ev::LocalDone),
            (5, Ev::Arrive(1))
        ]
    );
    // The generator: deterministic, exactly n jobs, sorted, within the day, every kind present.
    let a = arrivals(SEED, JOBS);
    let b = arrivals(SEED, JOBS);
    assert_eq!(a.len(), JOBS);
    assert!(a
        .iter()
        .zip(&b)
        .all(|(x, y)| x.at_ms == y.at_ms && x.local_ms == y.local_ms));
    assert!(a.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    assert!(a.iter().all(|x| x.at_ms < DAY_MS));
    assert!(Kind::ALL.iter().all(|k| a.iter().any(|x| x.kind == *k)));
    assert_ne!(arrivals(SEED + 1, JOBS)[0].at_ms, a[0].at_ms);
    // The dispatcher's cold-start assumption as it prices it.
    assert!(dispatcher_cold_start_secs() > 0.0);
}

// ---------------------------------------------------------------------------------------------------------------

fn usd(micros: u64) -> String {
    format!("${}.{:04}", micros / 1_000_000, (micros % 1_000_000) / 100)
}

fn row(name: &str, o: &Outcome) {
    println!(
        "{:<38} {:>9} {:>9} {:>9} {:>8.1} {:>8.1} {:>6} {:>6} {:>6} {:>6}",
        name,
        usd(o.total_micros()),
        usd(o.cloud_ledger_micros),
        usd(o.cloud_uptime_micros),
        o.mean_s,
        o.p95_s,
        o.local_jobs,
        o.cloud_jobs,
        o.worker_wakes,
        o.cold_jobs,
    );
}

fn header() {
    println!(
        "{:<38} {:>9} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6} {:>6} {:>6}",
        "policy",
        "total",
        "cloud",
        "(uptime)",
        "mean s",
        "p95 s",
        "local",
        "cloud",
        "wakes",
        "coldj"
    );
}

fn main() {
    self_check();
    let jobs = arrivals(SEED, JOBS);
    let defaults = RouterConfig {
        policy: Policy::LocalFirst,
        ..RouterConfig::default()
    };
    let base = Scenario {
        name: "",
        fleet: Fleet::Hybrid,
        router: defaults,
        caps: Some(Caps::default()),
        count_waiting_ahead: true,
        overflow_only_if_sooner: false,
    };

    // The workload.
    let work_ms: u64 = jobs.iter().map(|a| a.local_ms).sum();
    println!(
        "{JOBS} jobs, 09:00–18:00, seed {SEED:#x}; {:.0} min of local GPU work ({:.0}% of the day)",
        work_ms as f64 / 60_000.0,
        work_ms as f64 * 100.0 / DAY_MS as f64
    );
    for k in Kind::ALL {
        let n = jobs.iter().filter(|a| a.kind == k).count();
        println!(
            "  {:<6} {:>3} jobs  ~{:>2} s local, ~{:.1} s on the endpoint",
            k.name(),
            n,
            k.local_ms() / 1000,
            k.local_ms() as f64 / 1000.0 / CLOUD_SPEEDUP
        );
    }
    println!(
        "local: 24 GB GPU, one job at a time, {} W at {}/kWh; cloud: RunPod {CLOUD_CLASS} at {}/s, {CLOUD_SPEEDUP}x local speed, \
         {CLOUD_MAX_WORKERS} workers, wake {}–{} s, idle timeout {} s",
        LOCAL_WATTS_MW / 1000,
        usd(ELECTRICITY_MICROS_PER_KWH),
        prices::usd_exact(prices::serverless_rate(CLOUD_CLASS).unwrap_or(0)),
        COLD_START_MS.0 / 1000,
        COLD_START_MS.1 / 1000,
        DEFAULT_IDLE_TIMEOUT_MS / 1000
    );
    println!(
        "router defaults: local_queue_threshold {}, max_in_flight {}; daily cap {}",
        defaults.local_queue_threshold,
        defaults.max_in_flight,
        usd(Caps::default().daily_micros)
    );
    println!(
        "cost = cloud as the ledger settles it (per job: run + cold start + 5 s idle) + local electricity; \
         (uptime) = RunPod's bill by worker uptime"
    );
    println!();

    let local = run(
        Scenario {
            name: "local-only",
            fleet: Fleet::LocalOnly,
            caps: None,
            ..base
        },
        &jobs,
    );
    let cloud = run(
        Scenario {
            name: "cloud-only",
            fleet: Fleet::CloudOnly,
            caps: None,
            ..base
        },
        &jobs,
    );
    let hybrid = run(
        Scenario {
            name: "hybrid",
            ..base
        },
        &jobs,
    );
    header();
    row("local-only", &local);
    row("cloud-only (no cap)", &cloud);
    row("hybrid (local_first, defaults, cap)", &hybrid);
    println!(
        "hybrid daily cap {}: {} (cloud spend {}, {} cap refusals)",
        usd(Caps::default().daily_micros),
        if hybrid.cap_refusals > 0 {
            "HIT"
        } else {
            "not hit"
        },
        usd(hybrid.cloud_ledger_micros),
        hybrid.cap_refusals
    );
    println!();

    let best = local.mean_s.min(cloud.mean_s);
    let (cost_ok, lat_ok) = targets(&local, &cloud, &hybrid);
    println!(
        "target: hybrid cost <= half of cloud-only ({} <= {}): {}",
        usd(hybrid.total_micros()),
        usd(cloud.total_micros() / 2),
        if cost_ok { "PASS" } else { "FAIL" }
    );
    println!(
        "target: hybrid mean latency within 10% of the best single backend ({:.1} s <= {:.1} s, best = {}): {}",
        hybrid.mean_s,
        best * 1.10,
        if local.mean_s <= cloud.mean_s {
            "local-only"
        } else {
            "cloud-only"
        },
        if lat_ok { "PASS" } else { "FAIL" }
    );
    if hybrid.cloud_jobs == 0 {
        println!(
            "note: the default hybrid sent no job to the cloud: local_first overflows only when the local queue reaches \
             local_queue_threshold ({}), but the dispatcher holds at most max_in_flight ({}) of ours there, so the \
             local GPU always \"has room\" and jobs wait for it",
            defaults.local_queue_threshold, defaults.max_in_flight
        );
    }

    // What-ifs, to see which parameter matters (not the app's defaults).
    println!();
    println!("what-if (hybrid with the cap; not the defaults):");
    header();
    let o = run(
        Scenario {
            name: "what-if",
            count_waiting_ahead: false,
            ..base
        },
        &jobs,
    );
    row("before: waiting jobs not counted", &o);
    for threshold in [1, 2, 3, 8] {
        let o = run(
            Scenario {
                name: "what-if",
                router: RouterConfig {
                    local_queue_threshold: threshold,
                    ..defaults
                },
                ..base
            },
            &jobs,
        );
        row(&format!("local_queue_threshold = {threshold}"), &o);
    }
    let o = run(
        Scenario {
            name: "what-if",
            router: RouterConfig {
                policy: Policy::Fastest,
                ..defaults
            },
            ..base
        },
        &jobs,
    );
    row("policy fastest", &o);
    for threshold in [2, 5] {
        let o = run(
            Scenario {
                name: "what-if",
                router: RouterConfig {
                    local_queue_threshold: threshold,
                    ..defaults
                },
                count_waiting_ahead: true,
                overflow_only_if_sooner: true,
                ..base
            },
            &jobs,
        );
        row(&format!("thr {threshold}, cloud only if sooner"), &o);
    }

    // The router before it counted our jobs waiting for the local GPU (for the comparison over other days).
    let before = Scenario {
        name: "before",
        count_waiting_ahead: false,
        ..base
    };
    // The cap path at work: the default hybrid with a daily cap of 25 cents.
    let tight = Caps {
        daily_micros: 250_000,
        ..Caps::default()
    };
    let o = run(
        Scenario {
            caps: Some(tight),
            ..base
        },
        &jobs,
    );
    row("default hybrid, cap $0.25", &o);
    println!(
        "  (cap {}: {} — {} times cap_check refused the endpoint (a waiting job asks again each round) and the router chose again without it; \
         ledger {} never above the cap)",
        usd(tight.daily_micros),
        if o.cap_refusals > 0 { "HIT" } else { "not hit" },
        o.cap_refusals,
        usd(o.cloud_ledger_micros)
    );
    assert!(o.cloud_ledger_micros <= tight.daily_micros);

    // Other days of the same mix: how robust is each verdict?
    let days = 20u64;
    let (mut d_cost, mut d_lat, mut p_cost, mut p_lat, mut cloud_best) = (0, 0, 0, 0, 0);
    let mut hybrid_vs_best: Vec<f64> = Vec::new();
    let mut hybrid_vs_cloud_cost: Vec<f64> = Vec::new();
    let mut proposed_vs_best: Vec<f64> = Vec::new();
    let mut proposed_vs_cloud_cost: Vec<f64> = Vec::new();
    for seed in 1..=days {
        let jobs = arrivals(seed, JOBS);
        let go = |sc: Scenario| run_seeded(sc, &jobs, seed);
        let l = go(Scenario {
            name: "local-only",
            fleet: Fleet::LocalOnly,
            caps: None,
            ..base
        });
        let c = go(Scenario {
            name: "cloud-only",
            fleet: Fleet::CloudOnly,
            caps: None,
            ..base
        });
        let h = go(base);
        let p = go(before);
        let best = l.mean_s.min(c.mean_s);
        cloud_best += usize::from(c.mean_s < l.mean_s);
        let (a, b) = targets(&l, &c, &h);
        d_cost += usize::from(a);
        d_lat += usize::from(b);
        let (a, b) = targets(&l, &c, &p);
        p_cost += usize::from(a);
        p_lat += usize::from(b);
        hybrid_vs_best.push(h.mean_s / best);
        hybrid_vs_cloud_cost.push(h.total_micros() as f64 / c.total_micros() as f64);
        proposed_vs_best.push(p.mean_s / best);
        proposed_vs_cloud_cost.push(p.total_micros() as f64 / c.total_micros() as f64);
    }
    let span = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        format!("{lo:.2}–{hi:.2}")
    };
    println!();
    println!("{days} other days (seeds 1..={days}); cloud-only had the better mean on {cloud_best} of them:");
    println!(
        "  default hybrid:                      cost target met {d_cost}/{days}, latency target met {d_lat}/{days} \
         (mean / best single: {}, cost / cloud-only: {})",
        span(&hybrid_vs_best),
        span(&hybrid_vs_cloud_cost)
    );
    println!(
        "  router before (waiting not counted):  cost target met {p_cost}/{days}, latency target met {p_lat}/{days} \
         (mean / best single: {}, cost / cloud-only: {})",
        span(&proposed_vs_best),
        span(&proposed_vs_cloud_cost)
    );
    if hybrid.cloud_jobs == 0 {
        println!(
            "verdict: the default hybrid never used the cloud on this day; on other days its latency target is met \
             {d_lat}/{days}"
        );
    }

    if !(cost_ok && lat_ok) {
        std::process::exit(1);
    }
}
