//! Where filter builds run and how their memory is given back.
//!
//! Parsing a million-line list takes a CPU for hundreds of milliseconds. On a tokio worker (or on
//! tokio's blocking pool at normal priority, sharing the core the workers run on) it kept the DNS
//! sockets unread long enough for the kernel to drop queries. [`off_workers`] runs the build on
//! its own short-lived thread at a low CPU priority (nice 10: a tenth of a serving thread's weight
//! when they share a core; nice 19 starved it for seconds on a busy host), so the serving threads
//! win the core; the result comes back through a channel and is swapped in whole (`ArcSwap`). A
//! 4 MiB UDP receive buffer (`super::server`) rides out what scheduling is left.
//!
//! A build allocates several times the finished filter (the list text, parsed hashes, builder
//! pairs, sort buffers). glibc keeps such freed memory in its arenas, and after the first large
//! free it raises its mmap threshold so later big buffers land in the arenas too: the daemon's
//! RSS grew with each reload. [`tune_allocator`] pins the threshold (buffers of 1 MiB and more
//! are mapped and unmapped whole) and [`release_memory`] hands the free pages of every arena back
//! after a build.

use crate::error::{Error, Result};

/// Nice value of a build thread: below the serving threads, yet not starved by a busy host.
const BUILD_NICE: i32 = 10;

/// Buffers from this size on get their own mapping, returned to the system when freed.
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Runs `f` on a new thread at a low CPU priority and waits for it without blocking a
/// worker.
pub async fn off_workers<T, F>(what: &'static str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("dns-filter-build".into())
        .spawn(move || {
            // Only this thread: on Linux a thread id is a valid target of setpriority(2).
            if let Err(e) =
                rustix::process::setpriority_process(Some(rustix::thread::gettid()), BUILD_NICE)
            {
                tracing::debug!(error = %e, "cannot lower the filter build's priority");
            }
            let out = f();
            release_memory();
            let _ = tx.send(out);
        })
        .map_err(|e| Error::Config(format!("{what}: cannot start a thread: {e}")))?;
    rx.await
        .map_err(|_| Error::Config(format!("{what}: the build thread panicked")))
}

/// Makes large buffers separate mappings (see the module doc). Idempotent.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a glibc malloc parameter; any value is accepted or refused.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Gives freed heap pages of every malloc arena back to the system.
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The process's resident and peak resident memory (VmRSS, VmHWM), bytes; Linux only.
pub fn rss() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
