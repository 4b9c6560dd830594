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

/// Every file under `dir`, recursively: (path, bytes).
pub fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}
