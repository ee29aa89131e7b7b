//! A `redis-server` of the test's own, on a unix socket in a temporary
//! folder, stopped when the test drops it; never a system-wide one.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::TIMEOUT;

pub struct RedisServer {
    process: Child,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Start one and wait until it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("creating a folder for redis-server");
        let mut server = Self {
            process: spawn(&dir),
            dir,
        };
        server.wait_ready();
        server
    }

    /// The URL nodes join it with.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// Send `args` with `redis-cli`; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .arg("-s")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("running redis-cli");
        assert!(output.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        while !(self.socket().exists() && self.ping()) {
            if let Ok(Some(status)) = self.process.try_wait() {
                panic!("redis-server exited at start: {status}");
            }
            assert!(started.elapsed() < TIMEOUT, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn ping(&self) -> bool {
        Command::new("redis-cli")
            .arg("-s")
            .arg(self.socket())
            .arg("PING")
            .output()
            .is_ok_and(|output| output.stdout.starts_with(b"PONG"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn spawn(dir: &tempfile::TempDir) -> Child {
    Command::new("redis-server")
        .args(["--port", "0", "--unixsocket"])
        .arg(dir.path().join("redis.sock"))
        .args([
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is not installed: `apt-get install redis-server` (Debian, Ubuntu)")
}
