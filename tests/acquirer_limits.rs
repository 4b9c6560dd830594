//! The acquirer under connection pressure, through the binary (issue 13 §2): idle connections,
//! however many, and a small descriptor limit leave it answering; idle connections time out.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use iso8583::{ascii87, field, Message, Mti};

const BIN: &str = env!("CARGO_BIN_EXE_shanfu");

struct Acquirer {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Acquirer {
    /// `shanfu acquirer --mac off` on a free loopback port, under `prlimit` when `nofile` is given.
    fn start(name: &str, nofile: Option<u32>, extra: &[&str]) -> Acquirer {
        let dir = std::env::temp_dir().join(format!("shanfu-limits-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut cmd = match nofile {
            // prlimit execs the command: the child's pid is the acquirer's.
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = cmd
            .args(["acquirer", "--listen", "127.0.0.1:0", "--mac", "off", "--db"])
            .arg(dir.join("acquirer"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the acquirer");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("first line");
        let addr = line.trim().rsplit(' ').next().unwrap_or("").to_string();
        assert!(addr.starts_with("127.0.0.1:"), "acquirer said {line:?}");
        Acquirer { child, addr, dir }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        s
    }

    /// Whether the acquirer still runs.
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Acquirer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn echo(stan: u32) -> Vec<u8> {
    let mut m = Message::new(Mti::NETWORK_MANAGEMENT_REQUEST);
    m.set_str(field::STAN, &format!("{stan:06}")).set_str(field::TERMINAL_ID, "TEST0001").set_str(field::NETWORK_MANAGEMENT_CODE, "301");
    ascii87().pack_framed(&m).expect("pack")
}

/// Sends an echo on `s` and reads its answer's DE 39 (`None`: no answer, the connection closed).
fn echo_on(s: &mut TcpStream, stan: u32) -> Option<String> {
    s.write_all(&echo(stan)).ok()?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).ok()?;
    let m = ascii87().unpack(&body).ok()?;
    assert_eq!(m.get_str(field::STAN), Some(format!("{stan:06}").as_str()), "the answer to this echo");
    m.get_str(field::RESPONSE_CODE).map(str::to_string)
}

/// Whether the acquirer closed `s` within the read timeout (end of stream or reset; a read
/// that times out means it is still open).
fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

#[test]
fn five_hundred_idle_connections_under_a_descriptor_limit_of_128_leave_echoes_answered() {
    let mut acq = Acquirer::start("flood", Some(128), &[]);
    let mut first = acq.connect();
    assert_eq!(echo_on(&mut first, 1).as_deref(), Some("00"), "answers before the flood");
    // 500 connections that never send a byte: more than the process has descriptors.
    let idle: Vec<TcpStream> = (0..500).map(|_| acq.connect()).collect();
    assert!(acq.alive(), "the acquirer survived the flood");
    // A terminal connecting now is answered at once: the idlest connection made room.
    for stan in 2..12 {
        let mut t = acq.connect();
        assert_eq!(echo_on(&mut t, stan).as_deref(), Some("00"), "echo {stan} after the flood");
    }
    // The connection quiet longest gave its place up: closed, not answered.
    assert_eq!(echo_on(&mut first, 99), None, "the idlest connection was closed to make room");
    // The newest idle connections still hold their place and are served.
    let mut last = idle.into_iter().last().expect("500 connections");
    assert_eq!(echo_on(&mut last, 100).as_deref(), Some("00"));
    assert!(acq.alive());
}

#[test]
fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let acq = Acquirer::start("idle", None, &["--idle-timeout", "1"]);
    let mut quiet = acq.connect();
    let mut talking = acq.connect();
    assert_eq!(echo_on(&mut talking, 1).as_deref(), Some("00"));
    // Half a frame, then silence: closed as well.
    let mut partial = acq.connect();
    partial.write_all(&echo(2)[..5]).expect("write");
    assert!(closed(&mut quiet), "a connection that never spoke is closed");
    assert!(closed(&mut partial), "a frame begun and never finished is closed");
    // And the acquirer goes on answering new connections.
    let mut t = acq.connect();
    assert_eq!(echo_on(&mut t, 3).as_deref(), Some("00"));
}
