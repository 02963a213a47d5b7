//! The CDR file writer: a bounded queue to one std thread that owns the file.
//!
//! A call task must never wait for a disk, so `write` only tries to enqueue; a
//! full queue drops the record and counts it (a lost record beats a stalled
//! call). The thread writes through a `BufWriter` and flushes whenever the
//! queue runs empty, so a quiet system has every record on disk within one
//! write and a busy one batches its syscalls.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use metrics::Counter;

use super::{CallRecord, numbers};
use crate::config::{CdrConfig, NumberPolicy};

/// Records waiting for the writer thread at most: seconds of call ends at any
/// realistic rate, a few MiB of memory.
pub(crate) const QUEUE_CAPACITY: usize = 4096;

/// Why the CDR writer could not start.
#[derive(Debug, thiserror::Error)]
pub enum CdrError {
    #[error("{path}: cannot open for append: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the CDR writer thread: {source}")]
    Spawn {
        #[source]
        source: std::io::Error,
    },
}

enum Command {
    Record(Box<CallRecord>),
    Reopen,
    /// Answered once everything queued before it is written and flushed.
    #[cfg(test)]
    Sync(SyncSender<()>),
}

/// Appends call records to the `[cdr] path` file; clones share one file and
/// thread. The thread ends, after writing everything queued, when the last
/// clone is dropped (or [`CdrWriter::stop`]ped).
#[derive(Debug, Clone)]
pub struct CdrWriter {
    shared: Option<Arc<Shared>>,
}

struct Shared {
    tx: Option<SyncSender<Command>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// A reopen that found the queue full; the thread picks it up before its
    /// next record.
    reopen_pending: Arc<AtomicBool>,
    /// Set while a full-queue warning has been logged; the thread clears it
    /// once the queue drains, so each overload episode warns once.
    full_warned: Arc<AtomicBool>,
    dropped_full: Counter,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop after it wrote what was queued.
        drop(self.tx.take());
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = thread
            && t.join().is_err()
        {
            tracing::error!("CDR writer thread panicked; queued records are lost");
        }
    }
}

impl CdrWriter {
    /// Opens the file (so a bad path fails the start, not the first call) and
    /// starts the writer thread. Without a path the writer is disabled and
    /// `write` discards records; that is logged here, once.
    pub fn start(config: &CdrConfig) -> Result<CdrWriter, CdrError> {
        Self::start_with(config, QUEUE_CAPACITY, None)
    }

    /// A writer that discards every record.
    pub fn disabled() -> CdrWriter {
        CdrWriter { shared: None }
    }

    /// Whether records go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// `gate`: the thread waits for one message on it before writing (tests
    /// fill the queue deterministically with it).
    pub(crate) fn start_with(
        config: &CdrConfig,
        capacity: usize,
        gate: Option<Receiver<()>>,
    ) -> Result<CdrWriter, CdrError> {
        let Some(path) = &config.path else {
            tracing::info!("no [cdr] path configured: call records are not written");
            return Ok(CdrWriter::disabled());
        };
        let file = open(path).map_err(|source| CdrError::Open {
            path: path.clone(),
            source,
        })?;
        let (tx, rx) = mpsc::sync_channel(capacity);
        let reopen_pending = Arc::new(AtomicBool::new(false));
        let full_warned = Arc::new(AtomicBool::new(false));
        let sink = Sink {
            path: path.clone(),
            policy: config.numbers,
            out: Some(BufWriter::new(file)),
            line: Vec::with_capacity(1024),
            failing: false,
            written: metrics::counter!(crate::metrics::CDR_WRITTEN),
            dropped_io: metrics::counter!(crate::metrics::CDR_DROPPED, "reason" => "write_error"),
        };
        let thread = {
            let reopen_pending = reopen_pending.clone();
            let full_warned = full_warned.clone();
            std::thread::Builder::new()
                .name("drawbridge-cdr".to_owned())
                .spawn(move || {
                    if let Some(gate) = gate {
                        let _ = gate.recv();
                    }
                    run(sink, &rx, &reopen_pending, &full_warned);
                })
                .map_err(|source| CdrError::Spawn { source })?
        };
        tracing::info!(path = %path.display(), numbers = ?config.numbers, "writing call records");
        Ok(CdrWriter {
            shared: Some(Arc::new(Shared {
                tx: Some(tx),
                thread: Mutex::new(Some(thread)),
                reopen_pending,
                full_warned,
                dropped_full: metrics::counter!(crate::metrics::CDR_DROPPED, "reason" => "queue_full"),
            })),
        })
    }

    /// Queues `record` for the file. Never blocks: with the queue full the
    /// record is dropped and counted in `drawbridge_cdr_dropped_total`.
    pub fn write(&self, record: CallRecord) {
        let Some(shared) = &self.shared else {
            return;
        };
        let Some(tx) = &shared.tx else {
            return;
        };
        if let Err(TrySendError::Full(cmd) | TrySendError::Disconnected(cmd)) =
            tx.try_send(Command::Record(Box::new(record)))
        {
            shared.dropped_full.increment(1);
            if let Command::Record(r) = cmd
                && !shared.full_warned.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    call_id = %r.call_id,
                    tenant = %r.tenant,
                    "CDR queue full: call records are being dropped"
                );
            }
        }
    }

    /// Closes and reopens the file by its path, after logrotate renamed it:
    /// records queued before this call go to the old file, later ones to the
    /// new. Never blocks; with the queue full, the thread reopens before the
    /// next record it takes, so some queued earlier land in the new file.
    pub fn reopen(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let Some(tx) = &shared.tx else {
            return;
        };
        if let Err(TrySendError::Full(_)) = tx.try_send(Command::Reopen) {
            // The thread is busy; it checks the flag before its next record.
            shared.reopen_pending.store(true, Ordering::Release);
        }
    }

    /// Waits until everything queued so far is written and flushed (tests).
    #[cfg(test)]
    pub(crate) fn sync(&self) {
        let (done, wait) = mpsc::sync_channel(1);
        if let Some(tx) = self.shared.as_ref().and_then(|s| s.tx.as_ref())
            && tx.send(Command::Sync(done)).is_ok()
        {
            let _ = wait.recv();
        }
    }

    /// Drops this handle; when it is the last one, waits until every queued
    /// record is written and flushed. That wait is file I/O: at shutdown, drop
    /// the last handle outside the async workers (or in `spawn_blocking`).
    pub fn stop(self) {
        drop(self);
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    // Records hold phone numbers: not for every local user to read.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    options.open(path)
}

/// The thread's side: the open file and the line being built.
struct Sink {
    path: PathBuf,
    policy: NumberPolicy,
    out: Option<BufWriter<File>>,
    line: Vec<u8>,
    /// Set after a write error was logged, cleared by the next success: one
    /// warning per outage, not per record.
    failing: bool,
    written: Counter,
    dropped_io: Counter,
}

fn run(
    mut sink: Sink,
    rx: &Receiver<Command>,
    reopen_pending: &AtomicBool,
    full_warned: &AtomicBool,
) {
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(cmd) = next {
            if reopen_pending.swap(false, Ordering::Acquire) {
                sink.reopen();
            }
            match cmd {
                Command::Record(r) => sink.record(*r),
                Command::Reopen => sink.reopen(),
                #[cfg(test)]
                Command::Sync(done) => {
                    sink.flush();
                    let _ = done.send(());
                }
            }
            // Empty or closed: either way, flush what was written.
            next = rx.try_recv().ok();
        }
        sink.flush();
        full_warned.store(false, Ordering::Relaxed);
    }
    // The queue is closed and drained (recv returns Err only then).
    sink.flush();
}

impl Sink {
    fn record(&mut self, mut record: CallRecord) {
        record.from = numbers::apply(self.policy, record.from.take());
        record.to = numbers::apply(self.policy, record.to.take());
        for t in &mut record.transfers {
            t.target = numbers::apply(self.policy, t.target.take());
        }
        self.line.clear();
        if let Err(e) = serde_json::to_writer(&mut self.line, &record) {
            // Only a failing writer or map key can fail serde_json; neither exists here.
            tracing::error!(call_id = %record.call_id, error = %e, "CDR not serializable");
            self.dropped_io.increment(1);
            return;
        }
        self.line.push(b'\n');
        if self.out.is_none() {
            self.out = self.try_open();
        }
        let Some(out) = &mut self.out else {
            self.dropped_io.increment(1);
            return;
        };
        match out.write_all(&self.line) {
            Ok(()) => {
                self.written.increment(1);
                self.failing = false;
            }
            Err(e) => {
                self.dropped_io.increment(1);
                self.warn_failure(&e);
                // What the BufWriter holds is in doubt; start again with a fresh open.
                self.out = None;
            }
        }
    }

    fn flush(&mut self) {
        if let Some(out) = &mut self.out
            && let Err(e) = out.flush()
        {
            self.warn_failure(&e);
            self.out = None;
        }
    }

    fn reopen(&mut self) {
        self.flush();
        self.out = None;
        self.out = self.try_open();
        if self.out.is_some() {
            tracing::info!(path = %self.path.display(), "CDR file reopened");
        }
    }

    fn try_open(&mut self) -> Option<BufWriter<File>> {
        match open(&self.path) {
            Ok(f) => Some(BufWriter::new(f)),
            Err(e) => {
                self.warn_failure(&e);
                None
            }
        }
    }

    fn warn_failure(&mut self, e: &std::io::Error) {
        if !self.failing {
            self.failing = true;
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write call records");
        }
    }
}
