//! File descriptors: how many clients fit the process's limit, and the few descriptors
//! kept back for everything else.
//!
//! Every connection holds one descriptor, and so do the listener, the standard streams,
//! and each mailbox file while a login reads it or a message is appended to it. The
//! original never counted: once its clients had used them all, `accept` failed and the
//! server stopped taking anyone. If this server did the same, a crowd of idle
//! connections would lock every user out, and a login could fail to open its own
//! mailbox. So:
//!
//! - at startup the server reads its soft `RLIMIT_NOFILE` (from `/proc/self/limits`: the
//!   design allows no libc crate) and lowers `--max-clients` so that connections leave
//!   [`RESERVED_DESCRIPTORS`] free, saying so in one log line ([`fit_clients`]);
//! - the store never has more than [`STORE_OPERATIONS`] file operations in flight, each
//!   holding at most [`DESCRIPTORS_PER_STORE_OPERATION`] descriptors
//!   ([`StorePermits`]), so the reserve always covers it, however many senders write
//!   to offline users at once.
//!
//! The limit can still be lowered under a running server (`prlimit --pid`); then
//! `accept` fails with EMFILE and the server makes room as it does at the client limit
//! (see `server.rs`).

use parking_lot::{Condvar, Mutex};
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Evicted sessions whose threads may still be ending when the next eviction is due;
/// beyond that, the accept thread waits for one of them to end (see `slots.rs`). Each
/// holds its connection's descriptor until it ends.
pub const EVICTIONS_IN_FLIGHT: usize = 4;
/// File operations of the store (a login reading its mailbox, a message appended) that
/// may run at once; the next one waits for one of them to finish. Each is a few
/// system calls and one sync, so a handful keep the disk busy.
pub const STORE_OPERATIONS: usize = 4;
/// Descriptors one store operation holds at most: the mailbox file, and the data
/// directory while a new file's name is synced.
pub const DESCRIPTORS_PER_STORE_OPERATION: usize = 2;
/// Mailbox files the store keeps open between writes (those of the mailboxes written
/// in the last second or so: a receipts receiver's store is written at every batch of
/// messages, and an open and a close per batch cost more than the write).
pub const CACHED_STORE_FILES: usize = 16;
/// Descriptors that are not connections: standard input, output and error (the log),
/// the listener, the signal handler's pipe, a newcomer accepted at the limit before
/// another connection makes room, the connection a stop request makes to wake the
/// accept loop and its accepted end, the evicted connections still ending, the store's
/// operations, and the files it keeps open: 37 (docs/PROTOCOL.md §2).
pub const RESERVED_DESCRIPTORS: usize = 3
    + 1
    + 2
    + 1
    + 2
    + EVICTIONS_IN_FLIGHT
    + STORE_OPERATIONS * DESCRIPTORS_PER_STORE_OPERATION
    + CACHED_STORE_FILES;

/// Where Linux tells a process its limits.
const LIMITS_FILE: &str = "/proc/self/limits";

/// The soft limit on open files, or `None` if it is unlimited or cannot be read (not
/// Linux): then `--max-clients` stands as given.
pub fn soft_limit() -> Option<usize> {
    parse_soft_limit(&fs::read_to_string(LIMITS_FILE).ok()?)
}

/// The soft "Max open files" of a `/proc/PID/limits` text:
/// `Max open files            1024                 524288               files`.
fn parse_soft_limit(limits: &str) -> Option<usize> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The client limit that fits `soft_limit` descriptors: `max_clients`, or fewer so that
/// [`RESERVED_DESCRIPTORS`] stay free. An error if not even one client fits.
pub fn fit_clients(max_clients: usize, soft_limit: Option<usize>) -> Result<usize, String> {
    let Some(soft_limit) = soft_limit else {
        return Ok(max_clients);
    };
    match soft_limit.checked_sub(RESERVED_DESCRIPTORS) {
        Some(room) if room > 0 => Ok(max_clients.min(room)),
        _ => Err(format!(
            "the file descriptor limit is {soft_limit}, and the server needs \
             {RESERVED_DESCRIPTORS} for itself and one per client: raise it (ulimit -n)"
        )),
    }
}

/// A counting semaphore for the store's file operations (see the module's
/// documentation). A permit is taken after the mailbox's lock and held only while files
/// are open: a leaf in the lock order.
///
/// Every message to a receipts receiver takes a permit (its store is written first), so
/// the common case, a permit free, is one atomic operation; only a caller that finds
/// none free sleeps, and only then does a returned permit wake anyone.
#[derive(Debug)]
pub struct StorePermits {
    free: AtomicUsize,
    /// Callers asleep waiting for a permit.
    sleepers: AtomicUsize,
    asleep: Mutex<()>,
    returned: Condvar,
}

impl Default for StorePermits {
    fn default() -> StorePermits {
        StorePermits {
            free: AtomicUsize::new(STORE_OPERATIONS),
            sleepers: AtomicUsize::new(0),
            asleep: Mutex::new(()),
            returned: Condvar::new(),
        }
    }
}

impl StorePermits {
    /// Waits for a free permit; it is given back when the returned guard is dropped.
    pub fn take(&self) -> StorePermit<'_> {
        loop {
            if self.try_take() {
                return StorePermit { permits: self };
            }
            let mut asleep = self.asleep.lock();
            // Counted before the last look, so that a permit returned after it finds
            // this sleeper (all SeqCst: one order for the count, the look and the return).
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            while self.free.load(Ordering::SeqCst) == 0 {
                self.returned.wait(&mut asleep);
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Takes a permit if one is free.
    fn try_take(&self) -> bool {
        self.free
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |free| {
                free.checked_sub(1)
            })
            .is_ok()
    }
}

/// A store operation's right to open files; see [`StorePermits::take`].
#[derive(Debug)]
pub struct StorePermit<'a> {
    permits: &'a StorePermits,
}

impl Drop for StorePermit<'_> {
    fn drop(&mut self) {
        let permits = self.permits;
        permits.free.fetch_add(1, Ordering::SeqCst);
        if permits.sleepers.load(Ordering::SeqCst) > 0 {
            // Taken so that the sleeper is inside `wait` (it holds the lock until then).
            let _asleep = permits.asleep.lock();
            permits.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_soft_limit_is_read_from_the_limits_table() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             127431               127431               processes\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_soft_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_soft_limit(unlimited), None);
        assert_eq!(parse_soft_limit("Max processes 5 5 processes\n"), None);
        let own = soft_limit().expect("this test runs on Linux");
        assert!(
            own > RESERVED_DESCRIPTORS,
            "the test process has room: {own}"
        );
    }

    #[test]
    fn the_reserve_is_what_the_protocol_document_says() {
        assert_eq!(RESERVED_DESCRIPTORS, 37);
    }

    #[test]
    fn clients_are_fitted_below_the_limit_with_the_reserve_left_free() {
        assert_eq!(fit_clients(10_000, None), Ok(10_000));
        assert_eq!(
            fit_clients(10_000, Some(1024)),
            Ok(1024 - RESERVED_DESCRIPTORS)
        );
        assert_eq!(fit_clients(20, Some(1024)), Ok(20));
        assert_eq!(
            fit_clients(20, Some(RESERVED_DESCRIPTORS + 1)),
            Ok(1),
            "one client fits"
        );
        let error = fit_clients(20, Some(RESERVED_DESCRIPTORS)).unwrap_err();
        assert!(error.contains("raise it (ulimit -n)"), "{error}");
        assert!(fit_clients(20, Some(3)).is_err());
    }

    #[test]
    fn no_more_than_the_permits_run_at_once() {
        let permits = Arc::new(StorePermits::default());
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4 * STORE_OPERATIONS)
            .map(|_| {
                let (permits, running, most) = (
                    Arc::clone(&permits),
                    Arc::clone(&running),
                    Arc::clone(&most),
                );
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let _permit = permits.take();
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        running.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= STORE_OPERATIONS);
        assert_eq!(
            permits.free.load(Ordering::SeqCst),
            STORE_OPERATIONS,
            "every permit came back"
        );
    }
}
