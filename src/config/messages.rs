//! Where a value came from (a line of the file, a `--set` override, or the
//! default), and the wording of what is wrong with it: every message names
//! the place and suggests the name that was probably meant.

use std::collections::HashMap;
use std::fmt::Display;
use std::ops::Range;

use toml_edit::{ImDocument, Item};

/// Finds where a key's value came from: a line of the file, a `--set`
/// override, or nowhere (the default was used).
pub(super) struct Locator<'a> {
    pub(super) origin: &'a str,
    pub(super) text: &'a str,
    /// The file as written; its spans give line numbers.
    pub(super) original: ImDocument<&'a str>,
    /// Dotted key -> the override as typed; the last one for a key wins.
    pub(super) overrides: HashMap<String, String>,
}

impl Locator<'_> {
    /// `FILE:LINE: key `k`: what`, `FILE: --set k=v: key `k`: what`, or
    /// `FILE: key `k` (default): what`. `key` is `section` or `section.key`.
    pub(super) fn error(&self, key: &str, what: impl Display) -> String {
        let origin = self.origin;
        if let Some(raw) = self.overrides.get(key) {
            format!("{origin}: --set {raw}: key `{key}`: {what}")
        } else if let Some(line) = self.line(key) {
            format!("{origin}:{line}: key `{key}`: {what}")
        } else {
            format!("{origin}: key `{key}` (default): {what}")
        }
    }

    /// `FILE:LINE` of `key` in the file as written, or `FILE` when absent.
    pub(super) fn at(&self, key: &str) -> String {
        match self.line(key) {
            Some(line) => format!("{}:{line}", self.origin),
            None => self.origin.to_owned(),
        }
    }

    /// 1-based line of `key` (where the key is written, else its value).
    fn line(&self, key: &str) -> Option<usize> {
        let (section, field) = match key.split_once('.') {
            Some((s, f)) => (s, Some(f)),
            None => (key, None),
        };
        let (mut k, mut item) = self.original.as_table().get_key_value(section)?;
        if let Some(field) = field {
            (k, item) = item.as_table_like()?.get_key_value(field)?;
        }
        let span = k.span().or_else(|| item.span())?;
        Some(line_of(self.text, span.start))
    }

    /// A serde error located by the key whose value holds the error's span in
    /// the resolved document (the file with overrides applied).
    pub(super) fn serde_error(&self, e: &toml::de::Error, resolved: &str) -> String {
        let what = rephrase(e.message());
        match e.span().and_then(|s| key_at(resolved, s.start)) {
            Some(key) => self.error(&key, what),
            None => format!("{}: {what}", self.origin),
        }
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted key (`section.key`, or `section` for a non-table section) whose
/// value spans `offset` in `text`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let doc = ImDocument::parse(text).ok()?;
    let holds = |item: &Item| {
        item.span()
            .is_some_and(|s: Range<usize>| s.contains(&offset))
    };
    for (section, item) in doc.iter() {
        if let Some(table) = item.as_table_like() {
            if let Some((key, _)) = table.iter().find(|(_, value)| holds(value)) {
                return Some(format!("{section}.{key}"));
            }
        }
        if holds(item) {
            return Some(section.to_owned());
        }
    }
    None
}

/// Serde's wording, rephrased as "expected X, found Y" in TOML terms, with a
/// suggestion for a misspelt enum string.
fn rephrase(message: &str) -> String {
    let message = message.trim_end();
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        // "unknown variant `x`, expected `a` or `b`" / "expected one of `a`, `b`, `c`"
        let quoted: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        if let Some((found, variants)) = quoted.split_first() {
            let expected = one_of(variants.iter().map(|v| format!("\"{v}\"")).collect());
            let hint = nearest(found, variants.iter().copied())
                .map_or(String::new(), |v| format!(" (did you mean \"{v}\"?)"));
            return format!("expected {expected}, found \"{found}\"{hint}");
        }
    }
    if message == "wanted string or table" {
        // toml's wording for a non-string where an enum string belongs.
        return "expected a string (one of the allowed names)".to_owned();
    }
    let body = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    match body.and_then(|b| b.rsplit_once(", expected ")) {
        Some((found, expected)) => {
            let expected = match expected {
                "f64" => "a number",
                "usize" | "u64" => "a non-negative integer",
                "a sequence" => "an array",
                "a boolean" => "true or false",
                "path string" => "a string",
                other => other,
            };
            format!("expected {expected}, found {found}")
        }
        None => message.to_owned(),
    }
}

/// `a`, `a or b`, `a, b or c`.
fn one_of(mut items: Vec<String>) -> String {
    match items.pop() {
        None => "nothing".to_owned(),
        Some(last) if items.is_empty() => last,
        Some(last) => format!("{} or {last}", items.join(", ")),
    }
}

/// The candidate closest to `word`, if close enough to be the intended one.
/// Jaro-Winkler favours shared prefixes, which is how keys get misspelt
/// (`learning_rat`, `batchsize`); 0.8 rejects unrelated names.
pub(crate) fn nearest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .map(|c| (strsim::jaro_winkler(&word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `, did you mean `model.h`?` or, with nothing close, the valid names.
pub(super) fn did_you_mean(word: &str, candidates: &[&str], prefix: &str) -> String {
    match nearest(word, candidates.iter().copied()) {
        Some(c) => format!(", did you mean `{prefix}{c}`?"),
        None => {
            let all: Vec<String> = candidates
                .iter()
                .map(|c| format!("`{prefix}{c}`"))
                .collect();
            format!(" (valid: {})", all.join(", "))
        }
    }
}

/// The keys of a schema table, as candidates for [`did_you_mean`].
pub(super) fn names(table: &toml::Table) -> Vec<&str> {
    table.keys().map(String::as_str).collect()
}
