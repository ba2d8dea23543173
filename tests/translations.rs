//! The Chinese documents say all that the English ones say, in the same shape: many of
//! the server's users are readers of the Chinese article it replaces, and a translation
//! that falls behind misleads them quietly. For each pair of documents the tests
//! compare the outline (`##` and `###` sections, in order), the tables (how many in
//! each section, their rows and columns) and the fenced code blocks (how many in each
//! section, and the commands and program output in them, which are not translated).
//! They also keep Chinese prose in full-width punctuation.
//!
//! What may differ inside a ```sh or ```text block:
//!
//! - In a ```sh block, comments (from a `#` at the start of a line or after a space, to
//!   the end of the line) may be translated; the commands may not.
//! - The blocks in [`TRANSLATED_BLOCKS`], each with its reason.
//!
//! Every other ```sh or ```text block is identical byte for byte. Blocks in other
//! languages (```mermaid diagrams) are only counted: their labels are prose.

use std::fs;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// How one ```sh or ```text block of a Chinese document must match its English one.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Match {
    /// Byte for byte.
    Exact,
    /// Byte for byte once `#` comments (and the spaces before them) are removed.
    OutsideComments,
    /// Line by line, up to the first run of two spaces: a transcript whose first column
    /// is what the user types (identical) and whose second is a note (translated).
    FirstColumn,
    /// A screen of `chat-client` captured in each document's language: line by line,
    /// the same kind of line (a message with its time, a prompt and what was typed, a
    /// status line), whatever its words.
    Screen,
}

/// The ```text blocks that may differ, named by the English document and the start of
/// the English block's first line.
const TRANSLATED_BLOCKS: &[(&str, &str, Match, &str)] = &[
    (
        "README.md",
        "@玛卡巴卡 你好",
        Match::FirstColumn,
        "\"Try it\": what 似末 types stays, the notes beside it are translated",
    ),
    (
        "README.md",
        "logged in as 似末 on",
        Match::Screen,
        "\"Try it\": 似末's screen, captured in the language of each README",
    ),
    (
        "README.md",
        "logged in as 玛卡巴卡 on",
        Match::Screen,
        "\"Try it\": a message arriving mid-line, captured in the language of each README",
    ),
    (
        "README.md",
        "# one account a line",
        Match::OutsideComments,
        "\"The users file\": the example's comment line is translated, the accounts are not",
    ),
];

/// The pairs kept in step: the English document, its Chinese version, and whether
/// tables and code blocks are compared too (or only the outline).
const PAIRS: &[(&str, &str, Depth)] = &[
    ("README.md", "README.zh-CN.md", Depth::Everything),
    (
        "docs/PROTOCOL.md",
        "docs/PROTOCOL.zh-CN.md",
        Depth::Everything,
    ),
    ("docs/TOUR.md", "docs/TOUR.zh-CN.md", Depth::Everything),
];

/// The Chinese documents whose prose must use full-width punctuation.
const FULL_WIDTH_DOCUMENTS: &[&str] = &[
    "README.zh-CN.md",
    "docs/PROTOCOL.zh-CN.md",
    "docs/TOUR.zh-CN.md",
];

#[derive(Clone, Copy, PartialEq)]
enum Depth {
    /// Headings only.
    #[allow(dead_code)]
    Outline,
    /// Headings, tables and code blocks.
    Everything,
}

/// A fenced code block.
struct Block {
    /// What follows the opening fence: `sh`, `text`, `mermaid`, or nothing.
    lang: String,
    /// Its lines, without the fences.
    body: Vec<String>,
    /// The line of its opening fence, counting from 1.
    line: usize,
}

/// A table.
struct Table {
    /// Rows, the header row included and the `|---|` line not.
    rows: usize,
    /// Columns, as the `|---|` line has them.
    columns: usize,
    line: usize,
}

/// A heading and what lies between it and the next one.
struct Section {
    /// 1 for `#`, 2 for `##`, 3 for `###`; 0 for what comes before the first heading.
    level: usize,
    title: String,
    line: usize,
    tables: Vec<Table>,
    blocks: Vec<Block>,
}

fn read(path: &str) -> String {
    fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// The sections of a Markdown document, with their tables and fenced code blocks.
fn sections(text: &str) -> Vec<Section> {
    let mut sections = vec![Section {
        level: 0,
        title: "(before the first heading)".into(),
        line: 1,
        tables: Vec::new(),
        blocks: Vec::new(),
    }];
    let mut fence: Option<Block> = None;
    let mut previous_was_table = false;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let section = sections.last_mut().unwrap();
        if let Some(block) = fence.as_mut() {
            if line.trim_start().starts_with("```") {
                section.blocks.push(fence.take().unwrap());
            } else {
                block.body.push(line.to_string());
            }
            continue;
        }
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            fence = Some(Block {
                lang: lang.trim().to_string(),
                body: Vec::new(),
                line: number,
            });
            previous_was_table = false;
            continue;
        }
        let hashes = line.bytes().take_while(|&b| b == b'#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            sections.push(Section {
                level: hashes,
                title: line[hashes..].trim().to_string(),
                line: number,
                tables: Vec::new(),
                blocks: Vec::new(),
            });
            previous_was_table = false;
            continue;
        }
        let is_table = line.starts_with('|');
        if is_table {
            if !previous_was_table {
                section.tables.push(Table {
                    rows: 0,
                    columns: 0,
                    line: number,
                });
            }
            let table = section.tables.last_mut().unwrap();
            if is_delimiter_row(line) {
                table.columns = line.trim().trim_matches('|').split('|').count();
            } else {
                table.rows += 1;
            }
        }
        previous_was_table = is_table;
    }
    assert!(fence.is_none(), "a code block is never closed");
    sections
}

/// `|---|---|`, the line under a table's header.
fn is_delimiter_row(line: &str) -> bool {
    line.trim()
        .bytes()
        .all(|b| matches!(b, b'|' | b'-' | b':' | b' '))
}

/// A ```sh line without its comment, and without the spaces before it.
fn without_comment(line: &str) -> &str {
    let mut cut = line.len();
    for (at, _) in line.match_indices('#') {
        if at == 0 || line[..at].ends_with([' ', '\t']) {
            cut = at;
            break;
        }
    }
    line[..cut].trim_end()
}

/// A transcript line's first column: up to the first run of two spaces.
fn first_column(line: &str) -> &str {
    line.split("  ").next().unwrap_or("").trim_end()
}

/// Where `section` is, for a failure message: `README.zh-CN.md, line 12, section «试一试»`.
/// What kind of line of `chat-client`'s screen `line` is, whatever its language.
fn screen_line_kind(line: &str) -> &'static str {
    if line.starts_with('[') {
        "a message, with its time"
    } else if line.starts_with('>') || line.contains("> ") || line.ends_with('>') {
        "the prompt, and what was typed"
    } else {
        "a status line"
    }
}

fn place(path: &str, section: &Section) -> String {
    format!("{path}, line {}, section «{}»", section.line, section.title)
}

/// Everything that differs between an English document and its Chinese version, one
/// line each, naming the file, the section and the difference.
fn differences(english_path: &str, chinese_path: &str, depth: Depth) -> Vec<String> {
    let english = sections(&read(english_path));
    let chinese = sections(&read(chinese_path));
    let mut found = Vec::new();

    let outline = |sections: &[Section]| -> Vec<usize> {
        sections
            .iter()
            .map(|s| s.level)
            .filter(|level| (2..=3).contains(level))
            .collect()
    };
    if outline(&english) != outline(&chinese) {
        // Name the first heading where the two part.
        let english_headings: Vec<&Section> = english
            .iter()
            .filter(|s| (2..=3).contains(&s.level))
            .collect();
        let chinese_headings: Vec<&Section> = chinese
            .iter()
            .filter(|s| (2..=3).contains(&s.level))
            .collect();
        let at = english_headings
            .iter()
            .zip(&chinese_headings)
            .position(|(e, c)| e.level != c.level)
            .unwrap_or(english_headings.len().min(chinese_headings.len()));
        let describe = |path: &str, heading: Option<&&Section>| match heading {
            Some(s) => format!(
                "{} «{}» ({path}, line {})",
                "#".repeat(s.level),
                s.title,
                s.line
            ),
            None => format!("the end of {path}"),
        };
        found.push(format!(
            "{chinese_path} has {} `##`/`###` sections, {english_path} has {}; they part at \
             heading {}: {} against {}",
            chinese_headings.len(),
            english_headings.len(),
            at + 1,
            describe(chinese_path, chinese_headings.get(at)),
            describe(english_path, english_headings.get(at)),
        ));
        return found;
    }
    if depth == Depth::Outline {
        return found;
    }

    for (e, c) in english.iter().zip(&chinese) {
        let here = place(chinese_path, c);
        let there = format!("«{}» of {english_path}", e.title);
        if e.tables.len() != c.tables.len() {
            found.push(format!(
                "{here}: {} tables, against {} in {there}",
                c.tables.len(),
                e.tables.len()
            ));
        } else {
            for (n, (et, ct)) in e.tables.iter().zip(&c.tables).enumerate() {
                if (et.rows, et.columns) != (ct.rows, ct.columns) {
                    found.push(format!(
                        "{here}: table {} (line {}) has {} rows and {} columns, against {} rows \
                         and {} columns in {there} (line {})",
                        n + 1,
                        ct.line,
                        ct.rows,
                        ct.columns,
                        et.rows,
                        et.columns,
                        et.line
                    ));
                }
            }
        }
        if e.blocks.len() != c.blocks.len() {
            found.push(format!(
                "{here}: {} code blocks, against {} in {there}",
                c.blocks.len(),
                e.blocks.len()
            ));
            continue;
        }
        for (n, (eb, cb)) in e.blocks.iter().zip(&c.blocks).enumerate() {
            let which = format!("{here}: code block {} (line {})", n + 1, cb.line);
            if eb.lang != cb.lang {
                found.push(format!(
                    "{which} is ```{}, the one in {there} (line {}) ```{}",
                    cb.lang, eb.line, eb.lang
                ));
                continue;
            }
            if !matches!(eb.lang.as_str(), "sh" | "text") {
                continue;
            }
            let first = eb.body.first().map(String::as_str).unwrap_or("");
            let rule = TRANSLATED_BLOCKS
                .iter()
                .find(|(path, start, _, _)| *path == english_path && first.starts_with(start))
                .map(|&(_, _, rule, _)| rule)
                .unwrap_or(if eb.lang == "sh" {
                    Match::OutsideComments
                } else {
                    Match::Exact
                });
            let compared = |line: &str| -> String {
                match rule {
                    Match::Exact => line.to_string(),
                    Match::OutsideComments => without_comment(line).to_string(),
                    Match::FirstColumn => first_column(line).to_string(),
                    Match::Screen => screen_line_kind(line).to_string(),
                }
            };
            if eb.body.len() != cb.body.len() {
                found.push(format!(
                    "{which} has {} lines, the one in {there} (line {}) {}",
                    cb.body.len(),
                    eb.line,
                    eb.body.len()
                ));
                continue;
            }
            for (k, (el, cl)) in eb.body.iter().zip(&cb.body).enumerate() {
                if compared(el) != compared(cl) {
                    found.push(format!(
                        "{which}, its line {} differs ({rule:?}) from {there}:\n    \
                         {chinese_path}: {cl:?}\n    {english_path}: {el:?}",
                        k + 1
                    ));
                    break;
                }
            }
        }
    }
    found
}

#[test]
fn the_chinese_documents_have_the_english_ones_sections_tables_and_code_blocks() {
    let mut found = Vec::new();
    for &(english, chinese, depth) in PAIRS {
        found.extend(differences(english, chinese, depth));
    }
    assert!(
        found.is_empty(),
        "the Chinese documents are out of step with the English ones:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_translated_block_exception_still_names_a_block() {
    for &(path, start, _, why) in TRANSLATED_BLOCKS {
        let count = sections(&read(path))
            .iter()
            .flat_map(|s| &s.blocks)
            .filter(|b| b.body.first().is_some_and(|line| line.starts_with(start)))
            .count();
        assert_eq!(
            count, 1,
            "TRANSLATED_BLOCKS names a block of {path} starting {start:?} ({why}), \
             which {path} has {count} times: remove or fix the exception"
        );
    }
}

/// A character of Chinese text: an ideograph, or CJK or full-width punctuation.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3000}'..='\u{303F}'     // CJK punctuation: 、。《》「」
        | '\u{3400}'..='\u{4DBF}'   // ideographs, extension A
        | '\u{4E00}'..='\u{9FFF}'   // ideographs
        | '\u{FF00}'..='\u{FFEF}') // full-width forms: ，：；？（）！
}

/// The prose of a Markdown document, line by line (numbered from 1), with what is not
/// prose blanked out: fenced code blocks, inline code (which may run over a line break,
/// but not over a blank line), link targets `](...)`, and book titles `《...》`, which
/// are quoted as their authors wrote them. Each kept piece is a separate string, so
/// that characters on either side of a removed piece are not taken for neighbours.
fn prose_pieces(text: &str) -> Vec<(usize, String, Vec<String>)> {
    let mut lines = Vec::new();
    let mut in_fence = false;
    let mut in_code = false;
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if line.trim().is_empty() {
            in_code = false;
            continue;
        }
        let mut pieces = Vec::new();
        let mut piece = String::new();
        let mut in_title = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '`' {
                in_code = !in_code;
                pieces.push(std::mem::take(&mut piece));
                continue;
            }
            if in_code {
                continue;
            }
            if in_title {
                in_title = c != '》';
                continue;
            }
            if c == '《' {
                in_title = true;
                pieces.push(std::mem::take(&mut piece));
                continue;
            }
            if c == ']' && chars.peek() == Some(&'(') {
                // A link target runs to the matching ')'.
                for target in chars.by_ref() {
                    if target == ')' {
                        break;
                    }
                }
                pieces.push(std::mem::take(&mut piece));
                continue;
            }
            piece.push(c);
        }
        pieces.push(piece);
        pieces.retain(|p| !p.is_empty());
        lines.push((index + 1, line.to_string(), pieces));
    }
    lines
}

/// Half-width `,` `;` `:` `?` `(` `)` right next to a Chinese character, in prose.
fn half_width_punctuation(path: &str) -> Vec<String> {
    let text = read(path);
    let mut section = String::from("(before the first heading)");
    let mut found = Vec::new();
    for (number, line, pieces) in prose_pieces(&text) {
        if line.starts_with('#') {
            section = line.trim_start_matches('#').trim().to_string();
        }
        for piece in pieces {
            let chars: Vec<char> = piece.chars().collect();
            for (at, &c) in chars.iter().enumerate() {
                if !matches!(c, ',' | ';' | ':' | '?' | '(' | ')') {
                    continue;
                }
                let before = at.checked_sub(1).map(|i| chars[i]);
                let after = chars.get(at + 1).copied();
                if before.is_some_and(is_cjk) || after.is_some_and(is_cjk) {
                    found.push(format!(
                        "{path}, line {number}, section «{section}»: half-width {c:?} next to \
                         Chinese text in {:?}",
                        chars[at.saturating_sub(6)..(at + 7).min(chars.len())]
                            .iter()
                            .collect::<String>()
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn chinese_prose_uses_full_width_punctuation() {
    let found: Vec<String> = FULL_WIDTH_DOCUMENTS
        .iter()
        .flat_map(|path| half_width_punctuation(path))
        .collect();
    assert!(
        found.is_empty(),
        "Chinese prose takes full-width punctuation (，；：？（）), code and identifiers \
         excepted:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_punctuation_check_sees_prose_and_only_prose() {
    let text = "中文,句子\n`代码,里` 和 [链接](a,中) 与《标题?书》\n```text\n输出,行\n```\n跨行 `代码\n,里`。\n";
    let found: Vec<String> = prose_pieces(text)
        .into_iter()
        .flat_map(|(_, _, pieces)| pieces)
        .collect();
    assert_eq!(found, ["中文,句子", " 和 [链接", " 与", "跨行 ", "。"]);
}

#[test]
fn the_outline_counts_sections_tables_rows_and_blocks() {
    let text = "# T\n\nintro\n\n## A\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```sh\nls  # list\n```\n\n### B\n\n```text\n# not a heading\n```\n";
    let sections = sections(text);
    let shape: Vec<(usize, usize, usize)> = sections
        .iter()
        .map(|s| (s.level, s.tables.len(), s.blocks.len()))
        .collect();
    assert_eq!(shape, [(0, 0, 0), (1, 0, 0), (2, 1, 1), (3, 0, 1)]);
    assert_eq!(
        (sections[2].tables[0].rows, sections[2].tables[0].columns),
        (2, 2)
    );
    assert_eq!(without_comment(&sections[2].blocks[0].body[0]), "ls");
    assert_eq!(
        first_column("@1001 are you there?  1001 is offline"),
        "@1001 are you there?"
    );
}

/// The Chinese sentences of `chat-client` (src/bin/chat-client/say.rs): every string
/// literal holding Chinese, with half-width `,` `;` `:` `?` `(` `)` next to a Chinese
/// character reported, as in the documents.
#[test]
fn the_clients_chinese_sentences_use_full_width_punctuation() {
    let path = "src/bin/chat-client/say.rs";
    let source = read(path);
    let mut found = Vec::new();
    for (number, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for literal in code.split('"').skip(1).step_by(2) {
            if !literal.chars().any(is_cjk) {
                continue;
            }
            let chars: Vec<char> = literal.chars().collect();
            for (at, &c) in chars.iter().enumerate() {
                let before = at.checked_sub(1).map(|i| chars[i]);
                let after = chars.get(at + 1).copied();
                if matches!(c, ',' | ';' | ':' | '?' | '(' | ')')
                    && (before.is_some_and(is_cjk) || after.is_some_and(is_cjk))
                {
                    found.push(format!("{path}, line {}: {literal:?}", number + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the client's Chinese takes full-width punctuation (，；：？（）):\n{}",
        found.join("\n")
    );
}
