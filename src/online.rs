//! Who is online, and how a frame reaches a client's socket.
//!
//! A [`Connection`] is one client's socket as every thread sees it: its own session
//! thread reads from it, and any thread may write a frame to it. Writes go through a
//! per-connection lock and one whole write each, so frames from different threads never
//! interleave on the wire. A write that fails or times out leaves a frame half-sent, so
//! the connection is closed at once: the client sees the stream end rather than garbage.
//!
//! The write timeout bounds each whole write, from its first byte to its last. The
//! socket's own timeout (`SO_SNDTIMEO`) bounds one system call, so a receiver reading a
//! trickle at a time could stretch a plain `write_all` forever; [`Connection::send`]
//! shortens the socket's timeout to what is left of the budget after each partial write.
//!
//! A receipts connection also carries plain data for the receipts extension: its
//! [`Window`] (what was written to it and not yet acknowledged, for the login on it) and
//! its [`Notice`]s (receipts for its user, left to go out with its next write). What they
//! mean is `receipts.rs`'s business; here they are only kept, and notices written.
//!
//! The [`Online`] map says which connection a logged-in name is on. Its lock is held only
//! to look up, insert or remove an entry, never across a socket write: callers take the
//! `Arc<Connection>` out, let go of the map, then write.

use crate::protocol::{self, Kind, Name, RECEIPT_FRAME_LEN};
use parking_lot::{Mutex, MutexGuard};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A wait for a connection's write lock shorter than this is not taken off the write's
/// time budget (see `Connection::send_after`).
pub const LOCK_WAIT_SLACK: Duration = Duration::from_millis(10);
/// How long a write of notices may wait for the socket: a thread that leaves a receipt
/// for another user never waits on that user's socket for longer (what does not go out
/// at once goes with the connection's next write).
pub const NOTICE_WRITE_TIMEOUT: Duration = Duration::from_millis(1);

/// One message written to a receipts connection and not yet acknowledged.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    /// Its id.
    pub id: u64,
    /// Who sent it (for the receipt an acknowledgement sends them).
    pub sender: Name,
    /// The records of the owner's store it stands for: 1, more if records before it were
    /// skipped as damaged, 0 for a room message (never stored).
    pub records: u32,
}

/// What was written to a receipts connection for the login on it and not yet
/// acknowledged (docs/PROTOCOL.md §3). Changed only under the owner's mailbox lock.
#[derive(Debug, Default)]
pub struct Window {
    /// The messages, in the order written: their ids increase.
    pub unacknowledged: VecDeque<Written>,
    /// The store records they stand for, in all.
    pub records: usize,
    /// The highest id written for this login (an ACK above it is refused).
    pub highest: u64,
    /// The last id acknowledged (an ACK below it is refused).
    pub last_ack: u64,
}

/// A receipt left for a connection's user, to go out with its next write: RECEIVED or
/// READ, about one other user, up to an id. A newer one about the same user replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    /// RECEIVED or READ.
    pub kind: Kind,
    /// Whose client (RECEIVED) or which person (READ) it is about.
    pub about: Name,
    /// Up to which id.
    pub id: u64,
}

/// A receipts connection's extra state (see the module's note).
#[derive(Debug, Default)]
struct ReceiptsState {
    window: Mutex<Window>,
    notices: Mutex<Vec<Notice>>,
}

/// Tells connections apart even when the same user logs in twice, so that the cleanup of
/// an old connection never removes a newer login of the same name.
pub type ConnectionId = u64;

/// One client's socket.
#[derive(Debug)]
pub struct Connection {
    id: ConnectionId,
    peer: SocketAddr,
    stream: TcpStream,
    /// Held for the whole of one frame's `write_all`: guards the order of bytes on the
    /// socket (`&TcpStream` is itself `Write`), and the rest of a frame of notices that
    /// went out only in part, which the next write sends first.
    write_lock: Mutex<Vec<u8>>,
    /// How long one whole [`send`](Connection::send) may take, in milliseconds: as a
    /// `Duration` (16 bytes) it pushed every connection's allocation into the next size
    /// class, a megabyte and a half over 10,000 clients with the rest.
    write_timeout_ms: u32,
    closed: AtomicBool,
    /// Set when the connection was evicted to make room at the client limit.
    evicted: AtomicBool,
    /// Set once its session has logged in: the client limit never evicts it then.
    logged_in: AtomicBool,
    /// The receipts extension's state, once the client turned it on (see `receipts.rs`):
    /// a pointer's worth for every plain connection.
    receipts: OnceLock<Box<ReceiptsState>>,
}

impl Connection {
    /// Wraps an accepted socket whose every send must finish within `write_timeout`.
    pub fn new(
        id: ConnectionId,
        peer: SocketAddr,
        stream: TcpStream,
        write_timeout: Duration,
    ) -> io::Result<Connection> {
        stream.set_write_timeout(Some(write_timeout))?;
        Ok(Connection {
            id,
            peer,
            stream,
            write_lock: Mutex::new(Vec::new()),
            write_timeout_ms: u32::try_from(write_timeout.as_millis()).unwrap_or(u32::MAX),
            closed: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            logged_in: AtomicBool::new(false),
            receipts: OnceLock::new(),
        })
    }

    /// How long one whole send may take.
    fn write_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.write_timeout_ms))
    }

    /// This connection's id: connection ids only grow.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The socket, for the session thread to read from.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes `bytes` (one or more whole frames) in one piece. On any failure, including
    /// the socket's write timeout, the connection is closed: part of a frame may have gone
    /// out, and nothing sent after it could be parsed.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        self.send_after(|| {}, bytes)
    }

    /// Like [`send`](Connection::send), but first runs `first` while holding the write
    /// lock: whatever another thread sends to this connection in the meantime waits
    /// until `bytes` are out. A login uses it to appear in the online map only with its
    /// reply already on its way ahead of anything else.
    ///
    /// The write timeout counts from this call, so time spent waiting for another
    /// thread's write to the same client is part of it: however many threads write to
    /// a stuck client, each is held up by at most one write timeout.
    pub fn send_after(&self, first: impl FnOnce(), bytes: &[u8]) -> io::Result<()> {
        let started = Instant::now();
        let (_in_order, waited) = match self.write_lock.try_lock() {
            Some(guard) => (guard, false),
            // A short wait (another thread's write that went out at once) is not taken
            // off the socket's timeout: that costs two system calls, and a wait this
            // short stretches the write by no more than `LOCK_WAIT_SLACK`.
            None => match self.write_lock.try_lock_for(self.write_timeout()) {
                Some(guard) => (guard, started.elapsed() > LOCK_WAIT_SLACK),
                None => {
                    // Another write has been stuck that long: it will fail and close
                    // the connection, and so does this one.
                    self.close();
                    return Err(self.timed_out());
                }
            },
        };
        first();
        if self.is_closed() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection is already closed",
            ));
        }
        if self.was_evicted() {
            return self.send_without_waiting(bytes);
        }
        // The rest of a frame of notices goes first, and notices left since go along.
        let mut _in_order = _in_order;
        let with_notices;
        let bytes = match self.receipts.get() {
            Some(state) if !_in_order.is_empty() || !state.notices.lock().is_empty() => {
                let mut all = std::mem::take(&mut *_in_order);
                encode_notices(&mut state.notices.lock(), &mut all);
                all.extend_from_slice(bytes);
                with_notices = all;
                &with_notices[..]
            }
            _ => bytes,
        };
        let result = self.write_all_within_timeout(bytes, started, waited);
        if let Err(error) = &result {
            crate::warn_limited!(
                "{}: write failed ({error}); closing the connection",
                self.peer
            );
            self.close();
        }
        drop(_in_order);
        // A notice left while this write held the lock goes out now, or with the next.
        if result.is_ok() {
            self.send_notices();
        }
        result
    }

    /// Leaves a receipt for this connection's user (coalesced with one about the same
    /// user: the higher id wins) and writes what is left at once if the socket takes it
    /// without waiting more than [`NOTICE_WRITE_TIMEOUT`]; otherwise it goes out with the
    /// connection's next write. Only for receipts connections; the caller never waits on
    /// this client's socket.
    pub fn leave_notice(&self, notice: Notice) {
        let Some(state) = self.receipts.get() else {
            return;
        };
        {
            let mut notices = state.notices.lock();
            match notices
                .iter_mut()
                .find(|left| left.kind == notice.kind && left.about == notice.about)
            {
                Some(left) => left.id = left.id.max(notice.id),
                None => notices.push(notice),
            }
        }
        self.send_notices();
    }

    /// Writes the notices left, if the write lock is free and the socket takes them at
    /// once. Notices that do not go out stay left (still coalesced, so a flood of them
    /// holds one per user); a frame that goes out in part leaves its rest for the next
    /// write.
    fn send_notices(&self) {
        let Some(state) = self.receipts.get() else {
            return;
        };
        while !state.notices.lock().is_empty() && !self.is_closed() {
            // Whoever holds the lock sends the notices after its own write.
            let Some(mut carry) = self.write_lock.try_lock() else {
                return;
            };
            let taken = std::mem::take(&mut *state.notices.lock());
            let mut bytes = std::mem::take(&mut *carry);
            let carried = bytes.len();
            encode_notices(&mut taken.clone(), &mut bytes);
            let written = match self.write_briefly(&bytes) {
                Ok(written) => written,
                Err(error) => {
                    crate::warn_limited!(
                        "{}: write failed ({error}); closing the connection",
                        self.peer
                    );
                    drop(carry);
                    self.close();
                    return;
                }
            };
            // What went out: the carried bytes, then whole notice frames, then perhaps
            // part of one, whose rest is carried; the notices after it are left again.
            let (whole, part) = match written.checked_sub(carried) {
                None => {
                    *carry = bytes[written..carried].to_vec();
                    (0, 0)
                }
                Some(sent) => (sent / RECEIPT_FRAME_LEN, sent % RECEIPT_FRAME_LEN),
            };
            let resumed = whole + usize::from(part > 0);
            if part > 0 {
                let end = carried + resumed * RECEIPT_FRAME_LEN;
                *carry = bytes[written..end].to_vec();
            }
            if resumed < taken.len() {
                let mut left = state.notices.lock();
                for notice in &taken[resumed..] {
                    match left
                        .iter_mut()
                        .find(|l| l.kind == notice.kind && l.about == notice.about)
                    {
                        Some(newer) => newer.id = newer.id.max(notice.id),
                        None => left.push(*notice),
                    }
                }
                return;
            }
            if !carry.is_empty() {
                return;
            }
        }
    }

    /// One write of `bytes` that waits at most [`NOTICE_WRITE_TIMEOUT`] for room in the
    /// socket: how many bytes went out (0 if none had room).
    fn write_briefly(&self, bytes: &[u8]) -> io::Result<usize> {
        let mut stream = &self.stream;
        stream.set_write_timeout(Some(NOTICE_WRITE_TIMEOUT))?;
        let mut written = 0;
        let result = loop {
            match stream.write(&bytes[written..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    if written == bytes.len() {
                        break Ok(written);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if is_timeout(&error) => break Ok(written),
                Err(error) => break Err(error),
            }
        };
        stream.set_write_timeout(Some(self.write_timeout()))?;
        result
    }

    /// `write_all`, but the whole of it within the write timeout from `started`. The
    /// socket's timeout is already the whole budget, so a write that goes out in one
    /// call without having waited for the lock (nearly all of them) costs no extra
    /// system call; only after a wait or a partial write is the socket's timeout cut to
    /// what is left, and restored at the end.
    fn write_all_within_timeout(
        &self,
        mut bytes: &[u8],
        started: Instant,
        waited: bool,
    ) -> io::Result<()> {
        let mut stream = &self.stream;
        // Once the socket's timeout is cut to what is left, it must be put back after.
        let mut shortened = false;
        let mut left_over = waited;
        let result = loop {
            if left_over {
                if let Err(error) = self.shorten_timeout(started) {
                    break Err(error);
                }
                shortened = true;
            }
            match stream.write(bytes) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    bytes = &bytes[written..];
                    if bytes.is_empty() {
                        break Ok(());
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // SO_SNDTIMEO expiring shows as EAGAIN, "Resource temporarily
                // unavailable": say what it means.
                Err(error) if is_timeout(&error) => break Err(self.timed_out()),
                Err(error) => break Err(error),
            }
            left_over = true;
        };
        if shortened {
            // Only matters if the connection is still usable, which it is not after a
            // failure; an error here surfaces at the next write anyway.
            let _ = stream.set_write_timeout(Some(self.write_timeout()));
        }
        result
    }

    /// The last words to an evicted connection (its pending replies, then -5): whatever
    /// fits in the socket's buffer now, and then the connection is closed either way.
    /// Its slot is already someone else's, so its thread must not linger behind a
    /// client that does not read: that is how squatters would hold threads and
    /// descriptors beyond the client limit.
    fn send_without_waiting(&self, mut bytes: &[u8]) -> io::Result<()> {
        let mut stream = &self.stream;
        let result = stream.set_nonblocking(true).and_then(|()| {
            while !bytes.is_empty() {
                match stream.write(bytes) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(written) => bytes = &bytes[written..],
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(error),
                }
            }
            Ok(())
        });
        if result.is_err() {
            self.close();
        }
        result
    }

    /// Cuts the socket's write timeout to what is left of the budget that began at
    /// `started`; a timeout error if nothing is left.
    fn shorten_timeout(&self, started: Instant) -> io::Result<()> {
        let left = self.write_timeout().saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(self.timed_out());
        }
        self.stream.set_write_timeout(Some(left))
    }

    fn timed_out(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "timed out: the client did not take the data within {} s",
                self.write_timeout().as_secs_f64()
            ),
        )
    }

    /// Evicts the connection to make room at the client limit: its session thread's
    /// blocked read returns at once (the read side is shut), sees [`was_evicted`], and
    /// tells the client `-5` before closing, as far as that goes without waiting (see
    /// `send_without_waiting`). The telling is left to that thread, so the accept loop
    /// never blocks on a client that does not read. If the thread is in the middle of a
    /// write, the client is not reading: the socket is shut both ways, so that the write
    /// fails at once and the thread ends now, not after its write timeout.
    ///
    /// [`was_evicted`]: Connection::was_evicted
    pub fn evict(&self) {
        // Set before looking at the lock: a write that takes the lock after this sees
        // it and does not wait; one that has the lock already is cut short below.
        self.evicted.store(true, Ordering::Release);
        match self.write_lock.try_lock() {
            Some(_no_write_in_progress) => {
                let _ = self.stream.shutdown(Shutdown::Read);
            }
            None => self.close(),
        }
    }

    /// Turns the receipts extension on for this connection (again: no change).
    pub fn turn_on_receipts(&self) {
        self.receipts.get_or_init(Box::default);
    }

    /// True if the client turned receipts on: then every CHAT frame for it goes out as
    /// a MESSAGE frame.
    pub fn has_receipts(&self) -> bool {
        self.receipts.get().is_some()
    }

    /// The window of a receipts connection (`None` on a plain one). Lock order: after
    /// the owner's mailbox lock, before nothing else.
    pub fn window(&self) -> Option<MutexGuard<'_, Window>> {
        self.receipts.get().map(|state| state.window.lock())
    }

    /// Forgets what belonged to the login before: a new login on this connection starts
    /// with an empty window and no notices.
    pub fn start_login(&self) {
        if let Some(state) = self.receipts.get() {
            *state.window.lock() = Window::default();
            state.notices.lock().clear();
        }
    }

    /// Marks the connection as logged in (see `Slot::log_in`).
    pub fn mark_logged_in(&self) {
        self.logged_in.store(true, Ordering::Release);
    }

    /// True once its session has logged in.
    pub fn is_logged_in(&self) -> bool {
        self.logged_in.load(Ordering::Acquire)
    }

    /// True once [`Connection::evict`] was called.
    pub fn was_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Shuts the socket down both ways. The session thread's blocked read returns at once
    /// and the client sees EOF. Safe to call more than once, from any thread.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            // An error here means the peer is already gone, which is what we want.
            let _ = self.stream.shutdown(Shutdown::Both);
        }
    }

    /// True once [`Connection::close`] was called, or a write failed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Appends the frames of `notices` to `out`, emptying it.
fn encode_notices(notices: &mut Vec<Notice>, out: &mut Vec<u8>) {
    for notice in notices.drain(..) {
        out.extend_from_slice(&protocol::receipt_frame(
            notice.kind,
            notice.id,
            &notice.about,
        ));
    }
}

/// The map of logged-in names to their connections: the original's `onlineMap`, a
/// `map<char*, int>` from a pointer to each thread's own `name` buffer to its socket.
/// Keyed by that pointer, not by the text, it took a second entry for a second login of
/// the same name; keyed here by the name itself, a login replaces the older one.
#[derive(Debug, Default)]
pub struct Online {
    connections: Mutex<HashMap<String, Arc<Connection>>>,
}

impl Online {
    /// An empty map.
    pub fn new() -> Online {
        Online::default()
    }

    /// A map with room for `users` entries, so that it never grows (and leaves its old
    /// tables behind in the allocator) while a crowd logs in.
    pub fn with_capacity(users: usize) -> Online {
        Online {
            connections: Mutex::new(HashMap::with_capacity(users)),
        }
    }

    /// The connection `name` is logged in on, if any.
    pub fn get(&self, name: &str) -> Option<Arc<Connection>> {
        self.connections.lock().get(name).cloned()
    }

    /// Puts `name` online on `connection`. The connection it was on before, if another
    /// one, is closed here and returned (for the log): the newest login wins.
    ///
    /// Closing it here, and not left to the caller, is what keeps the map honest: an
    /// open connection logged in as a name is always the one the map names, whatever
    /// happens next to the new connection (its login reply may fail, and then it takes
    /// the name offline again, with the old connection already gone).
    pub fn insert(&self, name: &str, connection: Arc<Connection>) -> Option<Arc<Connection>> {
        let id = connection.id();
        let previous = self.connections.lock().insert(name.to_string(), connection);
        let displaced = previous.filter(|old| old.id() != id)?;
        displaced.close();
        Some(displaced)
    }

    /// Takes `name` offline, but only if it is still on connection `id`: a newer login of
    /// the same name stays. Returns whether it was removed.
    pub fn remove(&self, name: &str, id: ConnectionId) -> bool {
        let mut connections = self.connections.lock();
        if connections
            .get(name)
            .is_some_and(|current| current.id() == id)
        {
            connections.remove(name);
            true
        } else {
            false
        }
    }

    /// How many users are online.
    pub fn count(&self) -> usize {
        self.connections.lock().len()
    }

    /// The online names, sorted by their bytes (the USERS reply's order).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.connections.lock().keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// Every online connection but `except`, for a room message.
    pub fn others(&self, except: ConnectionId) -> Vec<(String, Arc<Connection>)> {
        self.connections
            .lock()
            .iter()
            .filter(|(_, connection)| connection.id() != except)
            .map(|(name, connection)| (name.clone(), Arc::clone(connection)))
            .collect()
    }
}

/// True for the error a socket timeout (`SO_RCVTIMEO`, `SO_SNDTIMEO`) produces: the
/// system calls report it as EAGAIN, which std calls `WouldBlock`.
pub fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// A connection whose other end the test holds.
    fn pair(id: ConnectionId) -> (Arc<Connection>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        let connection = Connection::new(id, peer, server, Duration::from_secs(1)).unwrap();
        (Arc::new(connection), client)
    }

    #[test]
    fn an_old_connection_cannot_remove_a_newer_login() {
        let online = Online::new();
        let (old, _old_client) = pair(1);
        let (new, _new_client) = pair(2);
        assert!(online.insert("1001", old).is_none());
        let replaced = online
            .insert("1001", new)
            .expect("the old login is handed back");
        assert_eq!(replaced.id(), 1);
        assert!(
            replaced.is_closed(),
            "the map closes the displaced connection"
        );
        assert!(
            !online.remove("1001", 1),
            "connection 1 no longer owns the name"
        );
        assert_eq!(online.get("1001").unwrap().id(), 2);
        assert!(online.remove("1001", 2));
        assert_eq!(online.count(), 0);
    }

    #[test]
    fn inserting_the_same_connection_again_replaces_nothing() {
        let online = Online::new();
        let (connection, _client) = pair(7);
        assert!(online.insert("似末", Arc::clone(&connection)).is_none());
        assert!(online.insert("似末", connection).is_none());
    }

    #[test]
    fn names_are_sorted_by_bytes() {
        let online = Online::new();
        let mut clients = Vec::new();
        for (id, name) in [(1, "玛卡巴卡"), (2, "1002"), (3, "1001"), (4, "似末")] {
            let (connection, client) = pair(id);
            clients.push(client);
            online.insert(name, connection);
        }
        assert_eq!(online.names(), ["1001", "1002", "似末", "玛卡巴卡"]);
        let others: Vec<ConnectionId> = online.others(2).iter().map(|(_, c)| c.id()).collect();
        assert_eq!(others.len(), 3);
        assert!(!others.contains(&2));
    }

    #[test]
    fn a_receiver_that_reads_a_trickle_cannot_stretch_a_write_past_its_timeout() {
        let (connection, mut client) = pair(1);
        let timeout = Duration::from_secs(1);
        let sent = Arc::new(AtomicBool::new(false));
        let trickler = std::thread::spawn({
            let sent = Arc::clone(&sent);
            move || {
                // Reads 1 KiB every 20 ms: every system call makes progress, none times
                // out. It stops once the send is over, whatever is still buffered, or
                // after ten seconds (without a whole-write deadline the send would
                // go on for half an hour, and would then fail too late instead).
                let mut chunk = [0; 1024];
                let started = Instant::now();
                while !sent.load(Ordering::Acquire)
                    && started.elapsed() < Duration::from_secs(10)
                    && matches!(client.read(&mut chunk), Ok(n) if n > 0)
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        let started = Instant::now();
        let error = connection.send(&vec![7; 64 << 20]).unwrap_err();
        let took = started.elapsed();
        sent.store(true, Ordering::Release);
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        assert!(error.to_string().contains("timed out"), "{error}");
        // Without the whole-write deadline this write would last as long as the
        // trickle; the bound is loose so that a loaded machine cannot fail it.
        assert!(took < timeout * 3, "took {took:?}");
        assert!(connection.is_closed());
        trickler.join().unwrap();
    }

    #[test]
    fn close_ends_the_peers_stream_and_fails_later_sends() {
        let (connection, mut client) = pair(1);
        connection.send(b"hello").unwrap();
        connection.close();
        let mut received = Vec::new();
        client.read_to_end(&mut received).unwrap();
        assert_eq!(received, b"hello");
        assert!(connection.send(b"more").is_err());
    }
}
