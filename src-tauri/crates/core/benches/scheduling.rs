//! Scheduling quality: 200 jobs over 3 servers whose speeds differ 1:2:4, driven through the real
//! router in virtual time. Prints each policy's makespan against the ideal lower bound.
//! Run: cargo bench -p comfyfleet-core --bench scheduling

use comfyfleet_core::router::{simulation, Policy};

fn main() {
    let secs = [4.0, 2.0, 1.0];
    let jobs = 200;
    let bound = simulation::lower_bound(&secs, jobs);
    println!("{jobs} jobs over 3 servers taking {secs:?} s per job (speeds 1:2:4)");
    println!("ideal lower bound: {bound:.1} s");
    for p in Policy::ALL {
        let m = simulation::makespan(p, &secs, jobs);
        println!(
            "{:<12} makespan {:>7.1} s  = {:.3} x bound",
            p.as_str(),
            m,
            m / bound
        );
    }
    let fastest = simulation::makespan(Policy::Fastest, &secs, jobs);
    let rr = simulation::makespan(Policy::RoundRobin, &secs, jobs);
    let ok = fastest <= bound * 1.10 && fastest < rr;
    println!(
        "target: fastest within 10% of the bound and better than round robin: {}",
        if ok { "PASS" } else { "FAIL" }
    );
    if !ok {
        std::process::exit(1);
    }
}
