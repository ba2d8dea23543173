//! CHAT: the original's relay (`if (head.businessType == CHAT)`): read the message, make
//! its sender the logged-in name, and queue its echo and its delivery in the outbox
//! (written by `Outbox::write_out`, delivery first); a room message (`*`) is said to
//! everyone online at once.

use crate::frame_reader::{FrameReader, TimedRead};
use crate::message_id;
use crate::peer::{Next, Peer};
use crate::protocol::{
    self, CHAT_BODY_LEN, CHAT_FRAME_LEN, ChatMessage, FEEDBACK_LEN, Flag, NAME_LEN, Name,
};
use crate::routing;
use crate::{info_limited, warn_limited};
use std::io;

/// CHAT: queues the echo and the delivery; says a room message at once.
pub fn handle(
    peer: &mut Peer<'_>,
    body_len: usize,
    input: &mut FrameReader<impl TimedRead>,
) -> io::Result<Next> {
    if body_len != CHAT_BODY_LEN {
        protocol::skip(input, body_len)?;
        warn_limited!(
            "{}: CHAT with a {body_len}-byte body instead of {CHAT_BODY_LEN}",
            peer.connection.peer()
        );
        let zeroed = ChatMessage::decode(&[0; CHAT_BODY_LEN]);
        peer.outbox.reply(&zeroed.to_frame(Flag::Malformed));
        return Ok(Next::Continue);
    }
    // Always read, whoever is online: the original left the body unread when fewer
    // than two users were online, and the stream fell out of step. Read straight into
    // the outbox, where the message is normalised and checked in place and leaves as
    // the echo and the delivery without being copied again.
    let frame = peer.outbox.read_chat_frame(input)?;
    let body = peer.outbox.chat_body_mut(frame);
    protocol::normalise_chat_body(body);
    if peer.user.is_none() {
        peer.outbox.answer(frame, Flag::NotLoggedIn);
        return Ok(Next::Continue);
    }
    // No impersonation: the sender is whoever this session logged in as.
    body[..NAME_LEN].copy_from_slice(peer.sender.field());
    let receiver = Name::from_field(
        body[NAME_LEN..2 * NAME_LEN]
            .try_into()
            .expect("the receiver field is 20 bytes"),
    );
    match receiver.as_str() {
        None | Some("") => peer.outbox.answer(frame, Flag::Malformed),
        Some(protocol::ROOM) => {
            let said = peer.outbox.take_frame(frame);
            // Earlier private messages go first, so one sender's order holds.
            peer.write_out()?;
            broadcast(peer, &said);
            peer.outbox.reply_echo(&said, time_only_id());
        }
        Some(_) if receiver == peer.sender => {
            peer.outbox.answer(frame, Flag::Ok);
            peer.outbox.set_echo_id(frame, time_only_id());
        }
        // The one account lookup of the message: the id travels with it.
        Some(_) => match peer.shared.accounts.id_of(&receiver) {
            Some(id) => peer.outbox.queue_delivery(id, frame),
            None => peer.outbox.answer(frame, Flag::Rejected),
        },
    }
    Ok(Next::Continue)
}

/// The id of an echo that no receiver's store gave one (a room message, a message to
/// oneself): the first id of this millisecond, which says when it was sent and
/// acknowledges nothing.
fn time_only_id() -> u64 {
    message_id::first_of_ms(message_id::now_ms())
}

/// Sends a room message (its whole frame, flag 1) to every other online user. Never
/// stored: a user who is not online when it is said does not hear it, as in a real
/// room.
fn broadcast(peer: &Peer<'_>, frame: &[u8; CHAT_FRAME_LEN]) {
    let shared = peer.shared;
    for (name, connection) in shared.online.others(peer.connection.id()) {
        if routing::deliver_room(shared, &name, &connection, frame).is_err() {
            info_limited!("room message to {name} not delivered: the connection failed");
        }
    }
    if log::log_enabled!(log::Level::Debug) {
        let body = frame[FEEDBACK_LEN..].try_into().expect("a 140-byte body");
        let message = ChatMessage::decode(body);
        log::debug!("{} -> the room", message.sender);
        log::trace!("{} -> the room: {}", message.sender, message.text);
    }
}
