//! Where a job goes: a pure decision from the job, the candidate backends with their live state,
//! the routing policy and the clock. No I/O; the dispatcher feeds it and carries out the answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::workflow::ModelRef;

/// How jobs are spread over the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// The active server; with auto-switch on, the next healthy one when it fails.
    #[default]
    Manual,
    /// The server with the shortest queue.
    LeastBusy,
    /// Each server in turn.
    RoundRobin,
    /// Servers tagged `local` while healthy and under the queue threshold; the rest take the overflow.
    LocalFirst,
    /// The server with the earliest estimated finish (queue depth × its measured time for this workflow).
    Fastest,
}

impl Policy {
    pub const ALL: [Policy; 5] = [
        Policy::Manual,
        Policy::LeastBusy,
        Policy::RoundRobin,
        Policy::LocalFirst,
        Policy::Fastest,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Manual => "manual",
            Policy::LeastBusy => "least_busy",
            Policy::RoundRobin => "round_robin",
            Policy::LocalFirst => "local_first",
            Policy::Fastest => "fastest",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Policy::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Routing settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct RouterConfig {
    pub policy: Policy,
    /// Manual policy: move to the next healthy server when the active one is down.
    pub auto_switch: bool,
    /// Local first: a local server takes jobs while its queue is below this.
    pub local_queue_threshold: u32,
    /// Jobs of ours in flight on one server at most (keeps servers fed without hoarding).
    pub max_in_flight: u32,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            policy: Policy::Manual,
            auto_switch: false,
            local_queue_threshold: 5,
            max_in_flight: 2,
        }
    }
}

/// What the router knows about one backend right now.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub online: bool,
    pub active: bool,
    pub local: bool,
    /// Our jobs dispatched to it and not finished.
    pub in_flight: u32,
    /// Its whole queue (running + pending, ours included), as last seen.
    pub queue_depth: u32,
    /// Model files it has, per folder; `None` when unknown (not yet listed).
    pub models: Option<BTreeMap<String, Vec<String>>>,
    /// Measured seconds for this workflow on it (`None` = no measurement yet).
    pub secs_per_job: Option<f64>,
    /// A wake-up cost (cold start) before its first job, in seconds.
    pub warmup_secs: f64,
}

/// What the job asks of its backend.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobNeeds {
    pub models: Vec<ModelRef>,
    /// The user chose this server.
    pub pinned: Option<String>,
    /// Servers this job already failed on (failover skips them).
    pub avoid: Vec<String>,
    /// Jobs waiting for a server, this one included (the fastest policy uses slower servers only
    /// while there is enough work behind this job to keep the faster ones busy).
    pub backlog: u32,
    /// Our jobs ahead of this one that are still waiting (for a free slot). Local first counts them in the local
    /// queue: the dispatcher keeps only a few jobs on a server at once, so without them the local queue would never
    /// reach its threshold and nothing would overflow.
    pub waiting_ahead: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Send it there now.
    Dispatch { server_id: String, reason: String },
    /// A capable server exists but all are busy or briefly unavailable: keep it queued.
    Wait { reason: String },
    /// No server can ever run it as things stand; the message says why and what to do.
    Refuse { reason: String },
}

/// Which of a job's models a server lacks (empty when it has them all or its inventory is unknown).
pub fn missing_models(c: &Candidate, needs: &[ModelRef]) -> Vec<ModelRef> {
    let Some(inv) = &c.models else { return vec![] };
    needs
        .iter()
        .filter(|m| {
            !inv.get(&m.folder)
                .is_some_and(|files| files.iter().any(|f| same_file(f, &m.name)))
        })
        .cloned()
        .collect()
}

/// ComfyUI lists files under subfolders with either separator.
fn same_file(a: &str, b: &str) -> bool {
    a.replace('\\', "/") == b.replace('\\', "/")
}

fn est_secs(c: &Candidate, fallback: f64) -> f64 {
    c.secs_per_job.unwrap_or(fallback)
}

/// Estimated seconds until a new job would finish on `c`.
pub fn estimated_finish(c: &Candidate, fallback: f64) -> f64 {
    let per = est_secs(c, fallback);
    let warm = if c.queue_depth == 0 && c.in_flight == 0 {
        c.warmup_secs
    } else {
        0.0
    };
    warm + (c.queue_depth.max(c.in_flight) as f64 + 1.0) * per
}

/// Decide where `needs` goes. `rr_cursor` is the round-robin position (the dispatcher keeps it);
/// the returned cursor is the one to keep.
pub fn decide(
    needs: &JobNeeds,
    candidates: &[Candidate],
    cfg: &RouterConfig,
    rr_cursor: usize,
) -> (Decision, usize) {
    // 1. Who could run it at all: online, not failed before, has the models.
    let mut lacking: Vec<(String, Vec<ModelRef>)> = Vec::new();
    let capable: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !needs.avoid.contains(&c.id))
        .filter(|c| {
            let miss = missing_models(c, &needs.models);
            if !miss.is_empty() {
                lacking.push((c.name.clone(), miss));
                false
            } else {
                true
            }
        })
        .collect();

    if let Some(pin) = &needs.pinned {
        return match capable.iter().find(|c| &c.id == pin) {
            Some(c) if !c.online => (Decision::Wait { reason: format!("'{}' is offline; the job waits for it", c.name) }, rr_cursor),
            Some(c) if c.in_flight >= cfg.max_in_flight => (Decision::Wait { reason: format!("'{}' is busy", c.name) }, rr_cursor),
            Some(c) => (Decision::Dispatch { server_id: c.id.clone(), reason: format!("you chose '{}'", c.name) }, rr_cursor),
            None => match lacking.iter().find(|(n, _)| candidates.iter().any(|c| &c.id == pin && &c.name == n)) {
                Some((name, miss)) => (Decision::Refuse { reason: format!("'{name}' lacks {}. Install them there or choose another server.", list_models(miss)) }, rr_cursor),
                None => (Decision::Refuse { reason: "The chosen server is no longer in the list. Choose another server or Auto.".into() }, rr_cursor),
            },
        };
    }

    if capable.is_empty() {
        return (refuse_no_capable(candidates, &lacking, needs), rr_cursor);
    }
    let online: Vec<&Candidate> = capable.iter().copied().filter(|c| c.online).collect();
    if online.is_empty() {
        return (
            Decision::Wait {
                reason: "every server that can run this job is offline; it waits until one is back"
                    .into(),
            },
            rr_cursor,
        );
    }
    let free = |c: &&Candidate| c.in_flight < cfg.max_in_flight;
    let fallback = mean_secs(&online);

    let pick: Option<(&Candidate, String)> = match cfg.policy {
        Policy::Manual => {
            let Some(active_pos) = candidates.iter().position(|c| c.active) else {
                return (
                    Decision::Wait {
                        reason: "no server is active; make one active or choose a routing policy"
                            .into(),
                    },
                    rr_cursor,
                );
            };
            let active = &candidates[active_pos];
            match online.iter().find(|c| c.id == active.id).copied() {
                Some(c) => Some((c, format!("'{}' is the active server", c.name))),
                None if cfg.auto_switch => {
                    // The next healthy server after the active one, in list order.
                    let n = candidates.len();
                    let next = (1..n)
                        .map(|i| &candidates[(active_pos + i) % n])
                        .find_map(|c| online.iter().find(|o| o.id == c.id).copied());
                    match next {
                        Some(c) => Some((c, format!("'{}' is unavailable; auto-switch chose '{}'", active.name, c.name))),
                        None => return (Decision::Wait { reason: "no server that can run this job is online".into() }, rr_cursor),
                    }
                }
                None => {
                    return (
                        Decision::Wait {
                            reason: format!("the active server '{}' is offline or cannot run this job; the job waits (turn on auto-switch to use another server)", active.name),
                        },
                        rr_cursor,
                    )
                }
            }
        }
        Policy::LeastBusy => online
            .iter()
            .min_by_key(|c| (c.queue_depth.max(c.in_flight), c.in_flight))
            .map(|c| {
                (
                    *c,
                    format!("'{}' has the shortest queue ({})", c.name, c.queue_depth),
                )
            }),
        Policy::RoundRobin => {
            // Strictly in turn: when the server whose turn it is has no free slot, the job waits for it.
            let n = online.len();
            let c = online[rr_cursor % n];
            return if free(&c) {
                (
                    Decision::Dispatch {
                        server_id: c.id.clone(),
                        reason: format!("round robin: '{}'", c.name),
                    },
                    rr_cursor % n + 1,
                )
            } else {
                (
                    Decision::Wait {
                        reason: format!("round robin: waiting for '{}' to free a slot", c.name),
                    },
                    rr_cursor,
                )
            };
        }
        Policy::LocalFirst => {
            let local_ok = online
                .iter()
                .filter(|c| {
                    c.local
                        && c.queue_depth.max(c.in_flight) + needs.waiting_ahead
                            < cfg.local_queue_threshold
                })
                .min_by(|a, b| {
                    estimated_finish(a, fallback).total_cmp(&estimated_finish(b, fallback))
                })
                .copied();
            match local_ok {
                Some(c) => Some((c, format!("local first: '{}' has room", c.name))),
                None => online
                    .iter()
                    .filter(|c| !c.local)
                    .min_by(|a, b| {
                        estimated_finish(a, fallback).total_cmp(&estimated_finish(b, fallback))
                    })
                    .map(|c| {
                        (
                            *c,
                            format!("local servers are busy or down; overflow to '{}'", c.name),
                        )
                    })
                    .or_else(|| {
                        online
                            .iter()
                            .min_by(|a, b| {
                                estimated_finish(a, fallback)
                                    .total_cmp(&estimated_finish(b, fallback))
                            })
                            .map(|c| {
                                (
                                    *c,
                                    format!(
                                        "only local servers can run it; '{}' is least loaded",
                                        c.name
                                    ),
                                )
                            })
                    }),
            }
        }
        Policy::Fastest => {
            let finish = |c: &Candidate| estimated_finish(c, fallback);
            let best = online
                .iter()
                .copied()
                .min_by(|a, b| finish(a).total_cmp(&finish(b)));
            match best {
                Some(b) if !free(&b) => {
                    // The best server is full. A free, slower one is still worth using when it would
                    // finish this job before the others could get through the work already waiting.
                    let mut free_ones: Vec<&Candidate> =
                        online.iter().copied().filter(|c| free(c)).collect();
                    free_ones.sort_by(|a, b| finish(a).total_cmp(&finish(b)));
                    let worth = free_ones.into_iter().find(|c| {
                        let others = online.iter().filter(|o| o.id != c.id);
                        let rate: f64 = others
                            .clone()
                            .map(|o| 1.0 / est_secs(o, fallback).max(1e-6))
                            .sum();
                        let load: f64 = others.map(|o| o.queue_depth.max(o.in_flight) as f64).sum();
                        rate > 0.0 && finish(c) <= (needs.backlog.max(1) as f64 + load) / rate
                    });
                    match worth {
                        Some(c) => Some((c, format!("'{}' is full; '{}' finishes this job sooner than waiting (~{:.0} s)", b.name, c.name, finish(c)))),
                        None => Some((b, String::new())),
                    }
                }
                Some(b) => Some((
                    b,
                    format!("'{}' should finish it first (~{:.0} s)", b.name, finish(b)),
                )),
                None => None,
            }
        }
    };
    match pick {
        Some((c, reason)) if free(&c) => (
            Decision::Dispatch {
                server_id: c.id.clone(),
                reason,
            },
            rr_cursor,
        ),
        Some((c, _)) => (
            Decision::Wait {
                reason: format!("waiting for '{}' to free a slot", c.name),
            },
            rr_cursor,
        ),
        None => (
            Decision::Wait {
                reason: "no server is ready".into(),
            },
            rr_cursor,
        ),
    }
}

fn mean_secs(cs: &[&Candidate]) -> f64 {
    let known: Vec<f64> = cs.iter().filter_map(|c| c.secs_per_job).collect();
    if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    }
}

fn list_models(m: &[ModelRef]) -> String {
    m.iter()
        .map(|m| format!("{}/{}", m.folder, m.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn refuse_no_capable(
    candidates: &[Candidate],
    lacking: &[(String, Vec<ModelRef>)],
    needs: &JobNeeds,
) -> Decision {
    if candidates.is_empty() {
        return Decision::Refuse {
            reason: "There are no servers. Add one in Servers (or install ComfyUI locally) first."
                .into(),
        };
    }
    if !lacking.is_empty() {
        let detail = lacking
            .iter()
            .map(|(n, m)| format!("'{n}' lacks {}", list_models(m)))
            .collect::<Vec<_>>()
            .join("; ");
        return Decision::Refuse { reason: format!("No server has the models this workflow needs: {detail}. Download them to a server's models folder, then run again.") };
    }
    let _ = needs;
    Decision::Refuse {
        reason: "This job failed on every server that could run it.".into(),
    }
}

/// A virtual-time simulation that drives [`decide`] the way the dispatcher does: each server runs
/// one job at a time and holds at most `max_in_flight` of ours; per-job times are learnt from
/// completions. Used by the scheduling benchmark and its test. Pure.
pub mod simulation {
    use super::*;

    /// Makespan (virtual seconds) of `jobs` identical jobs over servers with the given seconds per job.
    pub fn makespan(policy: Policy, secs_per_job: &[f64], jobs: usize) -> f64 {
        let cfg = RouterConfig {
            policy,
            auto_switch: true,
            local_queue_threshold: 5,
            max_in_flight: 2,
        };
        let n = secs_per_job.len();
        let mut cands: Vec<Candidate> = (0..n)
            .map(|i| Candidate {
                id: format!("s{i}"),
                name: format!("server {i}"),
                online: true,
                active: i == 0,
                local: i == 0,
                in_flight: 0,
                queue_depth: 0,
                models: None,
                secs_per_job: None,
                warmup_secs: 0.0,
            })
            .collect();
        // Per server: finish times of the jobs it holds, in order (it runs them one after another).
        let mut held: Vec<Vec<f64>> = vec![Vec::new(); n];
        let (mut now, mut queued, mut done, mut cursor, mut last) =
            (0.0f64, jobs, 0usize, 0usize, 0.0f64);
        while done < jobs {
            // Dispatch as long as the router says so.
            while queued > 0 {
                for (i, c) in cands.iter_mut().enumerate() {
                    c.in_flight = held[i].len() as u32;
                    c.queue_depth = c.in_flight;
                }
                let needs = JobNeeds {
                    backlog: queued as u32,
                    ..Default::default()
                };
                let (d, next) = decide(&needs, &cands, &cfg, cursor);
                cursor = next;
                let Decision::Dispatch { server_id, .. } = d else {
                    break;
                };
                let i = cands.iter().position(|c| c.id == server_id).unwrap_or(0);
                let start = held[i].last().copied().unwrap_or(now).max(now);
                held[i].push(start + secs_per_job[i]);
                queued -= 1;
            }
            // Advance to the next completion.
            let (i, t) = held
                .iter()
                .enumerate()
                .filter_map(|(i, h)| h.first().map(|t| (i, *t)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((0, now));
            now = t;
            held[i].remove(0);
            cands[i].secs_per_job = Some(secs_per_job[i]);
            done += 1;
            last = last.max(t);
        }
        last
    }

    /// The ideal lower bound: total work spread perfectly over the combined rate.
    pub fn lower_bound(secs_per_job: &[f64], jobs: usize) -> f64 {
        jobs as f64 / secs_per_job.iter().map(|s| 1.0 / s).sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str) -> Candidate {
        Candidate {
            id: id.into(),
            name: id.to_uppercase(),
            online: true,
            active: false,
            local: false,
            in_flight: 0,
            queue_depth: 0,
            models: None,
            secs_per_job: None,
            warmup_secs: 0.0,
        }
    }
    fn cfg(policy: Policy) -> RouterConfig {
        RouterConfig {
            policy,
            ..Default::default()
        }
    }
    fn dispatched(d: &Decision) -> &str {
        match d {
            Decision::Dispatch { server_id, .. } => server_id,
            other => panic!("expected a dispatch, got {other:?}"),
        }
    }
    fn inv(files: &[(&str, &str)]) -> Option<BTreeMap<String, Vec<String>>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (folder, f) in files {
            m.entry(folder.to_string()).or_default().push(f.to_string());
        }
        Some(m)
    }

    #[test]
    fn router_manual_uses_the_active_server_and_waits_when_it_is_down() {
        let mut a = c("a");
        let mut b = c("b");
        b.active = true;
        let (d, _) = decide(
            &JobNeeds::default(),
            &[a.clone(), b.clone()],
            &cfg(Policy::Manual),
            0,
        );
        assert_eq!(dispatched(&d), "b");
        b.online = false;
        let (d, _) = decide(
            &JobNeeds::default(),
            &[a.clone(), b.clone()],
            &cfg(Policy::Manual),
            0,
        );
        assert!(matches!(d, Decision::Wait { .. }));
        let auto = RouterConfig {
            auto_switch: true,
            ..cfg(Policy::Manual)
        };
        let (d, _) = decide(&JobNeeds::default(), &[a.clone(), b.clone()], &auto, 0);
        assert_eq!(dispatched(&d), "a");
        a.online = false;
        let (d, _) = decide(&JobNeeds::default(), &[a.clone(), b.clone()], &auto, 0);
        assert!(matches!(d, Decision::Wait { .. }));
        // No active server at all: the job waits, even with auto-switch.
        let (mut a2, mut b2) = (a, b);
        a2.online = true;
        b2.online = true;
        b2.active = false;
        let (d, _) = decide(&JobNeeds::default(), &[a2, b2], &auto, 0);
        assert!(matches!(d, Decision::Wait { reason } if reason.contains("no server is active")));
    }

    #[test]
    fn router_least_busy_picks_the_shortest_queue() {
        let mut a = c("a");
        a.queue_depth = 3;
        let mut b = c("b");
        b.queue_depth = 1;
        let (d, _) = decide(&JobNeeds::default(), &[a, b], &cfg(Policy::LeastBusy), 0);
        assert_eq!(dispatched(&d), "b");
    }

    #[test]
    fn router_round_robin_takes_turns_and_skips_full_servers() {
        let cands = vec![c("a"), c("b"), c("c")];
        let mut cursor = 0;
        let mut seen = vec![];
        for _ in 0..4 {
            let (d, next) = decide(
                &JobNeeds::default(),
                &cands,
                &cfg(Policy::RoundRobin),
                cursor,
            );
            seen.push(dispatched(&d).to_string());
            cursor = next;
        }
        assert_eq!(seen, ["a", "b", "c", "a"]);
        let mut full = cands.clone();
        full[1].in_flight = 2;
        let (d, cursor) = decide(&JobNeeds::default(), &full, &cfg(Policy::RoundRobin), 1);
        assert!(
            matches!(d, Decision::Wait { .. }),
            "strict turns: b is full, so the job waits for b"
        );
        assert_eq!(cursor, 1);
    }

    #[test]
    fn router_local_first_counts_our_jobs_waiting_for_local_in_its_queue() {
        let mut local = c("local");
        local.local = true;
        local.in_flight = 2; // the dispatcher's limit: its queue alone never reaches 5
        local.queue_depth = 2;
        let cloud = c("cloud");
        let needs = |ahead| JobNeeds {
            waiting_ahead: ahead,
            ..Default::default()
        };
        let pair = [local, cloud];
        let (d, _) = decide(&needs(2), &pair, &cfg(Policy::LocalFirst), 0);
        assert!(
            matches!(d, Decision::Wait { .. }),
            "4 in line: it waits for local: {d:?}"
        );
        let (d, _) = decide(&needs(3), &pair, &cfg(Policy::LocalFirst), 0);
        assert_eq!(dispatched(&d), "cloud", "5 in line for local: it overflows");
    }

    #[test]
    fn router_prefers_a_warm_cloud_backend_to_a_cold_one() {
        let mut local = c("local");
        local.local = true;
        local.queue_depth = 9;
        let mut cold = c("cold");
        cold.warmup_secs = 30.0;
        cold.secs_per_job = Some(5.0);
        let mut warm = c("warm");
        warm.secs_per_job = Some(5.0);
        for policy in [Policy::LocalFirst, Policy::Fastest] {
            let (d, _) = decide(
                &JobNeeds::default(),
                &[local.clone(), cold.clone(), warm.clone()],
                &cfg(policy),
                0,
            );
            assert_eq!(dispatched(&d), "warm", "{policy:?}");
        }
        // A cold start is worth it when the warm one is busy for longer than the wake-up.
        warm.queue_depth = 10;
        warm.in_flight = 1;
        let (d, _) = decide(
            &JobNeeds::default(),
            &[local, cold, warm],
            &cfg(Policy::LocalFirst),
            0,
        );
        assert_eq!(dispatched(&d), "cold");
    }

    #[test]
    fn router_local_first_overflows_only_past_the_threshold() {
        let mut local = c("local");
        local.local = true;
        local.queue_depth = 4;
        let cloud = c("cloud");
        let (d, _) = decide(
            &JobNeeds::default(),
            &[local.clone(), cloud.clone()],
            &cfg(Policy::LocalFirst),
            0,
        );
        assert_eq!(dispatched(&d), "local");
        local.queue_depth = 5;
        let (d, _) = decide(
            &JobNeeds::default(),
            &[local.clone(), cloud.clone()],
            &cfg(Policy::LocalFirst),
            0,
        );
        assert_eq!(dispatched(&d), "cloud");
        local.queue_depth = 0;
        local.online = false;
        let (d, _) = decide(
            &JobNeeds::default(),
            &[local, cloud],
            &cfg(Policy::LocalFirst),
            0,
        );
        assert_eq!(dispatched(&d), "cloud");
    }

    #[test]
    fn router_fastest_weighs_queue_by_measured_speed_and_waits_for_a_better_server() {
        let mut fast = c("fast");
        fast.secs_per_job = Some(1.0);
        fast.queue_depth = 2;
        fast.in_flight = 1;
        let mut slow = c("slow");
        slow.secs_per_job = Some(4.0);
        let (d, _) = decide(
            &JobNeeds::default(),
            &[fast.clone(), slow.clone()],
            &cfg(Policy::Fastest),
            0,
        );
        assert_eq!(dispatched(&d), "fast", "3 s on fast beats 4 s on slow");
        fast.in_flight = 2;
        let (d, _) = decide(
            &JobNeeds::default(),
            &[fast.clone(), slow.clone()],
            &cfg(Policy::Fastest),
            0,
        );
        assert!(
            matches!(d, Decision::Wait { .. }),
            "the fast server is full but still the better place: wait for it"
        );
        fast.queue_depth = 6;
        let (d, _) = decide(
            &JobNeeds::default(),
            &[fast, slow],
            &cfg(Policy::Fastest),
            0,
        );
        assert_eq!(dispatched(&d), "slow");
    }

    #[test]
    fn router_sends_a_job_only_where_its_models_are_and_says_what_is_missing() {
        let need = JobNeeds {
            models: vec![ModelRef {
                folder: "checkpoints".into(),
                name: "sdxl.safetensors".into(),
            }],
            ..Default::default()
        };
        let mut has = c("has");
        has.models = inv(&[("checkpoints", "sdxl.safetensors")]);
        has.queue_depth = 9;
        let mut lacks = c("lacks");
        lacks.models = inv(&[("checkpoints", "sd15.safetensors")]);
        let (d, _) = decide(
            &need,
            &[has.clone(), lacks.clone()],
            &cfg(Policy::LeastBusy),
            0,
        );
        assert_eq!(dispatched(&d), "has");
        let (d, _) = decide(&need, &[lacks], &cfg(Policy::LeastBusy), 0);
        match d {
            Decision::Refuse { reason } => assert!(
                reason.contains("'LACKS' lacks checkpoints/sdxl.safetensors"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn router_failover_avoids_servers_the_job_failed_on() {
        let mut a = c("a");
        a.active = true;
        let need = JobNeeds {
            avoid: vec!["a".into()],
            ..Default::default()
        };
        let (d, _) = decide(&need, &[a.clone(), c("b")], &cfg(Policy::LeastBusy), 0);
        assert_eq!(dispatched(&d), "b");
        let (d, _) = decide(&need, &[a], &cfg(Policy::LeastBusy), 0);
        assert!(matches!(d, Decision::Refuse { .. }));
    }

    #[test]
    fn router_pinned_job_goes_to_its_server_or_waits() {
        let mut a = c("a");
        let need = JobNeeds {
            pinned: Some("a".into()),
            ..Default::default()
        };
        let (d, _) = decide(&need, &[a.clone(), c("b")], &cfg(Policy::LeastBusy), 0);
        assert_eq!(dispatched(&d), "a");
        a.online = false;
        let (d, _) = decide(&need, &[a, c("b")], &cfg(Policy::LeastBusy), 0);
        assert!(matches!(d, Decision::Wait { .. }));
        let (d, _) = decide(&need, &[c("b")], &cfg(Policy::LeastBusy), 0);
        assert!(matches!(d, Decision::Refuse { .. }));
    }

    #[test]
    fn router_fastest_schedules_within_ten_percent_of_the_bound_and_beats_round_robin() {
        let speeds = [4.0, 2.0, 1.0];
        let bound = simulation::lower_bound(&speeds, 200);
        let fastest = simulation::makespan(Policy::Fastest, &speeds, 200);
        let rr = simulation::makespan(Policy::RoundRobin, &speeds, 200);
        assert!(
            fastest <= bound * 1.10,
            "fastest {fastest} vs bound {bound}"
        );
        assert!(fastest < rr, "fastest {fastest} vs round robin {rr}");
    }

    #[test]
    fn router_with_no_servers_says_to_add_one() {
        let (d, _) = decide(&JobNeeds::default(), &[], &cfg(Policy::Fastest), 0);
        assert!(matches!(d, Decision::Refuse { reason } if reason.contains("Add one")));
    }
}
