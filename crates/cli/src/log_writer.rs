//! The server's log sink: lines gathered in memory and written out in batches, so a busy
//! server makes one `write` per batch instead of one per request line.
//!
//! A batch is written when it reaches [`BATCH_BYTES`], and by [`Batched::flush_every`],
//! so a quiet server's lines show up within [`FLUSH_INTERVAL`]. No thread of its own:
//! the periodic flush is a task on the server's runtime.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BATCH_BYTES: usize = 32 * 1024;
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Log lines bound for `out` (stderr in the server).
pub struct Batched<W> {
    pending: Arc<Mutex<Vec<u8>>>,
    /// Locked from taking a batch until it is written, so batches keep their order.
    out: Arc<Mutex<W>>,
}

impl<W> Clone for Batched<W> {
    fn clone(&self) -> Self {
        Batched {
            pending: self.pending.clone(),
            out: self.out.clone(),
        }
    }
}

impl<W: Write> Batched<W> {
    pub fn new(out: W) -> Self {
        Batched {
            pending: Arc::default(),
            out: Arc::new(Mutex::new(out)),
        }
    }

    /// Writes what is pending.
    pub fn flush_now(&self) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let batch = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *pending)
        };
        if !batch.is_empty() {
            // Nowhere left to report a failing log output.
            let _ = out.write_all(&batch);
            let _ = out.flush();
        }
    }

    /// Flushes every [`FLUSH_INTERVAL`], for ever (spawn it on the runtime).
    pub async fn flush_every(self) {
        loop {
            tokio::time::sleep(FLUSH_INTERVAL).await;
            self.flush_now();
        }
    }
}

impl<W: Write> Write for Batched<W> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.extend_from_slice(line);
            pending.len() >= BATCH_BYTES
        };
        if full {
            self.flush_now();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a, W: Write + Send + 'static> tracing_subscriber::fmt::MakeWriter<'a> for Batched<W> {
    type Writer = Batched<W>;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(b: &Batched<Vec<u8>>) -> Vec<u8> {
        b.out.lock().map(|o| o.clone()).unwrap_or_default()
    }

    #[test]
    fn lines_wait_for_a_flush_or_a_full_batch_and_keep_their_order() {
        let mut b = Batched::new(Vec::new());
        b.write_all(b"one\n").unwrap();
        b.write_all(b"two\n").unwrap();
        assert!(written(&b).is_empty(), "written before a flush");
        b.flush_now();
        assert_eq!(written(&b), b"one\ntwo\n");
        // A batch that fills up is written at once.
        let line = vec![b'x'; 1024];
        for _ in 0..BATCH_BYTES / line.len() {
            b.write_all(&line).unwrap();
        }
        assert_eq!(written(&b).len(), 8 + BATCH_BYTES);
        b.write_all(b"three\n").unwrap();
        b.flush_now();
        assert!(written(&b).ends_with(b"xxthree\n"));
    }
}
