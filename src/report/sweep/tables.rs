//! A sweep's table: every point with its state and metrics, and a summary
//! per configuration (seeds pooled), as Markdown, LaTeX and CSV.

use super::cells::{at_kept, block_name, finished, show_value, Cell, SweepRuns, SEED};
use crate::report::table::latex_escape;
use anyhow::Result;
use std::fmt::Write as _;

/// Columns of the table besides the metric, where the runs have them.
const ALSO: [&str; 4] = [
    "val_loss",
    "val_mean_iou",
    "val_pixel_accuracy",
    "val_paper_iou",
];

/// One row per point: its values, state, kept epoch and metrics.
fn point_rows(sweep: &SweepRuns, metric: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let keys = &sweep.manifest.keys;
    let mut columns: Vec<String> = vec![metric.to_string()];
    for c in ALSO {
        let present = sweep.runs.iter().flatten().any(|r| r.metrics.has(c));
        if c != metric && present {
            columns.push(c.to_string());
        }
    }
    let mut header: Vec<String> = ["point", "run", "block"].map(String::from).to_vec();
    header.extend(keys.iter().cloned());
    header.extend(["status", "kept epoch"].map(String::from));
    header.extend(columns.iter().cloned());
    let mut rows = Vec::new();
    for (point, run) in sweep.manifest.points.iter().zip(&sweep.runs) {
        let mut row = vec![
            point.index.to_string(),
            point.name.clone(),
            point.label.clone().unwrap_or_else(|| match point.block {
                0 => "grid".into(),
                b => format!("extra {b}"),
            }),
        ];
        row.extend(
            keys.iter()
                .map(|k| point.values.get(k).map_or(String::new(), show_value)),
        );
        match run {
            Some(run) => {
                let status = run.provenance.as_ref().map_or("?", |p| p.status.name());
                let kept = run.metrics.checkpoint_row(run.config.training.checkpoint)?;
                row.push(status.to_string());
                row.push(run.metrics.epochs()[kept].to_string());
                for c in &columns {
                    row.push(match run.metrics.has(c) {
                        true => format!("{:.6}", at_kept(run, c)?),
                        false => String::new(),
                    });
                }
            }
            None => {
                row.push("not run".into());
                row.extend(std::iter::repeat_n(String::new(), 1 + columns.len()));
            }
        }
        rows.push(row);
    }
    Ok((header, rows))
}

/// The caption of the table and the figures.
fn caption(sweep: &SweepRuns, cells: &[Cell], metric: &str) -> String {
    let finished = sweep.runs.iter().flatten().filter(|r| finished(r)).count();
    format!(
        "Sweep {} ({} points, {finished} finished; {} configurations): {metric} at each run's kept \
         checkpoint (its training.checkpoint rule); in the summary, mean ± sample std over the \
         finished seeds (n), runs not finished left out.",
        sweep.manifest.sweep,
        sweep.manifest.points.len(),
        cells.len()
    )
}

/// The summary: one row per configuration (seeds pooled).
fn summary_rows(sweep: &SweepRuns, cells: &[Cell]) -> (Vec<String>, Vec<Vec<String>>) {
    let keys: Vec<&String> = sweep
        .manifest
        .keys
        .iter()
        .filter(|k| k.as_str() != SEED)
        .collect();
    let mut header = vec!["block".to_string()];
    header.extend(keys.iter().map(|k| k.to_string()));
    header.extend(["n", "mean", "std"].map(String::from));
    let rows = cells
        .iter()
        .map(|c| {
            let mut row = vec![block_name(sweep, cells, c.block)];
            row.extend(
                keys.iter()
                    .map(|k| c.value(k).map_or(String::new(), show_value)),
            );
            match c.summary() {
                Some(s) => {
                    row.push(format!("{}/{}", s.n, c.points));
                    row.push(format!("{:.4}", s.mean));
                    row.push(s.std.map_or(String::new(), |v| format!("{v:.4}")));
                }
                None => row.extend([format!("0/{}", c.points), String::new(), String::new()]),
            }
            row
        })
        .collect();
    (header, rows)
}

fn markdown_table(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(header.len()));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
}

/// The table files' texts: Markdown (summary, then every point), LaTeX
/// (every point, booktabs) and CSV (every point, full precision).
pub fn tables(sweep: &SweepRuns, cells: &[Cell], metric: &str) -> Result<[String; 3]> {
    let (header, rows) = point_rows(sweep, metric)?;
    let caption = caption(sweep, cells, metric);
    let mut md = format!("{caption}\n\n");
    let (sh, sr) = summary_rows(sweep, cells);
    markdown_table(&mut md, &sh, &sr);
    md.push('\n');
    markdown_table(&mut md, &header, &rows);
    let mut tex = String::from(
        "% imex-run report: needs \\usepackage{booktabs}\n\\begin{table}[t]\n\\centering\n\\small\n",
    );
    let _ = writeln!(
        tex,
        "\\caption{{{}}}",
        latex_escape(&caption).replace('±', "$\\pm$")
    );
    let _ = writeln!(
        tex,
        "\\label{{tab:sweep-{}}}\n\\begin{{tabular}}{{{}}}\n\\toprule",
        sweep.manifest.sweep,
        "l".repeat(header.len())
    );
    let esc = |r: &[String]| {
        r.iter()
            .map(|c| latex_escape(c))
            .collect::<Vec<_>>()
            .join(" & ")
    };
    let _ = writeln!(tex, "{} \\\\\n\\midrule", esc(&header));
    for row in &rows {
        let _ = writeln!(tex, "{} \\\\", esc(row));
    }
    tex.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header)?;
    for row in &rows {
        writer.write_record(row)?;
    }
    let csv = String::from_utf8(writer.into_inner()?)?;
    Ok([md, tex, csv])
}
