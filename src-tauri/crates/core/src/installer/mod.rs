//! The local install: the manifest of what to fetch, the plan decided from the machine, and (next)
//! the idempotent steps and the local server supervisor.

pub mod manifest;
pub mod plan;
