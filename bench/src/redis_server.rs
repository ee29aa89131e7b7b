//! A `redis-server` of the harness's own, on a unix socket in a temporary
//! folder, for the cluster measurements; stopped when dropped.

use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

pub struct RedisServer {
    process: Child,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Start one (nothing kept on disk) and wait until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("redis.sock");
        let process = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
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
            .context("starting redis-server (Debian: apt install redis-server)")?;
        let server = Self { process, dir };
        let started = Instant::now();
        while UnixStream::connect(&socket).is_err() {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }

    /// The URL nodes join it with.
    pub fn url(&self) -> String {
        format!("unix://{}", self.dir.path().join("redis.sock").display())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
