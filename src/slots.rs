//! The client limit: every open connection, logged in or not, holds a [`Slot`], and
//! there are `--max-clients` of them.
//!
//! A limit alone invites squatting: a script that opens connections and never logs in
//! would fill every slot and lock everyone out for as long as it liked. So when a
//! connection arrives at a full server, the open connection that has gone longest
//! without logging in is evicted to make room (it is sent `FEEDBACK{1, 40, -5}` and
//! closed); only when every open connection is logged in is the newcomer turned away.
//! Connections wait in a queue in the order they came; a login only marks its
//! connection as logged in, and the accept thread skips and drops such entries when it
//! looks for the oldest waiting connection (and compacts the queue when it holds more
//! stale entries than live ones). So every operation is O(1) amortised, and only the
//! accept thread allocates or frees queue memory: memory freed by 10,000 session threads
//! tends to stay in each thread's allocator cache.
//!
//! An evicted connection gives up its slot at once, but its thread and descriptor live
//! until its session has ended (a moment: an evicted session never waits on its client,
//! see `Connection::evict`). The table keeps each session's thread handle, and at most
//! [`EVICTIONS_IN_FLIGHT`] evicted threads may still be running when the next eviction
//! is due: the accept thread joins the oldest first, so a flood of newcomers waits for
//! them rather than pile up threads. So the server never holds more than
//! `--max-clients` plus that many connections, threads and descriptors, however
//! clients behave.
//!
//! Shutdown uses the same table: it closes every open connection and waits for their
//! slots to come back.

use crate::descriptors::EVICTIONS_IN_FLIGHT;
use crate::online::{Connection, ConnectionId};
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Every open connection, and which of them have not logged in yet.
pub struct Slots {
    table: Mutex<Table>,
    /// Signalled whenever a session ends (its slot is dropped).
    ended: Condvar,
    max_clients: usize,
    next_id: AtomicU64,
}

struct Table {
    open: HashMap<ConnectionId, Arc<Connection>>,
    /// Connections in the order they came, some of which have logged in or left since
    /// (skipped when met). Never longer than [`STALE_FACTOR`] times the open ones, plus
    /// [`STALE_SLACK`].
    waiting: VecDeque<ConnectionId>,
    /// Sessions evicted whose threads have not ended yet.
    evicted_running: usize,
    /// The thread of each open connection's session (see [`Slots::attach`]).
    threads: HashMap<ConnectionId, JoinHandle<()>>,
    /// The threads of evicted sessions, oldest first, until the accept thread has
    /// joined them.
    evicted: VecDeque<JoinHandle<()>>,
}

/// The waiting queue is compacted when it is this many times longer than the open
/// connections (plus [`STALE_SLACK`]): compaction costs a pass over it, so it must be
/// rare enough to be O(1) per accept on average.
const STALE_FACTOR: usize = 2;
/// See [`STALE_FACTOR`]: small servers need not compact at all.
const STALE_SLACK: usize = 64;

/// What [`Slots::admit`] decided for a new connection.
pub enum Admission {
    /// The connection has a slot. If the server was full, `evicted` is the connection
    /// that made room: the caller tells it with [`Connection::evict`], outside the lock.
    Admitted {
        /// The new connection's slot.
        slot: Slot,
        /// The connection evicted to make room, if the server was full.
        evicted: Option<Arc<Connection>>,
    },
    /// Every slot is held by a logged-in user: the newcomer is turned away.
    Full,
}

impl Slots {
    /// `max_clients` slots. The table is sized for at most `presize` connections up
    /// front (a limit is a limit, not a reservation).
    pub fn new(max_clients: usize, presize: usize) -> Arc<Slots> {
        Arc::new(Slots {
            table: Mutex::new(Table {
                open: HashMap::with_capacity(max_clients.min(presize)),
                waiting: VecDeque::new(),
                evicted_running: 0,
                threads: HashMap::new(),
                evicted: VecDeque::new(),
            }),
            ended: Condvar::new(),
            max_clients,
            next_id: AtomicU64::new(1),
        })
    }

    /// The client limit.
    pub fn max_clients(&self) -> usize {
        self.max_clients
    }

    /// A fresh connection id: ids only grow, so a smaller id is an older connection.
    pub fn next_id(&self) -> ConnectionId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes a slot for `connection`, evicting the oldest connection that has not
    /// logged in if the server is full.
    pub fn admit(self: &Arc<Self>, connection: Arc<Connection>) -> Admission {
        let mut table = self.table.lock();
        let mut evicted = None;
        if table.open.len() >= self.max_clients {
            Slots::join_evicted(&mut table, EVICTIONS_IN_FLIGHT - 1);
        }
        if table.open.len() >= self.max_clients {
            match table.oldest_waiting() {
                // Its slot is free from now on; its thread ends as soon as it sees the
                // eviction, and its own `Slot` then finds nothing left to remove.
                Some(oldest) => evicted = Some(oldest),
                None => return Admission::Full,
            }
        }
        let id = connection.id();
        table.open.insert(id, connection);
        table.waiting.push_back(id);
        if table.waiting.len() > STALE_FACTOR * table.open.len() + STALE_SLACK {
            let Table { open, waiting, .. } = &mut *table;
            waiting.retain(|id| open.get(id).is_some_and(|c| !c.is_logged_in()));
        }
        Admission::Admitted {
            slot: Slot {
                slots: Arc::clone(self),
                id,
            },
            evicted,
        }
    }

    /// Out of descriptors (`accept` failed with EMFILE): evicts the oldest connection
    /// that has not logged in, as the client limit does, and waits (briefly) for its
    /// session to end and give its descriptor back. False if every connection is
    /// logged in: there is nothing to evict.
    pub fn make_room(&self) -> bool {
        let mut table = self.table.lock();
        let Some(oldest) = table.oldest_waiting() else {
            return false;
        };
        MutexGuard::unlocked(&mut table, || oldest.evict());
        drop(oldest);
        Slots::join_evicted(&mut table, 0);
        true
    }

    /// Records the thread that serves connection `id`, just started by the accept
    /// thread, so that an eviction can wait for it to end. A session that has ended
    /// already (its slot is gone) needs no waiting for.
    pub fn attach(&self, id: ConnectionId, thread: JoinHandle<()>) {
        let mut table = self.table.lock();
        if table.open.contains_key(&id) {
            table.threads.insert(id, thread);
        }
    }

    /// Joins evicted sessions' threads, oldest first, until at most `most` may still be
    /// running. The table's lock is let go while joining: an ending session takes it to
    /// give back its slot. An evicted session never waits on its client, so this is
    /// a matter of microseconds.
    fn join_evicted(table: &mut MutexGuard<'_, Table>, most: usize) {
        while table.evicted.len() > most {
            let thread = table.evicted.pop_front().expect("longer than most");
            // A panic in a session was already reported by its thread.
            let _ = MutexGuard::unlocked(table, || thread.join());
        }
    }

    /// How many connections are open.
    pub fn count(&self) -> usize {
        self.table.lock().open.len()
    }

    /// Closes every open connection (shutdown).
    pub fn close_all(&self) {
        for connection in self.table.lock().open.values() {
            connection.close();
        }
    }

    /// Waits until every slot has been given back; false if `grace` ran out first.
    pub fn wait_until_empty(&self, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        let mut table = self.table.lock();
        while !table.open.is_empty() || table.evicted_running > 0 {
            if self.ended.wait_until(&mut table, deadline).timed_out() {
                return table.open.is_empty() && table.evicted_running == 0;
            }
        }
        true
    }
}

impl Table {
    /// Takes the oldest open connection that has not logged in out of the table, for
    /// eviction; drops the queue entries it passes that have logged in or left.
    fn oldest_waiting(&mut self) -> Option<Arc<Connection>> {
        while let Some(id) = self.waiting.pop_front() {
            if self.open.get(&id).is_some_and(|c| !c.is_logged_in()) {
                self.evicted_running += 1;
                if let Some(thread) = self.threads.remove(&id) {
                    self.evicted.push_back(thread);
                }
                return self.open.remove(&id);
            }
        }
        None
    }
}

/// One connection's slot under the client limit, given back when dropped however the
/// connection ends.
pub struct Slot {
    slots: Arc<Slots>,
    id: ConnectionId,
}

impl Slot {
    /// The client limit this slot counts under.
    pub fn max_clients(&self) -> usize {
        self.slots.max_clients
    }

    /// Marks the connection as logged in, so it is never evicted. False if it was
    /// evicted already: the login must not go ahead.
    pub fn log_in(&self) -> bool {
        // Under the table's lock, so that the accept thread never evicts a connection
        // between this check and the mark.
        match self.slots.table.lock().open.get(&self.id) {
            Some(connection) => {
                connection.mark_logged_in();
                true
            }
            None => false,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.slots.table.lock();
        // Its own handle, if the table still has it: dropped from its own thread, it
        // just lets the thread go.
        let own_thread = table.threads.remove(&self.id);
        if table.open.remove(&self.id).is_none() {
            // Not open: it was evicted, and its session has now ended.
            table.evicted_running -= 1;
        }
        // Waited on only at shutdown and by an accept thread making room: without
        // waiters, notifying costs nothing.
        self.slots.ended.notify_all();
        drop(table);
        drop(own_thread);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    /// A connection whose other end the test keeps open.
    fn open_connection(slots: &Slots, listener: &TcpListener) -> (Arc<Connection>, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, peer) = listener.accept().unwrap();
        let connection = Connection::new(slots.next_id(), peer, stream, Duration::from_secs(1));
        (Arc::new(connection.unwrap()), client)
    }

    fn admitted(admission: Admission) -> (Slot, Option<ConnectionId>) {
        match admission {
            Admission::Admitted { slot, evicted } => (slot, evicted.map(|c| c.id())),
            Admission::Full => panic!("expected a slot"),
        }
    }

    #[test]
    fn a_full_server_evicts_the_oldest_connection_not_logged_in() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots::new(3, 3);
        let mut held = Vec::new();
        let mut admit = |slots: &Arc<Slots>| {
            let (connection, client) = open_connection(slots, &listener);
            let id = connection.id();
            let (slot, evicted) = admitted(slots.admit(connection));
            held.push(client);
            (slot, id, evicted)
        };
        let (first, _, _) = admit(&slots);
        let (second, second_id, _) = admit(&slots);
        let (third, third_id, _) = admit(&slots);
        assert!(first.log_in());
        let (_fourth, fourth_id, evicted) = admit(&slots);
        assert_eq!(evicted, Some(second_id), "the oldest not logged in");
        assert!(!second.log_in(), "an evicted connection cannot log in");
        let (_fifth, _, evicted) = admit(&slots);
        assert_eq!(evicted, Some(third_id));
        drop(third);
        assert!(third_id < fourth_id);
        assert_eq!(slots.count(), 3);
    }

    #[test]
    fn when_everyone_is_logged_in_the_newcomer_is_turned_away() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots::new(1, 1);
        let (connection, _client) = open_connection(&slots, &listener);
        let (slot, _) = admitted(slots.admit(connection));
        assert!(slot.log_in());
        let (newcomer, _other) = open_connection(&slots, &listener);
        assert!(matches!(slots.admit(newcomer), Admission::Full));
        drop(slot);
        assert_eq!(slots.count(), 0);
    }

    #[test]
    fn the_waiting_queue_stays_bounded_when_everyone_logs_in() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots::new(10_000, 10_000);
        let mut held = Vec::new();
        for _ in 0..400 {
            let (connection, client) = open_connection(&slots, &listener);
            let (slot, _) = admitted(slots.admit(connection));
            assert!(slot.log_in());
            held.push((slot, client));
            let table = slots.table.lock();
            assert!(table.waiting.len() <= STALE_FACTOR * table.open.len() + STALE_SLACK);
        }
    }

    #[test]
    fn making_room_evicts_the_oldest_connection_not_logged_in() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots::new(2, 2);
        assert_eq!(slots.max_clients(), 2);
        let (first, _first_client) = open_connection(&slots, &listener);
        let (second, _second_client) = open_connection(&slots, &listener);
        let (first_slot, _) = admitted(slots.admit(Arc::clone(&first)));
        let (second_slot, _) = admitted(slots.admit(Arc::clone(&second)));
        assert_eq!(first_slot.max_clients(), 2);
        assert!(second_slot.log_in());
        assert!(slots.make_room(), "the first has not logged in");
        assert!(first.was_evicted());
        assert!(!second.was_evicted());
        assert!(!slots.make_room(), "everyone left is logged in");
        drop(first_slot);
        assert_eq!(slots.count(), 1);
    }

    #[test]
    fn shutdown_closes_every_connection_and_waits_for_their_slots() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots::new(2, 2);
        let (connection, _client) = open_connection(&slots, &listener);
        let (slot, _) = admitted(slots.admit(Arc::clone(&connection)));
        slots.close_all();
        assert!(connection.is_closed());
        assert!(
            !slots.wait_until_empty(Duration::from_millis(10)),
            "a slot is held"
        );
        let holder = std::thread::spawn(move || drop(slot));
        assert!(
            slots.wait_until_empty(Duration::from_secs(10)),
            "given back"
        );
        holder.join().unwrap();
    }
}
