//! A `redis-server` of the test's own, on a unix socket in a temporary
//! folder, stopped when the test drops it; never a system-wide one.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
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

    /// Kill it (as a crash would), leaving its socket path free.
    pub fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_file(self.socket());
    }

    /// Start it again on the same socket, empty (it keeps nothing on disk).
    pub fn restart(&mut self) {
        self.process = spawn(&self.dir);
        self.wait_ready();
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

    /// A connection of the test's own, opened now: it stays usable when
    /// Redis refuses new ones.
    pub fn admin(&self) -> Admin {
        let stream = UnixStream::connect(self.socket()).expect("connecting to redis-server");
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("setting a read timeout");
        Admin(stream)
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

/// A raw connection to Redis: inline commands, replies read as text.
pub struct Admin(UnixStream);

impl Admin {
    /// Send the inline commands `lines` and read until the replies hold
    /// `reply_lines` lines; the replies.
    pub fn send(&mut self, lines: &[&str], reply_lines: usize) -> String {
        for line in lines {
            self.0
                .write_all(format!("{line}\r\n").as_bytes())
                .expect("writing to redis-server");
        }
        let mut replies = Vec::new();
        let mut buffer = [0; 4096];
        while replies.windows(2).filter(|pair| pair == b"\r\n").count() < reply_lines {
            let read = self.0.read(&mut buffer).expect("reading from redis-server");
            assert!(read > 0, "redis-server closed the connection");
            replies.extend_from_slice(&buffer[..read]);
        }
        String::from_utf8_lossy(&replies).into_owned()
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
