//! A cashier screen in a detached tmux session: keys in with `send-keys`, the screen out with
//! `capture-pane` — the real binary, used like a cashier uses it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_shanfu");

pub struct Tmux {
    socket: String,
    pub dir: PathBuf,
    /// What the sale screen says in the session's language (`next_sale` waits for it).
    sale_prompt: &'static str,
}

/// The English sale screen's prompt.
pub const SALE_EN: &str = "SALE — enter the amount";
/// The Chinese one (the default of the shipped CNY configuration).
pub const SALE_ZH: &str = "消费 — 请输入金额";

impl Tmux {
    /// `shanfu --data DIR ARGS...` in a detached tmux session of `cols`×`rows`, with the
    /// shipped configuration (Chinese screens: a CNY terminal).
    pub fn start(name: &str, cols: u16, rows: u16, args: &[&str]) -> Tmux {
        Self::launch(name, cols, rows, args, None)
    }

    /// The same with English screens: a `--config` directory whose terminal.toml is the shipped
    /// one with `language = "en"` (the product has no language flag).
    pub fn start_english(name: &str, cols: u16, rows: u16, args: &[&str]) -> Tmux {
        Self::launch(name, cols, rows, args, Some("language = \"en\""))
    }

    fn launch(name: &str, cols: u16, rows: u16, args: &[&str], terminal_line: Option<&str>) -> Tmux {
        let dir = std::env::temp_dir().join(format!("shanfu-tui-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = format!("shanfu-test-{}-{name}", std::process::id());
        let mut config = String::new();
        if let Some(line) = terminal_line {
            let cfg = dir.join("config");
            std::fs::create_dir_all(&cfg).unwrap();
            let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/terminal.toml")).unwrap();
            assert!(shipped.contains("[terminal]\n"));
            std::fs::write(cfg.join("terminal.toml"), shipped.replacen("[terminal]\n", &format!("[terminal]\n{line}\n"), 1)).unwrap();
            config = format!("--config {} ", cfg.display());
        }
        let cmd = format!("{BIN} --data {} {config}{} 2> {}", dir.display(), args.join(" "), dir.join("stderr.log").display());
        let ok = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-s", "pos", "-x", &cols.to_string(), "-y", &rows.to_string(), &cmd])
            .env("TERM", "xterm-256color")
            .stdin(Stdio::null())
            .status()
            .expect("tmux (installed by scripts/setup.sh)");
        assert!(ok.success(), "tmux new-session failed");
        Tmux { socket, dir, sale_prompt: if terminal_line.is_some() { SALE_EN } else { SALE_ZH } }
    }

    pub fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").args(["-L", &self.socket]).args(args).stdin(Stdio::null()).output().expect("tmux")
    }

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            let out = self.tmux(&["send-keys", "-t", "pos", k]);
            assert!(out.status.success(), "send-keys {k}: {}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    pub fn type_text(&self, text: &str) {
        for c in text.chars() {
            self.keys(&[&c.to_string()]);
        }
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "pos"]).stdout).into_owned()
    }

    /// Waits until every one of `texts` is on the screen.
    pub fn wait_for(&self, texts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if texts.iter().all(|t| s.contains(t)) {
                return s;
            }
            if Instant::now() > deadline {
                let err = std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
                panic!("screen never showed {texts:?}:\n{s}\nstderr: {err}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// From the outcome to a new sale (Enter, repeated while the outcome's hold time runs).
    pub fn next_sale(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.screen().contains(self.sale_prompt) {
            assert!(Instant::now() < deadline, "no new sale:\n{}", self.screen());
            self.keys(&["Enter"]);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `q` on the sale screen, then waits (bounded) for the program to end.
    pub fn quit(&self) {
        self.keys(&["q"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.running() {
            assert!(Instant::now() < deadline, "did not quit:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn running(&self) -> bool {
        self.tmux(&["has-session", "-t", "pos"]).status.success()
    }

    pub fn shanfu(&self, args: &[&str]) -> std::process::Output {
        self.shanfu_in(&self.dir, args)
    }

    /// `shanfu --data DIR/training ARGS...`: the demo's own (training) data.
    pub fn shanfu_training(&self, args: &[&str]) -> std::process::Output {
        self.shanfu_in(&self.dir.join("training"), args)
    }

    fn shanfu_in(&self, data: &std::path::Path, args: &[&str]) -> std::process::Output {
        Command::new(BIN).arg("--data").arg(data).args(args).stdin(Stdio::null()).output().expect("shanfu")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
