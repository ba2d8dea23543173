//! What a typed line means: a command (`/who`, `/r`, `/quit`…), a message to someone
//! (`@name text`), to the room (`*text`) or to the partner (a bare line). Input is taken
//! as a Chinese input method types it: the full-width space U+3000 separates a name
//! from its text as a space does, and full-width `＠` `＊` `／` start a line as `@` `*`
//! `/` do; `“…”` quotes a name as `"…"` does. Errors quote a name as it was typed.

use crate::say;
use crate::visible::visible_str;
use chatroom::protocol::{NAME_LEN, ROOM};

/// What separates a command or a name from what follows: a space, or the full-width
/// space of a Chinese input method.
const SEPARATORS: [char; 2] = [' ', '\u{3000}'];
/// Full-width forms a Chinese input method types, and the ASCII they stand for at the
/// start of a line.
const FULL_WIDTH: [(char, char); 3] = [('＠', '@'), ('＊', '*'), ('／', '/')];
/// Quotes around a name with spaces: ASCII, or as a Chinese input method types them.
const QUOTES: [(char, char); 2] = [('"', '"'), ('“', '”')];

/// What one typed line means.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// `/quit` or `/exit`.
    Quit,
    /// An empty line.
    Nothing,
    /// `/who`.
    Who,
    /// Something to tell the user without asking the server.
    Say(String),
    /// A message to send.
    Chat {
        /// The receiver, or `*`.
        to: String,
        /// The text, whole (it may need several parts).
        text: String,
    },
}

/// The line's first character in its ASCII form, and the rest.
fn lead(line: &str) -> Option<(char, &str)> {
    let first = line.chars().next()?;
    let ascii = FULL_WIDTH
        .iter()
        .find(|(wide, _)| *wide == first)
        .map_or(first, |(_, ascii)| *ascii);
    Some((ascii, &line[first.len_utf8()..]))
}

/// `text` cut at its first separator: what comes before, and what comes after it.
fn split_word(text: &str) -> (&str, &str) {
    match text.find(SEPARATORS) {
        Some(at) => {
            let separator = text[at..].chars().next().expect("found one");
            (&text[..at], &text[at + separator.len_utf8()..])
        }
        None => (text, ""),
    }
}

/// `text` without one separator at its start, if it has one.
fn strip_separator(text: &str) -> &str {
    text.strip_prefix(SEPARATORS).unwrap_or(text)
}

/// What `line` means; `partner` is where a bare line goes (an `@name` changes it),
/// `last_sender` whom `/r` answers.
pub fn parse_line(line: &str, partner: &mut Option<String>, last_sender: Option<&str>) -> Input {
    if line.trim_matches(|c: char| c.is_whitespace()).is_empty() {
        return Input::Nothing;
    }
    match lead(line) {
        Some(('/', command)) => {
            let (command, text) = split_word(command);
            match command {
                "quit" | "exit" => Input::Quit,
                "who" => Input::Who,
                "help" => Input::Say(say::help().to_string()),
                "r" | "reply" => match last_sender {
                    None => Input::Say(say::nobody_wrote_yet()),
                    Some(to) => address(to, text, partner),
                },
                other => Input::Say(say::unknown_command(&visible_str(other))),
            }
        }
        Some(('@', rest)) => {
            let quote = rest
                .chars()
                .next()
                .and_then(|first| QUOTES.iter().find(|(open, _)| *open == first));
            let (to, text) = match quote {
                // @"alice smith" text: a name with spaces.
                Some((open, close)) => match rest[open.len_utf8()..].split_once(*close) {
                    Some((to, text)) => (to, strip_separator(text)),
                    None => return Input::Say(say::usage_quoted_name()),
                },
                None => split_word(rest),
            };
            if to.is_empty() {
                return Input::Say(say::usage_at_name());
            }
            address(to, text, partner)
        }
        Some(('*', text)) => {
            let text = strip_separator(text);
            if text.is_empty() {
                return Input::Say(say::usage_room());
            }
            Input::Chat {
                to: ROOM.to_string(),
                text: text.to_string(),
            }
        }
        _ => match partner {
            Some(to) => Input::Chat {
                to: to.clone(),
                text: line.to_string(),
            },
            None => Input::Say(say::to_whom()),
        },
    }
}

/// `to` becomes the partner; `text`, if any, goes to them. A name no user can have
/// changes nothing.
fn address(to: &str, text: &str, partner: &mut Option<String>) -> Input {
    if to.len() > NAME_LEN {
        return Input::Say(say::name_too_long(&visible_str(to)));
    }
    *partner = Some(to.to_string());
    if text.is_empty() {
        return Input::Say(say::now_talking_to(&visible_str(to)));
    }
    Input::Chat {
        to: to.to_string(),
        text: text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(to: &str, text: &str) -> Input {
        Input::Chat {
            to: to.to_string(),
            text: text.to_string(),
        }
    }

    #[test]
    fn a_quoted_name_may_hold_spaces() {
        let mut partner = None;
        assert_eq!(
            parse_line("@\"alice smith\" hi there", &mut partner, None),
            chat("alice smith", "hi there")
        );
        assert_eq!(partner.as_deref(), Some("alice smith"));
        assert_eq!(
            parse_line("again", &mut partner, None),
            chat("alice smith", "again")
        );
        assert_eq!(parse_line("@bob hi", &mut partner, None), chat("bob", "hi"));
        assert_eq!(
            parse_line("@“alice smith”　你好", &mut partner, None),
            chat("alice smith", "你好")
        );
    }

    #[test]
    fn the_room_takes_star_with_or_without_a_space() {
        let mut partner = None;
        assert_eq!(parse_line("*hello", &mut partner, None), chat("*", "hello"));
        assert_eq!(
            parse_line("* hello", &mut partner, None),
            chat("*", "hello")
        );
        assert_eq!(
            parse_line("＊大家好", &mut partner, None),
            chat("*", "大家好")
        );
        assert_eq!(
            parse_line("＊　大家好", &mut partner, None),
            chat("*", "大家好")
        );
    }

    #[test]
    fn reply_goes_to_the_last_sender() {
        let mut partner = None;
        assert_eq!(
            parse_line("/r yes", &mut partner, Some("似末")),
            chat("似末", "yes")
        );
        assert_eq!(
            parse_line("／r　好的", &mut partner, Some("似末")),
            chat("似末", "好的")
        );
        assert!(matches!(
            parse_line("/r yes", &mut partner, None),
            Input::Say(_)
        ));
    }

    #[test]
    fn a_full_width_space_at_sign_and_slash_work_as_their_ascii_forms() {
        let mut partner = None;
        assert_eq!(
            parse_line("@玛卡巴卡　你好", &mut partner, None),
            chat("玛卡巴卡", "你好")
        );
        assert_eq!(partner.as_deref(), Some("玛卡巴卡"));
        assert_eq!(
            parse_line("＠玛卡巴卡 你好", &mut partner, None),
            chat("玛卡巴卡", "你好")
        );
        assert_eq!(
            parse_line("＠似末　在吗？　晚上见", &mut partner, None),
            chat("似末", "在吗？　晚上见"),
            "only the first separator splits"
        );
        assert_eq!(parse_line("／who", &mut partner, None), Input::Who);
        assert_eq!(parse_line("／quit", &mut partner, None), Input::Quit);
        assert_eq!(parse_line("　", &mut partner, None), Input::Nothing);
        assert!(
            matches!(
                parse_line("@玛卡巴卡玛卡巴卡 你好", &mut partner, None),
                Input::Say(_)
            ),
            "24 bytes: no user has that name"
        );
        assert_eq!(partner.as_deref(), Some("似末"), "the partner stays");
    }
}
