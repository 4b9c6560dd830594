//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod gate;
pub mod tmux;

/// A configuration directory whose host.toml says `mac = false`: the terminal talks to a
/// third-party or fake host without keys (the link is then reported unauthenticated).
pub fn keyless_config(dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = dir.join("config-keyless");
    std::fs::create_dir_all(&cfg).expect("config dir");
    let host = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/host.toml")).expect("host.toml");
    std::fs::write(cfg.join("host.toml"), host.replace("mac = true", "mac = false")).expect("write host.toml");
    cfg
}
