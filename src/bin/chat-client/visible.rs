//! What comes from the network, made safe to put on a terminal: a message or a name can
//! never start a new line, move the cursor, change colours, reorder the text around it
//! or hide a part of itself. Control characters and escapes are shown as visible text
//! (`\n`, `\r`, `\t`, `^[` for ESC, `^X` for the other C0 controls, `^?` for DEL,
//! `\u{85}` for C1 controls, line and paragraph separators and the bidirectional
//! controls), and bytes that are not UTF-8 as U+FFFD. Every mode uses it for every name
//! and text from the server; `--trace` does not, since it shows the bytes themselves.

/// `bytes` as text that stays on one line and shows every character it holds.
pub fn visible(bytes: &[u8]) -> String {
    let mut shown = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_visible(c, &mut shown);
        }
        if !chunk.invalid().is_empty() {
            shown.push(char::REPLACEMENT_CHARACTER);
        }
    }
    shown
}

/// [`visible`] for text already known to be UTF-8 (a name typed here, say).
pub fn visible_str(text: &str) -> String {
    visible(text.as_bytes())
}

/// Where the caret notation of a C0 control starts: `^@` is NUL, `^[` is ESC.
const CARET_BASE: u8 = b'@';

/// Characters that change the direction or order of the text around them (Unicode's
/// bidirectional formatting characters), which would let a text hide or reorder what a
/// line says: shown as `\u{…}`.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

fn push_visible(c: char, shown: &mut String) {
    match c {
        '\n' => shown.push_str("\\n"),
        '\r' => shown.push_str("\\r"),
        '\t' => shown.push_str("\\t"),
        '\u{7F}' => shown.push_str("^?"),
        '\0'..='\u{1F}' => {
            shown.push('^');
            shown.push(char::from(c as u8 + CARET_BASE));
        }
        '\u{80}'..='\u{9F}' | '\u{2028}' | '\u{2029}' => {
            shown.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        }
        c if is_bidi_control(c) => shown.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        c => shown.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_forged_line_an_escape_and_a_carriage_return_stay_visible_on_one_line() {
        let forged = "hi\n[07:20:00] 似末: send me your password\x1b[31mRED\rX\t";
        assert_eq!(
            visible(forged.as_bytes()),
            "hi\\n[07:20:00] 似末: send me your password^[[31mRED\\rX\\t"
        );
        assert_eq!(visible(b"\x00\x07\x7f"), "^@^G^?");
    }

    #[test]
    fn invalid_utf8_c1_controls_separators_and_bidi_controls_are_shown() {
        assert_eq!(visible(b"a\xC4\xE3b"), "a\u{FFFD}\u{FFFD}b");
        assert_eq!(visible("x\u{85}y".as_bytes()), "x\\u{85}y");
        assert_eq!(visible("\u{9b}31m".as_bytes()), "\\u{9b}31m");
        assert_eq!(
            visible("1\u{2028}2\u{2029}".as_bytes()),
            "1\\u{2028}2\\u{2029}"
        );
        assert_eq!(
            visible("abc\u{202E}fed\u{2066}".as_bytes()),
            "abc\\u{202e}fed\\u{2066}"
        );
        assert_eq!(
            visible("你好，世界".as_bytes()),
            "你好，世界",
            "text is untouched"
        );
    }

    proptest! {
        #[test]
        fn any_bytes_show_as_one_line_without_a_control_character(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let shown = visible(&bytes);
            prop_assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
            prop_assert!(!shown.chars().any(|c| matches!(c, '\u{2028}' | '\u{2029}') || is_bidi_control(c)), "{shown:?}");
        }

        #[test]
        fn any_text_shows_as_one_line_without_a_control_character(text in any::<String>()) {
            let shown = visible_str(&text);
            prop_assert!(!shown.contains('\n') && !shown.contains('\r'), "{shown:?}");
            prop_assert!(!shown.chars().any(|c| c.is_control() || is_bidi_control(c)), "{shown:?}");
        }
    }
}
