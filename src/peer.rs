//! What a session knows of its client between two requests: the connection, its place
//! under the client limit, who logged in on it, and its outbox. The session loop
//! (`session.rs`) owns one; each request kind (`request/`) reads its frame and acts on
//! it through it.

use crate::online::Connection;
use crate::outbox::Outbox;
use crate::protocol::Name;
use crate::shared::SharedState;
use crate::slots::Slot;
use std::io;
use std::sync::Arc;

/// Whether the session reads on or hangs up after a request.
pub enum Next {
    /// Read the next request.
    Continue,
    /// End the session.
    Close,
}

/// One client's session state (the locals of the original's `pthread_function`).
pub struct Peer<'a> {
    /// The state every session shares.
    pub shared: &'a SharedState,
    /// The client's connection.
    pub connection: Arc<Connection>,
    /// Its place under the client limit, given back when the session ends.
    pub slot: Slot,
    /// The logged-in name, once a login succeeded (the original's `name`).
    pub user: Option<String>,
    /// The same name as the 20-byte field every message from this session carries as
    /// its sender (made once, at login, not per message).
    pub sender: Name,
    /// Failed logins on this connection.
    pub failed_logins: u32,
    /// Replies and deliveries waiting to be written (see `outbox.rs`).
    pub outbox: Outbox,
}

impl<'a> Peer<'a> {
    /// A client that has not logged in yet.
    pub fn new(shared: &'a SharedState, connection: Arc<Connection>, slot: Slot) -> Peer<'a> {
        Peer {
            shared,
            connection,
            slot,
            user: None,
            sender: Name::EMPTY,
            failed_logins: 0,
            outbox: Outbox::default(),
        }
    }

    /// Sends everything the outbox holds (see `outbox.rs`).
    pub fn write_out(&mut self) -> io::Result<()> {
        self.outbox.write_out(self.shared, &self.connection)
    }
}
