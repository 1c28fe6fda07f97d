//! The local install: the manifest of what to fetch, the plan decided from the machine, the idempotent
//! steps that carry it out, and what the UI sees of them.

pub mod extract;
pub mod manifest;
pub mod plan;
pub mod run;
pub mod status;
