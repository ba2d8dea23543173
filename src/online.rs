//! Who is online, and how a frame reaches a client's socket.
//!
//! A [`Connection`] is one client's socket as every thread sees it: its own session
//! thread reads from it, and any thread may write a frame to it. Writes go through a
//! per-connection lock and one `write_all` each, so frames from different threads never
//! interleave on the wire. A write that fails or times out leaves a frame half-sent, so
//! the connection is closed at once: the client sees the stream end rather than garbage.
//!
//! The [`Online`] map says which connection a logged-in name is on. Its lock is held only
//! to look up, insert or remove an entry, never across a socket write: callers take the
//! `Arc<Connection>` out, let go of the map, then write.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Tells connections apart even when the same user logs in twice, so that the cleanup of
/// an old connection never removes a newer login of the same name.
pub type ConnectionId = u64;

/// One client's socket.
#[derive(Debug)]
pub struct Connection {
    id: ConnectionId,
    peer: SocketAddr,
    stream: TcpStream,
    /// Held for the whole of one frame's `write_all`; guards no data, only the order of
    /// bytes on the socket (`&TcpStream` is itself `Write`).
    write_lock: Mutex<()>,
    closed: AtomicBool,
}

impl Connection {
    pub fn new(id: ConnectionId, peer: SocketAddr, stream: TcpStream) -> Connection {
        Connection {
            id,
            peer,
            stream,
            write_lock: Mutex::new(()),
            closed: AtomicBool::new(false),
        }
    }

    pub fn id(&self) -> ConnectionId {
        self.id
    }

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
    pub fn send_after(&self, first: impl FnOnce(), bytes: &[u8]) -> io::Result<()> {
        let _in_order = self.write_lock.lock();
        first();
        if self.is_closed() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection is already closed",
            ));
        }
        let result = (&self.stream).write_all(bytes);
        if let Err(error) = &result {
            log::warn!(
                "{}: write failed ({error}); closing the connection",
                self.peer
            );
            self.close();
        }
        result
    }

    /// Shuts the socket down both ways. The session thread's blocked read returns at once
    /// and the client sees EOF. Safe to call more than once, from any thread.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            // An error here means the peer is already gone, which is what we want.
            let _ = self.stream.shutdown(Shutdown::Both);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// The map of logged-in names to their connections.
#[derive(Debug, Default)]
pub struct Online {
    sessions: Mutex<HashMap<String, Arc<Connection>>>,
}

impl Online {
    pub fn new() -> Online {
        Online::default()
    }

    /// A map with room for `users` entries, so that it never grows (and leaves its old
    /// tables behind in the allocator) while a crowd logs in.
    pub fn with_capacity(users: usize) -> Online {
        Online {
            sessions: Mutex::new(HashMap::with_capacity(users)),
        }
    }

    /// The connection `name` is logged in on, if any.
    pub fn get(&self, name: &str) -> Option<Arc<Connection>> {
        self.sessions.lock().get(name).cloned()
    }

    /// Puts `name` online on `connection`; returns the connection it was on before, if it
    /// was another one (the caller closes it: the newest login wins).
    pub fn insert(&self, name: &str, connection: Arc<Connection>) -> Option<Arc<Connection>> {
        let id = connection.id();
        let previous = self.sessions.lock().insert(name.to_string(), connection);
        previous.filter(|old| old.id() != id)
    }

    /// Takes `name` offline, but only if it is still on connection `id`: a newer login of
    /// the same name stays. Returns whether it was removed.
    pub fn remove(&self, name: &str, id: ConnectionId) -> bool {
        let mut sessions = self.sessions.lock();
        if sessions.get(name).is_some_and(|current| current.id() == id) {
            sessions.remove(name);
            true
        } else {
            false
        }
    }

    /// How many users are online.
    pub fn count(&self) -> usize {
        self.sessions.lock().len()
    }

    /// The online names, sorted by their bytes (the USERS reply's order).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sessions.lock().keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// Every online connection but `except`, for a room message.
    pub fn others(&self, except: ConnectionId) -> Vec<(String, Arc<Connection>)> {
        self.sessions
            .lock()
            .iter()
            .filter(|(_, connection)| connection.id() != except)
            .map(|(name, connection)| (name.clone(), Arc::clone(connection)))
            .collect()
    }
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
        (Arc::new(Connection::new(id, peer, server)), client)
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
