//! Integration tests of comfyfleet-core against the real keychain, a real SQLite file and testkit servers.
//! Run inside a Secret Service session (scripts/test.sh starts gnome-keyring in dbus-run-session).

mod costs;
mod downloads;
mod gateway;
mod health;
mod installer;
mod jobs;
mod pods;
mod runpod;
mod servers;
mod support;
