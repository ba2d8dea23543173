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
use crate::online::Connection;
use crate::online::Online;
use crate::protocol::{
    CHAT_FRAME_LEN, ChatMessage, FEEDBACK_LEN, Flag, MAX_UNACKED, MESSAGE_FRAME_LEN,
};
use crate::receipts::{self, SlowReceiver};
use crate::users::{AccountId, Accounts};
use std::io;
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
    /// message's echo flag in `flags`, and, if `want_ids` (the sender has receipts on) or
    /// the receiver needs them, its id in `ids` (0 for a message refused). Both are
    /// cleared first; the caller reuses them, and `scratch` for the MESSAGE frames of a
    /// receipts receiver.
    ///
    /// The frames come as bytes, exactly as they go on the wire: the session built them
    /// once, as its echoes, and a live delivery (nearly all of them) is a copy and a
    /// write. Only the mailbox, and a receipts receiver (MESSAGE frames, with ids),
    /// need more.
    ///
    /// The receiver's mailbox lock is held throughout, so a login of the receiver cannot
    /// slip in between the choice and the write (see `Mailboxes::lock`), and ids given
    /// to one receiver's deliveries increase in the order they are written.
    pub fn deliver(
        &self,
        receiver: AccountId,
        frames: &[u8],
        want_ids: bool,
        flags: &mut Vec<Flag>,
        ids: &mut Vec<u64>,
        scratch: &mut Vec<u8>,
    ) {
        flags.clear();
        ids.clear();
        let mut mailbox = self.mailboxes.lock_account(receiver);
        let name = self.accounts.name(receiver);
        let count = frames.len() / CHAT_FRAME_LEN;
        if let Some(connection) = self.online.get(name) {
            if connection.receipts().is_some() {
                let (frames, out) = (frames, scratch);
                return self.deliver_with_receipts(
                    &mut mailbox,
                    &connection,
                    frames,
                    flags,
                    ids,
                    out,
                );
            }
            if connection.send(frames).is_ok() {
                if log::log_enabled!(log::Level::Debug) {
                    for message in messages(frames) {
                        log::debug!("{} -> {name}", message.sender);
                        log::trace!("{} -> {name}: {}", message.sender, message.text);
                    }
                }
                flags.resize(count, Flag::Ok);
                if want_ids {
                    // One reading of the clock for the batch, as for a receipts receiver.
                    let first = self.mailboxes.ids().next_run(count as u64);
                    ids.extend((first..).take(count));
                }
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
            let id = self.mailboxes.next_id();
            let flag = self.store(&mut mailbox, id, &message);
            flags.push(flag);
            ids.push(if flag == Flag::Queued { id } else { 0 });
        }
    }

    /// [`SharedState::deliver`] to a receipts connection: MESSAGE frames with ids, kept
    /// as unacknowledged. If the connection turns out dead or too slow, everything it
    /// has not acknowledged, this batch included, goes into the mailbox, in order
    /// (see `receipts.rs`): the echoes say 0.
    fn deliver_with_receipts(
        &self,
        mailbox: &mut Mailbox<'_>,
        connection: &Connection,
        frames: &[u8],
        flags: &mut Vec<Flag>,
        ids: &mut Vec<u64>,
        out: &mut Vec<u8>,
    ) {
        let receipts = connection
            .receipts()
            .expect("called for receipts connections");
        let count = frames.len() / CHAT_FRAME_LEN;
        out.clear();
        match receipts.deliver(frames, self.mailboxes.ids(), ids, out) {
            Ok(()) if connection.send(out).is_ok() => {
                flags.resize(count, Flag::Ok);
                return;
            }
            Ok(()) => crate::info_limited!(
                "delivery to {} failed; storing what it had not acknowledged",
                connection.peer()
            ),
            Err(SlowReceiver) => {
                crate::warn_limited!(
                    "{}: more than {MAX_UNACKED} messages unacknowledged; closing the \
                     connection as a slow receiver, and storing them",
                    connection.peer()
                );
                connection.close();
            }
        }
        let stored = receipts::store_unacknowledged(mailbox, connection);
        flags.resize(
            count,
            if stored {
                Flag::Queued
            } else {
                Flag::NotStored
            },
        );
        if !stored {
            ids.iter_mut().for_each(|id| *id = 0);
        }
    }

    /// Says a room message to one online user: its frame as it is, or, to a receipts
    /// connection, as a MESSAGE frame with an id of its own (given under the receiver's
    /// mailbox lock, like a private delivery's, so ids increase in wire order).
    pub fn deliver_room(
        &self,
        name: &str,
        connection: &Connection,
        frame: &[u8; CHAT_FRAME_LEN],
    ) -> io::Result<()> {
        let Some(receipts) = connection.receipts() else {
            return connection.send(frame);
        };
        let _in_order = self.mailboxes.lock(name);
        let id = self.mailboxes.next_id();
        receipts.note_delivered(id);
        let mut out = Vec::with_capacity(MESSAGE_FRAME_LEN);
        let body = frame[FEEDBACK_LEN..].try_into().expect("a 140-byte body");
        receipts::message_frame(Flag::Ok.to_wire(), id, body, &mut out);
        connection.send(&out)
    }

    /// Stores one message for an offline receiver; its echo flag.
    fn store(&self, mailbox: &mut Mailbox<'_>, id: u64, message: &ChatMessage) -> Flag {
        let receiver = &message.receiver;
        match mailbox.append(id, message) {
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
