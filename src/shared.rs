//! The state every session shares, and the one place that decides where a message for
//! a user goes: to their socket if they are online, to their mailbox if not. In the
//! original this is the global `onlineMap` and the `userInfo` array; here each piece
//! has its own lock, and every session thread holds a `&SharedState`.
//!
//! # Lock order
//!
//! A thread that holds more than one lock takes them in this order, never the other
//! way round, so no two threads can each hold what the other waits for:
//!
//! 1. a mailbox lock (`Mailboxes::lock`; a sender takes the receiver's, a login its own);
//! 2. a connection's write lock (`Connection::send`);
//! 3. the online map's lock (`Online`): held only to look up, insert or remove an entry,
//!    never while taking another lock or writing to a socket.
//!
//! The client-limit table (`Slots`), the failed-login table (`LoginThrottle`) and each
//! log line's budget (`LogLimit`) are leaves: held alone, for a moment.

use crate::config::Config;
use crate::login_throttle::LoginThrottle;
use crate::mailbox::{Mailbox, Mailboxes, Stored, storage_problem};
use crate::online::Online;
use crate::protocol::{CHAT_FRAME_LEN, ChatMessage, FEEDBACK_LEN, Flag};
use crate::users::{AccountId, Accounts};
use std::sync::Arc;

/// Everything the sessions share (see the module's lock order).
pub struct SharedState {
    /// Who may log in (the original's `userInfo` array); never changes while running.
    pub accounts: Arc<Accounts>,
    /// Who is online, on which connection (the original's `onlineMap`).
    pub online: Online,
    /// Offline messages on disk.
    pub mailboxes: Mailboxes,
    /// Failed logins per client address.
    pub login_throttle: LoginThrottle,
    /// How long the rest of a frame may take once it has begun.
    pub frame_timeout: std::time::Duration,
}

impl SharedState {
    /// The shared state for a server with `accounts`; fails if the data directory is
    /// unusable.
    pub fn new(config: &Config, accounts: Accounts) -> Result<SharedState, String> {
        let accounts = Arc::new(accounts);
        let mailboxes = Mailboxes::open(
            &config.data_dir,
            config.mailbox_limit,
            config.store_limit,
            Arc::clone(&accounts),
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

    /// Delivers `frames` (whole CHAT frames `FEEDBACK{2, 140, 1}` + message, oldest
    /// first, all for account `receiver`): all of them live in one write if the receiver
    /// is online and the write succeeds, otherwise each into the mailbox. Leaves each
    /// message's echo flag in `flags` (cleared first; the caller reuses it).
    ///
    /// The frames come as bytes, exactly as they go on the wire: the session built them
    /// once, as its echoes, and a live delivery (nearly all of them) is a copy and a
    /// write. Only the mailbox decodes them again.
    ///
    /// The receiver's mailbox lock is held throughout, so a login of the receiver cannot
    /// slip in between the choice and the write (see `Mailboxes::lock`).
    pub fn deliver(&self, receiver: AccountId, frames: &[u8], flags: &mut Vec<Flag>) {
        flags.clear();
        let mut mailbox = self.mailboxes.lock_account(receiver);
        let name = self.accounts.name(receiver);
        let count = frames.len() / CHAT_FRAME_LEN;
        if let Some(connection) = self.online.get(name) {
            if connection.send(frames).is_ok() {
                if log::log_enabled!(log::Level::Debug) {
                    for message in messages(frames) {
                        log::debug!("{} -> {name}", message.sender);
                        log::trace!("{} -> {name}: {}", message.sender, message.text);
                    }
                }
                flags.resize(count, Flag::Ok);
                return;
            }
            // `send` closed the broken connection; its session takes the user offline.
            // Part of the batch may have reached the socket: storing all of it may repeat
            // some, but loses none (at-least-once).
            crate::info_limited!(
                "delivery to {name} failed; storing {count} messages in the mailbox"
            );
        }
        for message in messages(frames) {
            flags.push(self.store(&mut mailbox, &message));
        }
    }

    /// Stores one message for an offline receiver; its echo flag.
    fn store(&self, mailbox: &mut Mailbox<'_>, message: &ChatMessage) -> Flag {
        let receiver = &message.receiver;
        match mailbox.append(message) {
            Ok(Stored::Queued) => {
                log::debug!("{} -> {receiver} (stored)", message.sender);
                Flag::Queued
            }
            Ok(Stored::MailboxFull) => {
                crate::info_limited!("mailbox of {receiver} is full; message refused");
                Flag::MailboxFull
            }
            Ok(Stored::StoreFull) => {
                crate::warn_limited!(
                    "the store is full (--store-limit {} messages in all mailboxes); \
                     message for {receiver} refused",
                    self.mailboxes.store_limit()
                );
                Flag::MailboxFull
            }
            Err(error) => {
                crate::log_limited!(
                    log::Level::Error,
                    "{}: cannot store a message for {receiver} ({}): {error}",
                    mailbox.path().display(),
                    storage_problem(&error)
                );
                Flag::NotStored
            }
        }
    }
}

/// The messages of whole CHAT frames.
fn messages(frames: &[u8]) -> impl Iterator<Item = ChatMessage> + '_ {
    frames.chunks_exact(CHAT_FRAME_LEN).map(|frame| {
        let body = frame[FEEDBACK_LEN..]
            .try_into()
            .expect("a CHAT frame is a feedback and a 140-byte body");
        ChatMessage::decode(body)
    })
}
