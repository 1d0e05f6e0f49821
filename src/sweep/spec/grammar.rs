//! The sweep file's tables and keys, read with every error located by its
//! line, before anything is expanded.

use crate::config::{is_folder_name, line_of, nearest, parse_toml};
use std::path::PathBuf;
use toml_edit::{Item, TableLike};

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
pub(super) struct Entry {
    pub(super) key: String,
    pub(super) line: usize,
    pub(super) values: Vec<toml::Value>,
}

/// The main block or one `[[sweep.extra]]`.
#[derive(Debug, Clone, Default)]
pub(super) struct Block {
    pub(super) label: Option<String>,
    pub(super) set: Vec<Entry>,
    grid: Vec<Entry>,
    zip: Vec<Entry>,
    /// Whether the block's `set` keys are part of its run names (extra blocks).
    names_set: bool,
}

impl Block {
    /// Entries whose keys name the block's runs.
    pub(super) fn named(&self) -> impl Iterator<Item = &Entry> {
        let set = self.set.iter().filter(|_| self.names_set);
        set.chain(&self.grid).chain(&self.zip)
    }

    /// Each point of the block: (entry, value index) for every named entry.
    pub(super) fn expand(&self) -> Vec<Vec<(&Entry, usize)>> {
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
pub(super) struct Parsed {
    pub(super) name: String,
    pub(super) base: PathBuf,
    pub(super) base_line: usize,
    pub(super) output_dir: Option<PathBuf>,
    pub(super) blocks: Vec<Block>,
    pub(super) slurm: SlurmSpec,
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

/// The tables of a sweep file, or every error found, one a line.
pub(super) fn parse_file(text: &str, origin: &str) -> Result<Parsed, String> {
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
        if !is_folder_name(name) {
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
