//! Chunking: a document becomes [`Chunk`]s, each with its source id and the byte range it covers, so that
//! `&text[chunk.start..chunk.end] == chunk.text` always holds. Four strategies ([`Chunker`]): fixed windows of
//! words with overlap, sentences packed up to a size, paragraphs packed up to a size, and Markdown sections (a
//! heading stays with its section; a long section is split by paragraphs and every piece keeps the heading).

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

use crate::error::{RagError, Result};

/// A piece of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// `source#n`: the source id and the chunk's 0-based position in it.
    pub id: String,
    /// The document's id (for files: the path relative to the indexed folder, with `/`).
    pub source: String,
    /// First byte in the document.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// `document[start..end]`.
    pub text: String,
    /// The Markdown heading path of the section this chunk belongs to (`"Install > Debian"`), if any.
    pub heading: Option<String>,
}

impl Chunk {
    /// The text to index and to show a model: the heading (when the chunk does not start with it) then the text.
    pub fn indexed_text(&self) -> String {
        match &self.heading {
            Some(h) if !self.text.trim_start().starts_with('#') => format!("{h}\n{}", self.text),
            _ => self.text.clone(),
        }
    }
}

/// How a document is cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Chunker {
    /// Windows of `size` words (Unicode words), each starting `size - overlap` words after the previous one.
    Tokens {
        /// Words per chunk (> 0).
        size: usize,
        /// Words shared by consecutive chunks (< size).
        overlap: usize,
    },
    /// Whole sentences (Unicode sentence boundaries) packed while the chunk stays within `max_bytes`.
    Sentences {
        /// Upper bound of a chunk in bytes (a single longer sentence is its own chunk).
        max_bytes: usize,
    },
    /// Whole paragraphs (separated by blank lines) packed while the chunk stays within `max_bytes`.
    Paragraphs {
        /// Upper bound of a chunk in bytes (a single longer paragraph is its own chunk).
        max_bytes: usize,
    },
    /// One chunk per Markdown section (ATX headings `#`…`######` outside code fences); a section longer than
    /// `max_bytes` is split by paragraphs, and every piece records the heading path.
    Markdown {
        /// Upper bound of a chunk in bytes before a section is split.
        max_bytes: usize,
    },
}

impl Default for Chunker {
    fn default() -> Self {
        Chunker::Markdown { max_bytes: 1500 }
    }
}

impl Chunker {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, message: &str| {
            Err(RagError::Param {
                name,
                message: message.to_string(),
            })
        };
        match *self {
            Chunker::Tokens { size: 0, .. } => bad("size", "must be > 0"),
            Chunker::Tokens { size, overlap } if overlap >= size => {
                bad("overlap", "must be < size")
            }
            Chunker::Sentences { max_bytes: 0 }
            | Chunker::Paragraphs { max_bytes: 0 }
            | Chunker::Markdown { max_bytes: 0 } => bad("max_bytes", "must be > 0"),
            _ => Ok(()),
        }
    }

    /// The chunks of `text`, whose id is `source`.
    pub fn chunk(&self, source: &str, text: &str) -> Result<Vec<Chunk>> {
        self.validate()?;
        let spans: Vec<(usize, usize, Option<String>)> = match *self {
            Chunker::Tokens { size, overlap } => token_windows(text, size, overlap)
                .into_iter()
                .map(|(s, e)| (s, e, None))
                .collect(),
            Chunker::Sentences { max_bytes } => {
                let units: Vec<(usize, usize)> = text
                    .split_sentence_bound_indices()
                    .filter_map(|(at, s)| trimmed(text, at, at + s.len()))
                    .collect();
                pack(&units, max_bytes)
                    .into_iter()
                    .map(|(s, e)| (s, e, None))
                    .collect()
            }
            Chunker::Paragraphs { max_bytes } => pack(&paragraphs(text, 0, text.len()), max_bytes)
                .into_iter()
                .map(|(s, e)| (s, e, None))
                .collect(),
            Chunker::Markdown { max_bytes } => markdown(text, max_bytes),
        };
        Ok(spans
            .into_iter()
            .enumerate()
            .map(|(n, (start, end, heading))| Chunk {
                id: format!("{source}#{n}"),
                source: source.to_string(),
                start,
                end,
                text: text[start..end].to_string(),
                heading,
            })
            .collect())
    }
}

/// `text[start..end]` without leading and trailing white space, or `None` when nothing is left.
fn trimmed(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = &text[start..end];
    let lead = s.len() - s.trim_start().len();
    let body = s.trim();
    (!body.is_empty()).then(|| (start + lead, start + lead + body.len()))
}

fn token_windows(text: &str, size: usize, overlap: usize) -> Vec<(usize, usize)> {
    let words: Vec<(usize, usize)> = text
        .unicode_word_indices()
        .map(|(at, w)| (at, at + w.len()))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let last = (i + size).min(words.len()) - 1;
        out.push((words[i].0, words[last].1));
        if last + 1 == words.len() {
            break;
        }
        i += size - overlap;
    }
    out
}

/// Paragraphs of `text[from..to]` (separated by lines that are blank), trimmed, as absolute byte ranges.
fn paragraphs(text: &str, from: usize, to: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut para_start = from;
    let mut at = from;
    for line in text[from..to].split_inclusive('\n') {
        if line.trim().is_empty() {
            out.extend(trimmed(text, para_start, at));
            para_start = at + line.len();
        }
        at += line.len();
    }
    out.extend(trimmed(text, para_start, to));
    out
}

/// Greedy packing of consecutive units while the span stays within `max_bytes`.
fn pack(units: &[(usize, usize)], max_bytes: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for &(s, e) in units {
        current = match current {
            Some((cs, _)) if e - cs <= max_bytes => Some((cs, e)),
            Some(done) => {
                out.push(done);
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    out.extend(current);
    out
}

/// An ATX heading line: its level and title.
fn heading(line: &str) -> Option<(usize, &str)> {
    let t = line.trim_end();
    let level = t.bytes().take_while(|&b| b == b'#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &t[level..];
    (rest.is_empty() || rest.starts_with(' '))
        .then(|| (level, rest.trim().trim_end_matches('#').trim()))
}

fn markdown(text: &str, max_bytes: usize) -> Vec<(usize, usize, Option<String>)> {
    // Sections: (start, end, heading path).
    let mut sections: Vec<(usize, usize, Option<String>)> = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut start = 0;
    let mut current: Option<String> = None;
    let mut fence: Option<&str> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let trimmed_line = line.trim_start();
        if let Some(f) = fence {
            if trimmed_line.starts_with(f) {
                fence = None;
            }
        } else if trimmed_line.starts_with("```") || trimmed_line.starts_with("~~~") {
            fence = Some(&trimmed_line[..3]);
        } else if let Some((level, title)) = heading(line) {
            sections.push((start, at, current.clone()));
            path.retain(|(l, _)| *l < level);
            path.push((level, title.to_string()));
            current = Some(
                path.iter()
                    .map(|(_, t)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(" > "),
            );
            start = at;
        }
        at += line.len();
    }
    sections.push((start, text.len(), current));
    let mut out = Vec::new();
    for (s, e, h) in sections {
        let Some((s, e)) = trimmed(text, s, e) else {
            continue;
        };
        if e - s <= max_bytes {
            out.push((s, e, h));
        } else {
            out.extend(
                pack(&paragraphs(text, s, e), max_bytes)
                    .into_iter()
                    .map(|(a, b)| (a, b, h.clone())),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_offsets(text: &str, chunks: &[Chunk]) {
        for c in chunks {
            assert_eq!(&text[c.start..c.end], c.text, "chunk {}", c.id);
        }
    }

    #[test]
    fn token_windows_overlap_and_cover_every_word() -> Result<()> {
        let text = "one two three four five six seven";
        let chunks = Chunker::Tokens {
            size: 3,
            overlap: 1,
        }
        .chunk("d", text)?;
        check_offsets(text, &chunks);
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            ["one two three", "three four five", "five six seven"]
        );
        assert_eq!(chunks[1].id, "d#1");
        assert!(
            Chunker::Tokens {
                size: 2,
                overlap: 2
            }
            .chunk("d", text)
            .is_err()
        );
        Ok(())
    }

    #[test]
    fn sentences_and_paragraphs_pack_within_the_limit() -> Result<()> {
        let text = "  First one. Second one here!  Third?\n\nNew para.\n \nLast para is here.\n";
        let s = Chunker::Sentences { max_bytes: 30 }.chunk("t", text)?;
        check_offsets(text, &s);
        let texts: Vec<&str> = s.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "First one. Second one here!",
                "Third?\n\nNew para.",
                "Last para is here."
            ]
        );
        let p = Chunker::Paragraphs { max_bytes: 10 }.chunk("t", text)?;
        check_offsets(text, &p);
        let texts: Vec<&str> = p.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "First one. Second one here!  Third?",
                "New para.",
                "Last para is here."
            ]
        );
        Ok(())
    }

    #[test]
    fn markdown_keeps_headings_with_their_sections_and_ignores_code_fences() -> Result<()> {
        let text = "Intro text.\n\n# Install\nRun it.\n```\n# not a heading\n```\n## On Débian\nUse apt.\n\nMore apt.\n# Use\nGo.\n";
        let chunks = Chunker::Markdown { max_bytes: 1000 }.chunk("m.md", text)?;
        check_offsets(text, &chunks);
        let got: Vec<(&str, Option<&str>)> = chunks
            .iter()
            .map(|c| (c.text.as_str(), c.heading.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("Intro text.", None),
                (
                    "# Install\nRun it.\n```\n# not a heading\n```",
                    Some("Install")
                ),
                (
                    "## On Débian\nUse apt.\n\nMore apt.",
                    Some("Install > On Débian")
                ),
                ("# Use\nGo.", Some("Use")),
            ]
        );
        let small = Chunker::Markdown { max_bytes: 22 }.chunk("m.md", text)?;
        check_offsets(text, &small);
        let split: Vec<&Chunk> = small
            .iter()
            .filter(|c| c.heading.as_deref() == Some("Install > On Débian"))
            .collect();
        assert_eq!(split.len(), 2);
        assert_eq!(split[1].text, "More apt.");
        assert_eq!(split[1].indexed_text(), "Install > On Débian\nMore apt.");
        Ok(())
    }
}
