//! Loading an experiment: the four stages of [`crate::config`]'s module doc,
//! the `--set` overrides and the document's shape.

use std::collections::HashMap;
use std::path::Path;

use toml_edit::{DocumentMut, ImDocument, Item};

use super::messages::{did_you_mean, line_of, names, Locator};
use super::schema::{schema, Config, REQUIRED};
use crate::error::Failure;

impl Config {
    /// Parse the file at `path`, apply `--set key=value` overrides, validate.
    /// Every error is a [`Failure::Config`] naming the file, line and key.
    pub fn load(path: &Path, overrides: &[String]) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Config(format!(
                "cannot read experiment file {}: {e}",
                path.display()
            ))
        })?;
        Config::parse(&text, &path.display().to_string(), overrides)
    }

    /// Same as [`Config::load`] from a string; `origin` is what messages call
    /// the file.
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> anyhow::Result<Config> {
        parse_config(text, origin, overrides).map_err(|msg| Failure::Config(msg).into())
    }
}

/// `text` as a TOML document, or the message naming `origin`, the line and
/// what is malformed.
pub(crate) fn parse_toml<'a>(text: &'a str, origin: &str) -> Result<ImDocument<&'a str>, String> {
    ImDocument::parse(text).map_err(|e| {
        let line = e
            .span()
            .map_or(String::new(), |s| format!(":{}", line_of(text, s.start)));
        let message = e.message().trim_end().replace('\n', "; ");
        format!("{origin}{line}: malformed TOML: {message}")
    })
}

/// The four stages of [`crate::config`]'s module doc; `Err` is the finished
/// message.
fn parse_config(text: &str, origin: &str, overrides: &[String]) -> Result<Config, String> {
    let original = parse_toml(text, origin)?;
    let mut doc = original.clone().into_mut();
    let mut loc = Locator {
        origin,
        text,
        original,
        overrides: HashMap::new(),
    };
    for raw in overrides {
        let key =
            apply_override(&mut doc, raw).map_err(|why| format!("{origin}: --set {raw}: {why}"))?;
        loc.overrides.insert(key, raw.clone());
    }

    all_ok(check_shape(&doc, &loc))?;
    let resolved = doc.to_string();
    let config: Config = toml::from_str(&resolved).map_err(|e| loc.serde_error(&e, &resolved))?;
    all_ok(config.validate(&loc))?;
    Ok(config)
}

/// All messages at once, so one edit can fix every problem.
fn all_ok(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Applies one `section.key=value` override to `doc`, creating the section if
/// absent; returns the dotted key. `Err` says what is wrong with it.
fn apply_override(doc: &mut DocumentMut, raw: &str) -> Result<String, String> {
    let (path, text) = raw
        .split_once('=')
        .ok_or("malformed override, expected section.key=value (no `=`)")?;
    let path = path.trim();
    let (section, key) = path
        .split_once('.')
        .filter(|(s, k)| !s.is_empty() && !k.is_empty() && !k.contains('.'))
        .ok_or_else(|| {
            format!("malformed override, expected section.key=value, found key `{path}`")
        })?;

    let schema = schema();
    let Some(keys) = schema.get(section).and_then(toml::Value::as_table) else {
        let hint = did_you_mean(section, &names(schema), "");
        return Err(format!("unknown section `{section}`{hint}"));
    };
    let Some(default) = keys.get(key) else {
        let hint = did_you_mean(key, &names(keys), &format!("{section}."));
        return Err(format!("unknown key `{path}`{hint}"));
    };

    let table = doc
        .entry(section)
        .or_insert(toml_edit::table())
        .as_table_like_mut()
        .ok_or_else(|| format!("`{section}` in the file is not a table"))?;
    table.insert(key, Item::Value(override_value(text.trim(), default)));
    Ok(format!("{section}.{key}"))
}

/// Hydra-style typing: the text as a TOML value if it is one, else as a bare
/// string (`model.arch=resnet`). A key whose default is a string takes a
/// number, boolean or date literally (`experiment.name=2024`); arrays are kept
/// (`training.class_weights=[1,1,2,2]`).
fn override_value(text: &str, default: &toml::Value) -> toml_edit::Value {
    match text.parse::<toml_edit::Value>() {
        Ok(v) if default.is_str() && !(v.is_str() || v.is_array() || v.is_inline_table()) => {
            text.into()
        }
        Ok(v) => v,
        Err(_) => text.into(),
    }
}

/// Unknown sections and keys, sections that are not tables, missing required
/// keys: everything serde would report without a suggestion or a line.
fn check_shape(doc: &DocumentMut, loc: &Locator) -> Vec<String> {
    let schema = schema();
    let mut errors = Vec::new();
    for (section, item) in doc.iter() {
        let Some(keys) = schema.get(section).and_then(toml::Value::as_table) else {
            let hint = did_you_mean(section, &names(schema), "");
            errors.push(format!(
                "{}: unknown section `[{section}]`{hint}",
                loc.at(section)
            ));
            continue;
        };
        let Some(table) = item.as_table_like() else {
            let found = item.type_name();
            errors.push(loc.error(
                section,
                format!("expected a table `[{section}]`, found {found}"),
            ));
            continue;
        };
        for (key, _) in table.iter().filter(|(key, _)| !keys.contains_key(*key)) {
            let dotted = format!("{section}.{key}");
            let hint = did_you_mean(key, &names(keys), &format!("{section}."));
            errors.push(format!("{}: unknown key `{dotted}`{hint}", loc.at(&dotted)));
        }
    }
    for (section, key, _, expected) in REQUIRED {
        match doc.get(section).and_then(Item::as_table_like) {
            Some(table) if table.contains_key(key) => {}
            Some(_) => errors.push(format!(
                "{}: missing required key `{section}.{key}` in [{section}]: expected {expected}",
                loc.at(section)
            )),
            None if doc.contains_key(section) => {} // not a table: reported above
            None => errors.push(format!(
                "{}: missing required section [{section}] with key `{section}.{key}`: expected {expected}",
                loc.origin
            )),
        }
    }
    errors
}
