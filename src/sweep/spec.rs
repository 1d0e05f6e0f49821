//! The sweep file: its grammar, the points it expands to, and their names.
//!
//! ```toml
//! [sweep]
//! name = "h_alpha"                     # the sweep folder: OUTPUT_DIR/h_alpha/
//! base = "../qtips_imex_cpu.toml"      # the experiment every point starts from, relative to this file
//! # output_dir = "results"             # default: the base experiment's experiment.output_dir
//!
//! [sweep.set]                          # the same for every point (not in the run names)
//! "training.epochs" = 8
//!
//! [sweep.grid]                         # the Cartesian product, first key slowest
//! "model.h" = [0.5, 1.0, 2.0]
//! "model.alpha" = [0.0, 1.0]
//! "experiment.seed" = [0, 1]
//!
//! [sweep.zip]                          # keys that vary together (equal lengths): one more axis
//! # "training.learning_rate" = [1e-3, 3e-3]
//! # "training.epochs" = [16, 8]
//!
//! [[sweep.extra]]                      # further points: the ResNet at each h
//! label = "ResNet"
//! set = { "model.arch" = "resnet" }
//! grid = { "model.h" = [0.5, 1.0, 2.0], "experiment.seed" = [0, 1] }
//! ```
//!
//! Hydra's multirun is the model: every point is the base experiment with
//! `--set KEY=VALUE` overrides, applied by the experiment's own override
//! machinery ([`Config::parse`]), so a point is valid exactly when
//! `imex-run BASE --set ...` would be, and its run folder is an ordinary one
//! (`compare`, `predict`, `probe` work on it).
//!
//! **Run names** are the sweep name and, for each key the point's block
//! varies (an extra block's `set`, then its `grid` and `zip`, in the order
//! written), a short label and the value: `h_alpha_h0.5_alpha1_seed0`, `h_alpha_arch-resnet_h0.5_seed0`.
//! The label is the key's last part (`section_key` when two varied keys share
//! it); numbers follow it directly, other values after a `-`, with every
//! character outside `[A-Za-z0-9.-]` written as `-`. A name depends only on
//! the sweep name and the point's values, never on its position, so adding
//! values to a list leaves the existing runs (and their folders) where they
//! are. Two points that would share a name are refused.

use crate::config::{line_of, nearest, parse_toml, Config};
use crate::error::Failure;
use anyhow::Result;
use std::path::{Path, PathBuf};
use toml_edit::{Item, TableLike};

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

/// `[sweep.slurm]`: the batch script's resources. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlurmSpec {
    pub job_name: Option<String>,
    pub partition: Option<String>,
    /// Wall-clock limit per task, Slurm's syntax (`2:00:00`, `1-00:00:00`).
    pub time: Option<String>,
    pub cpus_per_task: Option<u64>,
    /// Memory per task, Slurm's syntax (`4G`).
    pub mem: Option<String>,
    /// `--gpus` (e.g. `"1"`, `"a100:1"`).
    pub gpus: Option<String>,
    /// `--gres` (e.g. `"gpu:1"`).
    pub gres: Option<String>,
    /// Tasks running at once (`%M` of `--array`); default: all.
    pub max_parallel: Option<u64>,
    /// Further `#SBATCH` lines, without the prefix (`"--account=abc"`).
    pub sbatch: Vec<String>,
    /// Shell lines run before imex-run (`module load ...`).
    pub setup: Option<String>,
    /// The imex-run binary the tasks call; default: the one writing the script.
    pub binary: Option<PathBuf>,
}

/// Keys a sweep may not vary: the sweep names and places every run.
const RESERVED: [&str; 2] = ["experiment.name", "experiment.output_dir"];

/// One `key = value` or `key = [values]` of a sweep table.
#[derive(Debug, Clone)]
struct Entry {
    key: String,
    line: usize,
    values: Vec<toml::Value>,
}

/// The main block or one `[[sweep.extra]]`.
#[derive(Debug, Clone, Default)]
struct Block {
    label: Option<String>,
    set: Vec<Entry>,
    grid: Vec<Entry>,
    zip: Vec<Entry>,
    /// Whether the block's `set` keys are part of its run names (extra blocks).
    names_set: bool,
}

impl Block {
    /// Entries whose keys name the block's runs.
    fn named(&self) -> impl Iterator<Item = &Entry> {
        let set = self.set.iter().filter(|_| self.names_set);
        set.chain(&self.grid).chain(&self.zip)
    }

    /// Each point of the block: (entry, value index) for every named entry.
    fn expand(&self) -> Vec<Vec<(&Entry, usize)>> {
        let mut points: Vec<Vec<(&Entry, usize)>> = vec![Vec::new()];
        if self.names_set {
            for entry in &self.set {
                points[0].push((entry, 0));
            }
        }
        for entry in &self.grid {
            points = points
                .into_iter()
                .flat_map(|p| {
                    (0..entry.values.len()).map(move |i| {
                        let mut q = p.clone();
                        q.push((entry, i));
                        q
                    })
                })
                .collect();
        }
        if let Some(first) = self.zip.first() {
            points = points
                .into_iter()
                .flat_map(|p| {
                    (0..first.values.len()).map(move |i| {
                        let mut q = p.clone();
                        q.extend(self.zip.iter().map(|e| (e, i)));
                        q
                    })
                })
                .collect();
        }
        points
    }
}

/// The parsed file before expansion.
struct Parsed {
    name: String,
    base: PathBuf,
    base_line: usize,
    output_dir: Option<PathBuf>,
    blocks: Vec<Block>,
    slurm: SlurmSpec,
}

/// Reads a sweep file's tables, collecting every error with its line.
struct Reader<'a> {
    origin: &'a str,
    text: &'a str,
    errors: Vec<String>,
}

impl Reader<'_> {
    fn at(&self, offset: Option<usize>) -> String {
        match offset {
            Some(o) => format!("{}:{}", self.origin, line_of(self.text, o)),
            None => self.origin.to_string(),
        }
    }

    fn error(&mut self, offset: Option<usize>, key: &str, what: impl std::fmt::Display) {
        let at = self.at(offset);
        self.errors.push(format!("{at}: key `{key}`: {what}"));
    }

    /// Rejects keys of `table` outside `allowed`, with a suggestion.
    fn only(&mut self, table: &dyn TableLike, path: &str, allowed: &[&str]) {
        for (key, _) in table.iter() {
            if !allowed.contains(&key) {
                let offset = key_offset(table, key);
                let dotted = |k: &str| match path {
                    "" => k.to_string(),
                    _ => format!("{path}.{k}"),
                };
                let hint = match nearest(key, allowed.iter().copied()) {
                    Some(k) => format!(", did you mean `{}`?", dotted(k)),
                    None => format!(" (valid: {})", allowed.join(", ")),
                };
                let at = self.at(offset);
                self.errors
                    .push(format!("{at}: unknown key `{}`{hint}", dotted(key)));
            }
        }
    }

    fn string(&mut self, table: &dyn TableLike, path: &str, key: &str) -> Option<String> {
        let item = table.get(key)?;
        match item.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                let found = item.type_name();
                self.error(
                    key_offset(table, key),
                    &format!("{path}.{key}"),
                    format!("expected a string, found {found}"),
                );
                None
            }
        }
    }

    fn positive_integer(&mut self, table: &dyn TableLike, path: &str, key: &str) -> Option<u64> {
        let item = table.get(key)?;
        match item.as_integer() {
            Some(n) if n >= 1 => Some(n as u64),
            _ => {
                let found = item.to_string();
                self.error(
                    key_offset(table, key),
                    &format!("{path}.{key}"),
                    format!("expected an integer >= 1, found {}", found.trim()),
                );
                None
            }
        }
    }

    /// The entries of a `set`, `grid` or `zip` table; nested tables (from
    /// unquoted dotted keys, `model.h = [...]`) are flattened.
    fn entries(&mut self, table: &dyn TableLike, path: &str, lists: bool) -> Vec<Entry> {
        let mut out = Vec::new();
        self.collect(table, path, "", lists, &mut out);
        out
    }

    fn collect(
        &mut self,
        table: &dyn TableLike,
        path: &str,
        prefix: &str,
        lists: bool,
        out: &mut Vec<Entry>,
    ) {
        for (key, item) in table.iter() {
            let dotted = format!("{prefix}{key}");
            let offset = key_offset(table, key);
            if let Some(inner) = item.as_table_like() {
                if prefix.is_empty() {
                    self.collect(inner, path, &format!("{key}."), lists, out);
                    continue;
                }
            }
            let line = offset.map_or(0, |o| line_of(self.text, o));
            if RESERVED.contains(&dotted.as_str()) {
                self.error(
                    offset,
                    &dotted,
                    format!(
                        "set by the sweep in [{path}]: every run is named \
                         NAME_<values> and goes to OUTPUT_DIR/NAME/ (use [sweep] name and output_dir)"
                    ),
                );
                continue;
            }
            let Some(value) = item.as_value() else {
                let found = item.type_name();
                self.error(offset, &dotted, format!("expected a value, found {found}"));
                continue;
            };
            let values = if lists {
                match value.as_array() {
                    Some(array) if array.is_empty() => {
                        self.error(
                            offset,
                            &dotted,
                            format!("an empty list in [{path}]: give at least one value"),
                        );
                        continue;
                    }
                    Some(array) => array.iter().map(plain).collect(),
                    None => {
                        self.error(
                            offset,
                            &dotted,
                            format!(
                                "expected a list of values in [{path}], found {} (write [{}])",
                                value.type_name(),
                                value.to_string().trim()
                            ),
                        );
                        continue;
                    }
                }
            } else {
                vec![plain(value)]
            };
            out.push(Entry {
                key: dotted,
                line,
                values,
            });
        }
    }

    /// `set`, `grid` and `zip` of the main block (in `[sweep]`) or an extra one.
    fn block(&mut self, table: &dyn TableLike, path: &str, extra: bool) -> Block {
        let mut block = Block {
            names_set: extra,
            ..Block::default()
        };
        let sub = |name: &str| format!("{path}.{name}");
        for (name, lists) in [("set", false), ("grid", true), ("zip", true)] {
            let Some(item) = table.get(name) else {
                continue;
            };
            let Some(inner) = item.as_table_like() else {
                let found = item.type_name();
                self.error(
                    key_offset(table, name),
                    &sub(name),
                    format!("expected a table, found {found}"),
                );
                continue;
            };
            let entries = self.entries(inner, &sub(name), lists);
            match name {
                "set" => block.set = entries,
                "grid" => block.grid = entries,
                _ => block.zip = entries,
            }
        }
        if let Some(first) = block.zip.first() {
            for entry in &block.zip[1..] {
                if entry.values.len() != first.values.len() {
                    self.errors.push(format!(
                        "{}:{}: key `{}`: {} values in [{}], but `{}` (line {}) has {}: \
                         keys of a zip vary together and need the same number of values",
                        self.origin,
                        entry.line,
                        entry.key,
                        entry.values.len(),
                        sub("zip"),
                        first.key,
                        first.line,
                        first.values.len()
                    ));
                }
            }
        }
        let all: Vec<&Entry> = block
            .set
            .iter()
            .chain(&block.grid)
            .chain(&block.zip)
            .collect();
        for (i, entry) in all.iter().enumerate() {
            if let Some(earlier) = all[..i].iter().find(|e| e.key == entry.key) {
                self.errors.push(format!(
                    "{}:{}: key `{}`: already given on line {} of the same block",
                    self.origin, entry.line, entry.key, earlier.line
                ));
            }
        }
        let varies =
            !block.grid.is_empty() || !block.zip.is_empty() || (extra && !block.set.is_empty());
        if !varies {
            self.errors.push(format!(
                "{}: [{path}] varies nothing: give it a `grid` or a `zip`{}",
                self.at(table.iter().next().and_then(|(k, _)| key_offset(table, k))),
                if extra { " (or a `set`)" } else { "" }
            ));
        }
        block
    }
}

/// Where `key` is written in `table` (its key, else its value).
fn key_offset(table: &dyn TableLike, key: &str) -> Option<usize> {
    let (k, item) = table.get_key_value(key)?;
    k.span().or_else(|| item.span()).map(|s| s.start)
}

/// A `toml_edit` value as a plain `toml` value (no spans or comments).
fn plain(value: &toml_edit::Value) -> toml::Value {
    let text = format!("v = {}", value.to_string().trim());
    toml::from_str::<toml::Table>(&text)
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()))
}

fn parse_file(text: &str, origin: &str) -> Result<Parsed, String> {
    let doc = parse_toml(text, origin)?;
    let mut r = Reader {
        origin,
        text,
        errors: Vec::new(),
    };
    let root = doc.as_table();
    r.only(root, "", &["sweep"]);
    let Some(sweep) = root.get("sweep").and_then(Item::as_table_like) else {
        return Err(format!(
            "{origin}: no [sweep] table: a sweep file starts with [sweep], name = ..., base = ..."
        ));
    };
    r.only(
        sweep,
        "sweep",
        &[
            "name",
            "base",
            "output_dir",
            "set",
            "grid",
            "zip",
            "extra",
            "slurm",
        ],
    );
    let name = r.string(sweep, "sweep", "name");
    let base = r.string(sweep, "sweep", "base");
    for (key, what) in [
        ("name", "the sweep's name (it names the sweep folder)"),
        ("base", "the base experiment file, relative to this file"),
    ] {
        if !sweep.contains_key(key) {
            r.errors.push(format!(
                "{}: missing required key `sweep.{key}`: {what}",
                r.at(key_offset(root, "sweep"))
            ));
        }
    }
    if let Some(name) = &name {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            && name != "."
            && name != "..";
        if !ok {
            r.error(
                key_offset(sweep, "name"),
                "sweep.name",
                format!("expected a name of [A-Za-z0-9_.-]+ (it names the sweep folder), found {name:?}"),
            );
        }
    }
    let output_dir = r.string(sweep, "sweep", "output_dir").map(PathBuf::from);
    let mut blocks = vec![r.block(sweep, "sweep", false)];
    if let Some(item) = sweep.get("extra") {
        match item.as_array_of_tables() {
            Some(tables) => {
                for (k, table) in tables.iter().enumerate() {
                    let path = format!("sweep.extra[{k}]");
                    r.only(table, &path, &["label", "set", "grid", "zip"]);
                    let label = r.string(table, &path, "label");
                    let mut block = r.block(table, &path, true);
                    block.label = label;
                    blocks.push(block);
                }
            }
            None => {
                let found = item.type_name();
                r.error(
                    key_offset(sweep, "extra"),
                    "sweep.extra",
                    format!("expected [[sweep.extra]] tables, found {found}"),
                );
            }
        }
    }
    let slurm = match sweep.get("slurm") {
        None => SlurmSpec::default(),
        Some(item) => match item.as_table_like() {
            Some(t) => slurm_spec(&mut r, t),
            None => {
                let found = item.type_name();
                r.error(
                    key_offset(sweep, "slurm"),
                    "sweep.slurm",
                    format!("expected a table, found {found}"),
                );
                SlurmSpec::default()
            }
        },
    };
    if !r.errors.is_empty() {
        return Err(r.errors.join("\n"));
    }
    Ok(Parsed {
        name: name.unwrap_or_default(),
        base: PathBuf::from(base.unwrap_or_default()),
        base_line: key_offset(sweep, "base").map_or(0, |o| line_of(text, o)),
        output_dir,
        blocks,
        slurm,
    })
}

fn slurm_spec(r: &mut Reader, t: &dyn TableLike) -> SlurmSpec {
    let p = "sweep.slurm";
    r.only(
        t,
        p,
        &[
            "job_name",
            "partition",
            "time",
            "cpus_per_task",
            "mem",
            "gpus",
            "gres",
            "max_parallel",
            "sbatch",
            "setup",
            "binary",
        ],
    );
    // gpus may be written as a number.
    let gpus = match t.get("gpus").and_then(Item::as_integer) {
        Some(n) => Some(n.to_string()),
        None => r.string(t, p, "gpus"),
    };
    let mut sbatch = Vec::new();
    if let Some(item) = t.get("sbatch") {
        let lines = item
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect());
        match lines {
            Some(Some(lines)) => sbatch = lines,
            _ => r.error(
                key_offset(t, "sbatch"),
                "sweep.slurm.sbatch",
                "expected a list of strings (#SBATCH lines without the prefix)",
            ),
        }
    }
    let spec = SlurmSpec {
        job_name: r.string(t, p, "job_name"),
        partition: r.string(t, p, "partition"),
        time: r.string(t, p, "time"),
        cpus_per_task: r.positive_integer(t, p, "cpus_per_task"),
        mem: r.string(t, p, "mem"),
        gpus,
        gres: r.string(t, p, "gres"),
        max_parallel: r.positive_integer(t, p, "max_parallel"),
        sbatch,
        setup: r.string(t, p, "setup"),
        binary: r.string(t, p, "binary").map(PathBuf::from),
    };
    // One line each: a newline would smuggle a second directive or command in.
    for (key, value) in [
        ("job_name", &spec.job_name),
        ("partition", &spec.partition),
        ("time", &spec.time),
        ("mem", &spec.mem),
        ("gpus", &spec.gpus),
        ("gres", &spec.gres),
    ] {
        if value.as_deref().is_some_and(|v| v.contains('\n')) {
            r.error(
                key_offset(t, key),
                &format!("{p}.{key}"),
                "must be one line",
            );
        }
    }
    if spec.sbatch.iter().any(|l| l.contains('\n')) {
        r.error(
            key_offset(t, "sbatch"),
            "sweep.slurm.sbatch",
            "each entry must be one line",
        );
    }
    spec
}

/// The last part of each named key, or `section_key` where two share it.
fn labels(keys: &[String]) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const BASE: &str = "[experiment]\nname = \"base\"\noutput_dir = \"out\"\n[model]\narch = \"imex\"\nwidths = [4, 8]\ndepths = [2, 2]\n";

    /// A sweep file `text` beside a valid base experiment, in a temporary folder.
    fn sweep(text: &str) -> (tempfile::TempDir, Result<Sweep, String>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.toml"), BASE).unwrap();
        let path = dir.path().join("s.toml");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let result = Sweep::parse(text, &path);
        (dir, result)
    }

    fn ok(text: &str) -> Sweep {
        let (_dir, s) = sweep(text);
        s.unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> String {
        let (_dir, s) = sweep(text);
        match s {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    const HEAD: &str = "[sweep]\nname = \"hs\"\nbase = \"base.toml\"\n";

    #[test]
    fn grid_is_the_cartesian_product_first_key_slowest() {
        let s = ok(&format!(
            "{HEAD}[sweep.grid]\n\"model.h\" = [0.5, 1.0, 2]\n\"model.alpha\" = [0, 4.5]\n"
        ));
        let got: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|p| (p.config.model.h, p.config.model.alpha))
            .collect();
        assert_eq!(
            got,
            vec![
                (0.5, 0.0),
                (0.5, 4.5),
                (1.0, 0.0),
                (1.0, 4.5),
                (2.0, 0.0),
                (2.0, 4.5)
            ]
        );
        assert_eq!(s.keys, vec!["model.h", "model.alpha"]);
        assert_eq!(
            s.points.iter().map(|p| p.index).collect::<Vec<_>>(),
            (0..6).collect::<Vec<_>>()
        );
        assert_eq!(s.points[1].name, "hs_h0.5_alpha4.5");
        assert_eq!(s.points[4].name, "hs_h2_alpha0");
        // Ordinary run folders under OUTPUT_DIR/NAME/, the base's output_dir.
        assert_eq!(s.dir, Path::new("out/hs"));
        assert_eq!(s.points[1].dir(), Path::new("out/hs/hs_h0.5_alpha4.5"));
        assert_eq!(s.points[1].config.experiment.name, "hs_h0.5_alpha4.5");
    }

    #[test]
    fn zip_varies_together_and_multiplies_the_grid() {
        let s = ok(&format!(
            "{HEAD}[sweep.grid]\n\"experiment.seed\" = [0, 1]\n\
             [sweep.zip]\n\"model.h\" = [0.5, 2.0]\n\"model.alpha\" = [2.0, 0.5]\n"
        ));
        let got: Vec<(u64, f64, f64)> = s
            .points
            .iter()
            .map(|p| {
                let c = &p.config;
                (c.experiment.seed, c.model.h, c.model.alpha)
            })
            .collect();
        assert_eq!(
            got,
            vec![(0, 0.5, 2.0), (0, 2.0, 0.5), (1, 0.5, 2.0), (1, 2.0, 0.5)]
        );
        assert_eq!(s.points[0].name, "hs_seed0_h0.5_alpha2");
    }

    #[test]
    fn set_applies_everywhere_and_extras_add_named_points() {
        let s = ok(&format!(
            "{HEAD}[sweep.set]\n\"training.epochs\" = 3\n\
             [sweep.grid]\n\"model.h\" = [0.5, 1]\n\
             [[sweep.extra]]\nlabel = \"ResNet\"\nset = {{ \"model.arch\" = \"resnet\" }}\n\
             grid = {{ \"model.h\" = [0.5, 1] }}\n"
        ));
        assert_eq!(s.points.len(), 4);
        assert!(s.points.iter().all(|p| p.config.training.epochs == 3));
        let names: Vec<&str> = s.points.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "hs_h0.5",
                "hs_h1",
                "hs_arch-resnet_h0.5",
                "hs_arch-resnet_h1"
            ]
        );
        assert_eq!(s.points[3].config.model.arch, crate::config::Arch::Resnet);
        assert_eq!(s.points[3].label.as_deref(), Some("ResNet"));
        assert_eq!((s.points[0].block, s.points[3].block), (0, 1));
        assert_eq!(s.keys, ["model.h", "model.arch"]);
    }

    #[test]
    fn names_are_stable_safe_and_unique() {
        let text = format!(
            "{HEAD}[sweep.grid]\nmodel.widths = [[4, 8], [2, 6]]\n\
             \"model.operator\" = [\"identity\", \"laplacian\"]\n\"data.image_size\" = [16]\n\
             \"training.learning_rate\" = [1e-3]\n"
        );
        let s = ok(&text);
        assert_eq!(
            s.points[0].name,
            "hs_widths-4-8_operator-identity_image_size16_learning_rate0.001"
        );
        // Stable: a point's name does not depend on its neighbours.
        let more = ok(&text.replace("[[4, 8], [2, 6]]", "[[1, 2], [4, 8], [2, 6]]"));
        let names: Vec<&String> = more.points.iter().map(|p| &p.name).collect();
        for p in &s.points {
            assert!(names.contains(&&p.name), "{} renamed", p.name);
        }
        for p in &more.points {
            assert!(p
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
        }
        // A shared last part is qualified by its section.
        assert_eq!(
            labels(&["data.width".into(), "model.width".into(), "model.h".into()]),
            ["data_width", "model_width", "h"]
        );
        assert_eq!(
            name_part("arch", &toml::Value::String("a b/c".into())),
            "arch-a-b-c"
        );
        // Values that look alike in a file name are refused, naming both points.
        let e = err(&format!("{HEAD}[sweep.grid]\n\"model.h\" = [1, 1.0]\n"));
        assert!(
            e.contains("points 0 and 1 would both be the run hs_h1"),
            "{e}"
        );
    }

    #[test]
    fn bad_sweep_files_name_file_line_key_and_point() {
        let cases: Vec<(String, Vec<&str>)> = vec![
            (
                format!("{HEAD}[sweep.grid]\n\"model.hh\" = [1.0]\n"),
                vec!["s.toml:5: key `model.hh`", "point 0", "unknown key `model.hh`", "did you mean `model.h`"],
            ),
            (
                format!("{HEAD}[sweep.grid]\n\"model.h\" = [0.5, \"big\"]\n"),
                vec!["s.toml:5: key `model.h`", "point 1", "hs_h-big", "expected a number"],
            ),
            (
                format!("{HEAD}[sweep.grid]\n\"model.h\" = [0.5, -1]\n"),
                vec!["s.toml:5: key `model.h`", "point 1 (model.h=-1, run hs_h-1)", "> 0"],
            ),
            (
                format!("{HEAD}[sweep.grid]\n\"model.h\" = []\n"),
                vec!["s.toml:5: key `model.h`", "empty list"],
            ),
            (
                format!("{HEAD}[sweep.grid]\n\"model.h\" = 0.5\n"),
                vec!["s.toml:5: key `model.h`", "expected a list of values", "[0.5]"],
            ),
            (
                format!("{HEAD}[sweep.zip]\n\"model.h\" = [1, 2]\n\"model.alpha\" = [1, 2, 3]\n"),
                vec!["s.toml:6: key `model.alpha`", "3 values", "`model.h` (line 5) has 2"],
            ),
            (
                format!("{HEAD}[sweep.grid]\n\"experiment.name\" = [\"a\"]\n"),
                vec!["s.toml:5: key `experiment.name`", "set by the sweep"],
            ),
            (
                format!("{HEAD}gird = 1\n[sweep.grid]\n\"model.h\" = [1]\n"),
                vec!["s.toml:4: unknown key `sweep.gird`", "did you mean `sweep.grid`"],
            ),
            (
                "[sweep]\nname = \"a b\"\nbase = \"base.toml\"\n[sweep.grid]\n\"model.h\" = [1]\n".into(),
                vec!["s.toml:2: key `sweep.name`", "[A-Za-z0-9_.-]+"],
            ),
            (
                "[sweep]\nname = \"x\"\nbase = \"nope.toml\"\n[sweep.grid]\n\"model.h\" = [1]\n".into(),
                vec!["s.toml:3: key `sweep.base`", "cannot read the base experiment", "nope.toml"],
            ),
            (
                HEAD.to_string(),
                vec!["[sweep] varies nothing"],
            ),
            (
                format!("{HEAD}[sweep.grid]\n\"model.h\" = [1]\n[sweep.slurm]\ncpus_per_task = 0\nqueue = \"x\"\n"),
                vec!["s.toml:7: key `sweep.slurm.cpus_per_task`", "integer >= 1", "s.toml:8: unknown key `sweep.slurm.queue`"],
            ),
            (
                format!("{HEAD}[sweep.grid]\n\"model.h\" = [1 2]\n"),
                vec!["s.toml:5", "malformed TOML"],
            ),
        ];
        for (text, expected) in cases {
            let e = err(&text);
            for part in expected {
                assert!(e.contains(part), "{part:?} not in:\n{e}\n--- for:\n{text}");
            }
        }
    }

    #[test]
    fn a_cross_field_refusal_names_the_point_and_counts_the_others() {
        // depths must match widths: the widths override is blamed.
        let e = err(&format!(
            "{HEAD}[sweep.grid]\n\"model.widths\" = [[4, 8], [4, 8, 16], [2, 2, 2]]\n"
        ));
        assert!(e.contains("point 1 (model.widths=[4, 8, 16]"), "{e}");
        assert!(e.contains("key `model.depths`"), "{e}");
        assert!(
            e.contains("(2 of 3 points are refused; this is the first)"),
            "{e}"
        );
    }

    #[test]
    fn index_is_bounds_checked() {
        let s = ok(&format!("{HEAD}[sweep.grid]\n\"model.h\" = [1, 2]\n"));
        assert_eq!(s.point(1).unwrap().name, "hs_h2");
        let e = s.point(2).unwrap_err();
        assert_eq!(crate::error::exit_code(&e), 2);
        assert!(
            format!("{e}").contains("--index 2 is out of range: the sweep has 2 points, 0 to 1")
        );
    }
}
