//! Plugin stdout and stderr, sent line by line to the host's log tagged with
//! the plugin's name (a plugin never writes to the host's own stdio).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// The longest line kept before it is logged in pieces.
const MAX_LINE: usize = 8 << 10;

/// One of a plugin's output streams.
#[derive(Clone)]
pub struct LogStream {
    plugin: Arc<str>,
    stream: &'static str,
}

impl LogStream {
    /// The stream called `stream` ("stdout" or "stderr") of `plugin`.
    pub fn new(plugin: &str, stream: &'static str) -> Self {
        Self {
            plugin: plugin.into(),
            stream,
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineLogger {
            stream: self.clone(),
            line: Vec::new(),
        })
    }
}

/// Collects bytes into lines and logs each complete one.
struct LineLogger {
    stream: LogStream,
    line: Vec<u8>,
}

impl LineLogger {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end_matches(['\n', '\r']);
        tracing::info!(
            plugin = &*self.stream.plugin,
            stream = self.stream.stream,
            "{text}"
        );
        self.line.clear();
    }
}

impl AsyncWrite for LineLogger {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        for piece in bytes.split_inclusive(|byte| *byte == b'\n') {
            this.line.extend_from_slice(piece);
            if piece.ends_with(b"\n") || this.line.len() >= MAX_LINE {
                this.emit();
            }
        }
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        self.emit();
    }
}
