//! LOGIN: the original's loop over `userInfo`, then `onlineMap.insert` and the reply;
//! here also the per-connection and per-address failure limits, the stored messages
//! that come with a login, and going offline again.

use crate::frame_reader::{FrameReader, TimedRead};
use crate::mailbox::{Handover, storage_problem};
use crate::peer::{Next, Peer};
use crate::protocol::{self, Credentials, Feedback, Flag, LOGIN_BODY_LEN, Name};
use crate::routing;
use crate::{info_limited, log_limited, warn_limited};
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

/// Failed logins a connection may make; the next one closes it (flag -6). A success in
/// between does not reset the count, or a guesser would interleave its own login.
pub const MAX_FAILED_LOGINS: u32 = 5;

/// LOGIN: check the name and password against the accounts (the original's loop over
/// `userInfo`), then go online.
pub fn handle(
    peer: &mut Peer<'_>,
    body_len: usize,
    input: &mut FrameReader<impl TimedRead>,
) -> io::Result<Next> {
    let address = peer.connection.peer();
    if address_is_throttled(peer) {
        // Read the body all the same: closing with unread input would reset the
        // connection, and the client might never see the -6.
        protocol::skip(input, body_len)?;
        return hang_up(peer, Flag::TooManyAttempts);
    }
    if body_len != LOGIN_BODY_LEN {
        protocol::skip(input, body_len)?;
        warn_limited!("{address}: LOGIN with a {body_len}-byte body instead of {LOGIN_BODY_LEN}");
        return refuse(peer, Flag::Malformed);
    }
    let mut body = [0; LOGIN_BODY_LEN];
    input.read_exact(&mut body)?;
    let credentials = Credentials::decode(&body);
    let Some(name) = credentials.name.as_str().filter(|name| !name.is_empty()) else {
        warn_limited!("{address}: LOGIN with an empty or non-UTF-8 name");
        return refuse(peer, Flag::Malformed);
    };
    if !peer
        .shared
        .accounts
        .check(name, credentials.password.as_bytes())
    {
        info_limited!("{address}: login refused for {name:?}");
        return refuse(peer, Flag::Rejected);
    }
    if peer.user.as_deref() == Some(name) {
        peer.outbox.reply(&Feedback::login(Flag::Ok).to_bytes());
        return Ok(Next::Continue);
    }
    if !peer.slot.log_in() {
        // Evicted between reading this frame and now: it had not logged in yet.
        // The end of the session tells the client -5.
        return Ok(Next::Close);
    }
    let name = name.to_string();
    // Replies to earlier frames go out before the login reply and the stored mail.
    peer.write_out()?;
    if let Some(previous) = peer.user.take() {
        log_out(peer, &previous);
    }
    go_online(peer, name)?;
    Ok(Next::Continue)
}

/// True if the client's address has had too many failed logins lately: its logins
/// are refused without looking at the password.
fn address_is_throttled(peer: &Peer<'_>) -> bool {
    let address = peer.connection.peer();
    let throttled = peer
        .shared
        .login_throttle
        .is_blocked(address.ip(), Instant::now());
    if throttled {
        warn_limited!(
            "{address}: login refused unchecked: {} has had too many failed logins \
             in the last minute; closing the connection",
            address.ip()
        );
    }
    throttled
}

/// Answers a failed login, counting it against the connection and the client's
/// address; the connection's fifth failure hangs up instead.
fn refuse(peer: &mut Peer<'_>, flag: Flag) -> io::Result<Next> {
    let address = peer.connection.peer();
    peer.failed_logins += 1;
    peer.shared
        .login_throttle
        .record_failure(address.ip(), Instant::now());
    if peer.failed_logins >= MAX_FAILED_LOGINS {
        warn_limited!(
            "{address}: {} failed logins on this connection; closing it",
            peer.failed_logins
        );
        return hang_up(peer, Flag::TooManyAttempts);
    }
    peer.outbox.reply(&Feedback::login(flag).to_bytes());
    Ok(Next::Continue)
}

/// Sends a last LOGIN reply with `flag`, after everything before it, and ends the
/// session.
pub fn hang_up(peer: &mut Peer<'_>, flag: Flag) -> io::Result<Next> {
    peer.outbox.reply(&Feedback::login(flag).to_bytes());
    peer.write_out()?;
    Ok(Next::Close)
}

/// Accepts the login of `name`: the original's `onlineMap.insert(make_pair(name, fd))`
/// and its `write(fd, &back, ...)`, plus the stored messages. All of it happens under
/// `name`'s mailbox lock, so that no message sent meanwhile falls between the mailbox
/// and the live connection (see `Mailboxes::lock`).
pub fn go_online(peer: &mut Peer<'_>, name: String) -> io::Result<()> {
    let address = peer.connection.peer();
    let shared = peer.shared;
    let mut mailbox = shared
        .mailboxes
        .lock(&name)
        .expect("every account has a mailbox");
    peer.user = Some(name.clone());
    peer.sender = Name::new(&name).expect("account names fit the name field");
    let connection = Arc::clone(&peer.connection);
    let handed = routing::hand_over(&mut mailbox, &connection, |reply| {
        announce(peer, &name, reply)
    })?;
    match handed {
        Handover::Empty => {}
        Handover::Delivered(1) => info_limited!("{address}: delivered 1 stored message to {name}"),
        Handover::Delivered(count) => {
            info_limited!("{address}: delivered {count} stored messages to {name}")
        }
        Handover::Kept { messages, error } => log_limited!(
            log::Level::Error,
            "{}: cannot read the mailbox of {name} ({}: {error}); its {messages} \
             stored messages stay there for a later login",
            mailbox.path().display(),
            storage_problem(&error)
        ),
    }
    drop(mailbox);
    info_limited!(
        "{address}: {name} logged in ({} online)",
        shared.online.count()
    );
    Ok(())
}

/// Puts `name` in the online map on this connection and sends `reply` (the login reply
/// and the stored messages). The map entry is made under the connection's write lock,
/// so whoever writes to the new user meanwhile waits for the reply to go first, and the
/// client, once it has its reply, is visible to everyone (USERS, the room).
/// `Online::insert` closes an older connection of the same name. If the send fails, the
/// mailbox is kept whole for next time, and the session's end takes the name offline.
fn announce(peer: &Peer<'_>, name: &str, reply: &[u8]) -> io::Result<()> {
    let mut older = None;
    let online = &peer.shared.online;
    let connection = &peer.connection;
    connection.send_after(
        || older = online.insert(name, Arc::clone(connection)),
        reply,
    )?;
    if let Some(older) = older {
        info_limited!(
            "{name} logged in again from {}; closed the older connection from {}",
            connection.peer(),
            older.peer()
        );
    }
    Ok(())
}

/// Takes `name` offline on this connection (unless a newer login of the same name took
/// over). Nothing else to do: whatever was not delivered for good is in the store. Done
/// under `name`'s mailbox lock, so a delivery to `name` that found this connection has
/// finished first, and none can find it after (a next login on this connection starts
/// from nothing).
pub fn log_out(peer: &Peer<'_>, name: &str) {
    let _in_order = peer.shared.mailboxes.lock(name);
    if peer.shared.online.remove(name, peer.connection.id()) {
        info_limited!(
            "{}: {name} went offline ({} online)",
            peer.connection.peer(),
            peer.shared.online.count()
        );
    }
}
