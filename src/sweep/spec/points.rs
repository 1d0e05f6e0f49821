//! The points a sweep expands to, their run names, and each point checked by
//! the experiment's own validator.

use super::grammar::{parse_file, Entry, SlurmSpec};
use crate::config::Config;
use crate::error::Failure;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// A sweep, expanded and validated.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub name: String,
    /// The sweep file, as given.
    pub file: PathBuf,
    /// The base experiment file (relative to the working directory).
    pub base: PathBuf,
    /// `OUTPUT_DIR/NAME`: the run folders, `sweep.json`, the batch script, logs.
    pub dir: PathBuf,
    /// The keys run names are made of, in the order they first appear.
    pub keys: Vec<String>,
    pub points: Vec<Point>,
    pub slurm: SlurmSpec,
}

/// One experiment of the sweep.
#[derive(Debug, Clone)]
pub struct Point {
    /// Position in the sweep (what `--index` and `$SLURM_ARRAY_TASK_ID` name).
    pub index: usize,
    /// The run name (`experiment.name`), also its folder's name.
    pub name: String,
    /// 0: the main block (`[sweep.grid]`, `[sweep.zip]`); k: the k-th `[[sweep.extra]]`.
    pub block: usize,
    /// The block's `label`, if it has one.
    pub label: Option<String>,
    /// The named keys this point's block varies, and their values here, in
    /// the order of its run name.
    pub values: Vec<(String, toml::Value)>,
    /// Every `--set` override that makes this point from the base experiment.
    pub overrides: Vec<String>,
    /// The resolved experiment.
    pub config: Config,
}

impl Point {
    /// The run folder.
    pub fn dir(&self) -> PathBuf {
        self.config.run_dir()
    }

    /// `model.h=0.5, model.alpha=1.0`: the varied values, for listings.
    pub fn describe(&self) -> String {
        describe(&self.values)
    }
}

/// The last part of each named key, or `section_key` where two share it.
pub(super) fn labels(keys: &[String]) -> Vec<String> {
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    keys.iter()
        .map(|k| {
            let shared = keys.iter().filter(|o| last(o) == last(k)).count() > 1;
            match shared {
                true => k.replace('.', "_"),
                false => last(k),
            }
        })
        .collect()
}

/// A value as it appears in a run name (see the module doc).
pub fn name_part(label: &str, value: &toml::Value) -> String {
    let safe = |text: String| -> String {
        text.chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    true => c,
                    false => '-',
                },
            )
            .collect()
    };
    match value {
        toml::Value::Integer(n) => format!("{label}{n}"),
        toml::Value::Float(x) => format!("{label}{}", safe(format!("{x}"))),
        toml::Value::String(s) => format!("{label}-{}", safe(s.clone())),
        toml::Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(|v| name_part("", v)).collect();
            format!("{label}-{}", parts.join("-").trim_start_matches('-'))
        }
        other => format!("{label}-{}", safe(other.to_string())),
    }
}

/// Longest run name: file names are at most 255 bytes, and `.lock` and the
/// temporary files of atomic writes live beside the run folder's files, not
/// in its name, so the margin is for the user's own suffixes.
const MAX_NAME: usize = 200;

impl Sweep {
    /// Reads, expands and validates the sweep file at `path`: every problem,
    /// including a point the experiment validator refuses, is a
    /// [`Failure::Config`] naming the file, line and key, before anything runs.
    pub fn load(path: &Path) -> Result<Sweep> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Config(format!("cannot read sweep file {}: {e}", path.display()))
        })?;
        Self::parse(&text, path).map_err(|msg| Failure::Config(msg).into())
    }

    /// [`Sweep::load`] on text; `path` is where it was read from (its folder
    /// anchors `base`).
    pub fn parse(text: &str, path: &Path) -> Result<Sweep, String> {
        let origin = path.display().to_string();
        let parsed = parse_file(text, &origin)?;
        let base = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(&parsed.base),
            _ => parsed.base.clone(),
        };
        let base_text = std::fs::read_to_string(&base).map_err(|e| {
            format!(
                "{origin}:{}: key `sweep.base`: cannot read the base experiment {}: {e}",
                parsed.base_line,
                base.display()
            )
        })?;
        let base_origin = base.display().to_string();

        let mut keys: Vec<String> = Vec::new();
        for block in &parsed.blocks {
            for entry in block.named() {
                if !keys.contains(&entry.key) {
                    keys.push(entry.key.clone());
                }
            }
        }
        let labels = labels(&keys);
        let label_of = |key: &str| &labels[keys.iter().position(|k| k == key).unwrap_or(0)];

        // Each point: its block, named values, overrides (with their source
        // line and key) and name.
        struct Draft {
            block: usize,
            values: Vec<(String, toml::Value)>,
            sources: Vec<(String, String, usize)>,
            name: String,
        }
        let mut drafts = Vec::new();
        let main_set = &parsed.blocks[0].set;
        for (b, block) in parsed.blocks.iter().enumerate() {
            for combination in block.expand() {
                let mut sources = Vec::new();
                let mut add = |entry: &Entry, value: &toml::Value| {
                    sources.push((
                        format!("{}={value}", entry.key),
                        entry.key.clone(),
                        entry.line,
                    ));
                };
                for entry in main_set {
                    add(entry, &entry.values[0]);
                }
                if b > 0 {
                    for entry in &block.set {
                        add(entry, &entry.values[0]);
                    }
                }
                let mut values: Vec<(String, toml::Value)> = Vec::new();
                for &(entry, i) in &combination {
                    if !block.set.iter().any(|s| s.key == entry.key) {
                        add(entry, &entry.values[i]);
                    }
                    values.push((entry.key.clone(), entry.values[i].clone()));
                }
                let parts: Vec<String> = values
                    .iter()
                    .map(|(k, v)| name_part(label_of(k), v))
                    .collect();
                let name = format!("{}_{}", parsed.name, parts.join("_"));
                drafts.push(Draft {
                    block: b,
                    values,
                    sources,
                    name,
                });
            }
        }

        for (i, d) in drafts.iter().enumerate() {
            if let Some(j) = drafts[..i].iter().position(|e| e.name == d.name) {
                return Err(format!(
                    "{origin}: points {j} and {i} would both be the run {} ({}): \
                     a value is repeated, or two values look the same in a file name",
                    d.name,
                    describe(&d.values)
                ));
            }
            if d.name.len() > MAX_NAME {
                return Err(format!(
                    "{origin}: point {i}: the run name {} is {} bytes long, over {MAX_NAME}: \
                     vary fewer keys, or shorter values",
                    d.name,
                    d.name.len()
                ));
            }
        }

        // Every point through the experiment's own validator: first without
        // name and folder (to learn the base's output_dir), then with them.
        let mut points = Vec::new();
        let mut refused: Vec<(usize, String)> = Vec::new();
        let mut sweep_dir: Option<PathBuf> =
            parsed.output_dir.as_ref().map(|d| d.join(&parsed.name));
        for (index, d) in drafts.iter().enumerate() {
            let mut overrides: Vec<String> = d.sources.iter().map(|s| s.0.clone()).collect();
            let first = match Config::parse(&base_text, &base_origin, &overrides) {
                Ok(cfg) => cfg,
                Err(e) => {
                    refused.push((index, format!("{e:#}")));
                    continue;
                }
            };
            let dir = sweep_dir
                .get_or_insert_with(|| first.experiment.output_dir.join(&parsed.name))
                .clone();
            let dir_value = toml::Value::String(dir.display().to_string());
            overrides.push(format!("experiment.output_dir={dir_value}"));
            overrides.push(format!(
                "experiment.name={}",
                toml::Value::String(d.name.clone())
            ));
            match Config::parse(&base_text, &base_origin, &overrides) {
                Ok(config) => points.push(Point {
                    index,
                    name: d.name.clone(),
                    block: d.block,
                    label: parsed.blocks[d.block].label.clone(),
                    values: d.values.clone(),
                    overrides,
                    config,
                }),
                Err(e) => refused.push((index, format!("{e:#}"))),
            }
        }
        if let Some((index, message)) = refused.first() {
            let d = &drafts[*index];
            // The override the validator blamed, else the base file itself.
            let blamed = d
                .sources
                .iter()
                .find(|(raw, _, _)| message.contains(&format!("--set {raw}:")));
            let (key, line) = match blamed {
                Some((_, key, line)) => (key.as_str(), *line),
                None => ("sweep.base", parsed.base_line),
            };
            let message = message.strip_prefix("config error: ").unwrap_or(message);
            let also = match refused.len() {
                1 => String::new(),
                n => format!(
                    "\n({n} of {} points are refused; this is the first)",
                    drafts.len()
                ),
            };
            return Err(format!(
                "{origin}:{line}: key `{key}`: point {index} ({}, run {}) is refused by the \
                 experiment validator:\n  {}{also}",
                describe(&d.values),
                d.name,
                message.replace('\n', "\n  ")
            ));
        }
        Ok(Sweep {
            name: parsed.name.clone(),
            file: path.to_path_buf(),
            base,
            dir: sweep_dir.unwrap_or_else(|| PathBuf::from(&parsed.name)),
            keys,
            points,
            slurm: parsed.slurm,
        })
    }

    /// Point `index`, or a config error naming the valid range.
    pub fn point(&self, index: usize) -> Result<&Point> {
        self.points.get(index).ok_or_else(|| {
            Failure::Config(format!(
                "{}: --index {index} is out of range: the sweep has {} points, 0 to {}",
                self.file.display(),
                self.points.len(),
                self.points.len().saturating_sub(1)
            ))
            .into()
        })
    }
}

/// `model.h=0.5, model.alpha=1.0`.
fn describe(values: &[(String, toml::Value)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
