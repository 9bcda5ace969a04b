//! The text analyzer shared by indexing and querying: Unicode word split (UAX #29), lower-casing, optional stop
//! words and optional Snowball stemming.

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

/// English stop words (the classic Lucene/Snowball short list: articles, auxiliaries, pronouns, prepositions).
pub const ENGLISH_STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with", "i", "me", "my", "we", "our", "you", "your", "he",
    "she", "him", "her", "its", "them", "what", "which", "who", "whom", "am", "been", "being",
    "have", "has", "had", "do", "does", "did", "so", "than", "too", "very", "can",
];

/// How text becomes terms. The defaults: lower-case, English stop words removed, English Snowball stemming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzerConfig {
    /// Lower-case every word (Unicode-aware).
    pub lowercase: bool,
    /// Drop [`ENGLISH_STOP_WORDS`].
    pub stop_words: bool,
    /// Reduce words to their stem with the English Snowball (Porter 2) stemmer.
    pub stem: bool,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            lowercase: true,
            stop_words: true,
            stem: true,
        }
    }
}

/// A configured analyzer: text → terms.
pub struct Analyzer {
    config: AnalyzerConfig,
    stemmer: Option<rust_stemmers::Stemmer>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("config", &self.config)
            .finish()
    }
}

impl Analyzer {
    /// An analyzer with `config`.
    pub fn new(config: AnalyzerConfig) -> Analyzer {
        let stemmer = config
            .stem
            .then(|| rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English));
        Analyzer { config, stemmer }
    }

    /// The configuration.
    pub fn config(&self) -> &AnalyzerConfig {
        &self.config
    }

    /// The terms of `text`, in order (repeats kept).
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for word in text.unicode_words() {
            let word = if self.config.lowercase {
                word.to_lowercase()
            } else {
                word.to_string()
            };
            if self.config.stop_words && ENGLISH_STOP_WORDS.contains(&word.as_str()) {
                continue;
            }
            match &self.stemmer {
                Some(s) => out.push(s.stem(&word).into_owned()),
                None => out.push(word),
            }
        }
        out
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new(AnalyzerConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_unicode_words_lowercases_stems_and_drops_stop_words() {
        let a = Analyzer::default();
        assert_eq!(
            a.terms("The Cats were RUNNING, naïvely: l'été?"),
            ["cat", "were", "run", "naïv", "l'été"]
        );
        let plain = Analyzer::new(AnalyzerConfig {
            lowercase: false,
            stop_words: false,
            stem: false,
        });
        assert_eq!(
            plain.terms("The Cats, 3.5 kg"),
            ["The", "Cats", "3.5", "kg"]
        );
    }
}
