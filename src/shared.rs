//! The state every session shares: the original's global `onlineMap` and `userInfo`
//! array, and the mailboxes. Here each piece has its own lock, and every session thread
//! holds a `&SharedState`. Where a message goes is decided in `routing.rs`.
//!
//! # Lock order
//!
//! A thread that holds more than one lock takes them in this order, never the other
//! way round, so no two threads can each hold what the other waits for:
//!
//! 1. a mailbox lock (`Mailboxes::lock`; a sender takes the receiver's, a login its own,
//!    an acknowledgement its own);
//! 2. a receipts connection's window (`Connection::window`), under its owner's mailbox
//!    lock only;
//! 3. a connection's write lock (`Connection::send`); a thread that leaves a receipt
//!    for another user only ever *tries* that user's write lock, and never waits for it;
//! 4. the online map's lock (`Online`): held only to look up, insert or remove an entry,
//!    never while taking another lock or writing to a socket.
//!
//! The client-limit table (`Slots`), the failed-login table (`LoginThrottle`), a
//! connection's notices and each log line's budget (`LogLimit`) are leaves: held alone,
//! for a moment.

use crate::config::Config;
use crate::login_throttle::LoginThrottle;
use crate::mailbox::Mailboxes;
use crate::online::Online;
use crate::users::Accounts;
use std::sync::Arc;
use std::time::Duration;

/// Everything the sessions share (see the module's lock order).
pub struct SharedState {
    /// Who may log in (the original's `userInfo` array); never changes while running.
    pub accounts: Arc<Accounts>,
    /// Who is online, on which connection (the original's `onlineMap`).
    pub online: Online,
    /// Each user's stored messages, on disk.
    pub mailboxes: Mailboxes,
    /// Failed logins per client address.
    pub login_throttle: LoginThrottle,
    /// How long the rest of a frame may take once it has begun.
    pub frame_timeout: Duration,
}

impl SharedState {
    /// The shared state for a server with `accounts`; fails if the data directory is
    /// unusable. Opening the mailboxes may create the data directory and rewrite files
    /// of an older format: the server calls this only once it holds its port.
    pub fn new(config: &Config, accounts: Accounts) -> Result<SharedState, String> {
        let accounts = Arc::new(accounts);
        let mailboxes = Mailboxes::open(
            &config.data_dir,
            config.mailbox_limit,
            config.store_limit,
            Arc::clone(&accounts),
            config.sync,
        )?;
        let online = Online::with_capacity(config.max_clients.min(accounts.len()));
        Ok(SharedState {
            accounts,
            online,
            mailboxes,
            login_throttle: LoginThrottle::new(config.login_failures),
            frame_timeout: config.frame_timeout,
        })
    }
}
