//! The Q-tips table: each configuration's validation metrics at the kept
//! checkpoint, mean ± standard deviation over seeds, next to the paper's
//! values, as Markdown, LaTeX (booktabs) and CSV.

use super::study::Group;
use crate::config::{Arch, CheckpointRule};
use crate::model::network::ParamCounts;
use anyhow::Result;
use std::fmt::Write as _;

/// The slides' Q-tips table (full-scale networks, 100 epochs, SGD), and the
/// paper's parameter counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperRow {
    pub paper_iou: f64,
    pub loss: f64,
    pub accuracy: f64,
    pub parameters: usize,
}

pub fn paper_row(arch: Arch) -> PaperRow {
    match arch {
        Arch::Imex => PaperRow {
            paper_iou: 0.926,
            loss: 0.0982,
            accuracy: 0.9956,
            parameters: 2_701_440,
        },
        Arch::Resnet => PaperRow {
            paper_iou: 0.741,
            loss: 0.3332,
            accuracy: 0.9818,
            parameters: 2_691_648,
        },
    }
}

/// Mean, sample standard deviation (None for one seed) and count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: usize,
}

impl Summary {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        });
        Self { mean, std, n }
    }

    pub fn show(&self, digits: usize, scale: f64, plus_minus: &str) -> String {
        let mean = format!("{:.digits$}", self.mean * scale);
        match self.std {
            Some(s) => format!("{mean}{plus_minus}{:.digits$}", s * scale),
            None => mean,
        }
    }
}

/// One row: a configuration (several seeds) of one network.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub study: String,
    pub group: String,
    pub arch: Arch,
    pub seeds: Vec<u64>,
    pub rule: CheckpointRule,
    /// The kept epoch of each seed.
    pub epochs: Vec<usize>,
    pub parameters: ParamCounts,
    pub paper_iou: Summary,
    pub mean_iou: Summary,
    pub loss: Summary,
    pub accuracy: Summary,
    pub val_images: Option<u64>,
}

/// Every seed's kept epoch (by its checkpoint rule) and, per column, the
/// seeds' values at that epoch.
fn at_kept_epochs(group: &Group, columns: &[&str]) -> Result<(Vec<usize>, Vec<Vec<f64>>)> {
    let mut values = vec![Vec::new(); columns.len()];
    let mut epochs = Vec::new();
    for run in &group.runs {
        let row = run.metrics.checkpoint_row(run.config.training.checkpoint)?;
        epochs.push(run.metrics.epochs()[row]);
        for (column, seeds) in columns.iter().zip(values.iter_mut()) {
            seeds.push(run.metrics.column(column)?[row]);
        }
    }
    Ok((epochs, values))
}

fn seeds(group: &Group) -> Vec<u64> {
    group
        .runs
        .iter()
        .map(|r| r.config.experiment.seed)
        .collect()
}

impl Row {
    pub fn of(study: &str, group: &Group) -> Result<Self> {
        let columns = [
            "val_paper_iou",
            "val_mean_iou",
            "val_loss",
            "val_pixel_accuracy",
        ];
        let (epochs, values) = at_kept_epochs(group, &columns)?;
        let first = &group.runs[0];
        Ok(Self {
            study: study.to_string(),
            group: group.name.clone(),
            arch: first.config.model.arch,
            seeds: seeds(group),
            rule: first.config.training.checkpoint,
            epochs,
            parameters: ParamCounts::of(&first.config.model),
            paper_iou: Summary::of(&values[0]),
            mean_iou: Summary::of(&values[1]),
            loss: Summary::of(&values[2]),
            accuracy: Summary::of(&values[3]),
            val_images: (first.provenance.as_ref()).map(|p| p.data.val_images as u64),
        })
    }

    fn network(&self) -> &'static str {
        self.arch.display_name()
    }
}

fn rule_text(rule: CheckpointRule) -> &'static str {
    match rule {
        CheckpointRule::BestValLoss => "the epoch of lowest validation loss",
        CheckpointRule::LowestTrainLoss => "the epoch of lowest training loss (the authors' rule)",
    }
}

/// The caption: what the numbers are and how they were chosen.
pub fn caption(rows: &[Row]) -> String {
    let mut rules: Vec<&str> = rows.iter().map(|r| rule_text(r.rule)).collect();
    rules.dedup();
    let images = rows
        .iter()
        .find_map(|r| r.val_images)
        .map_or(String::new(), |n| format!(" ({n} images)"));
    format!(
        "Q-tips, validation split{images}. Each run is scored at {}; mean ± sample standard \
         deviation over seeds. \"Paper IoU\" is the authors' per-image bitwise score, \"mean IoU\" \
         the standard mean over classes. Paper: the slides' values for the full-scale networks \
         (widths 64/128/256, 100 epochs of SGD, lowest-training-loss checkpoint). Parameters: \
         trainable weights the forward pass uses (true), and as the paper counted them.",
        rules.join(" or ")
    )
}

fn seeds_text(row: &Row) -> String {
    row.seeds.len().to_string()
}

/// Rows as Markdown, with the caption above.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = format!("{}\n\n", caption(rows));
    out.push_str(
        "| configuration | network | seeds | params (true) | params (paper's count) | paper IoU | paper | Δ | mean IoU | loss | paper | Δ | accuracy % | paper | Δ |\n",
    );
    out.push_str(&"| --- ".repeat(15));
    out.push_str("|\n");
    for row in rows {
        let paper = paper_row(row.arch);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.3} | {:+.3} | {} | {} | {:.4} | {:+.4} | {} | {:.2} | {:+.2} |",
            row.group,
            row.network(),
            seeds_text(row),
            row.parameters.total,
            row.parameters.paper_counting,
            row.paper_iou.show(3, 1.0, " ± "),
            paper.paper_iou,
            row.paper_iou.mean - paper.paper_iou,
            row.mean_iou.show(3, 1.0, " ± "),
            row.loss.show(4, 1.0, " ± "),
            paper.loss,
            row.loss.mean - paper.loss,
            row.accuracy.show(2, 100.0, " ± "),
            paper.accuracy * 100.0,
            (row.accuracy.mean - paper.accuracy) * 100.0,
        );
    }
    out
}

pub(crate) fn latex_escape(text: &str) -> String {
    text.replace('\\', "\\textbackslash{}")
        .replace('_', "\\_")
        .replace('%', "\\%")
        .replace('&', "\\&")
        .replace('#', "\\#")
}

/// "quoted" → ``quoted'' (TeX's opening and closing quotes).
fn latex_quotes(text: &str) -> String {
    text.split('"')
        .enumerate()
        .map(|(i, part)| match i {
            0 => part.to_string(),
            i if i % 2 == 1 => format!("``{part}"),
            _ => format!("''{part}"),
        })
        .collect()
}

/// Rows as a LaTeX table (needs `\usepackage{booktabs}`).
pub fn latex(rows: &[Row]) -> String {
    let mut out = String::from(
        "% imex-run report: needs \\usepackage{booktabs}\n\\begin{table}[t]\n\\centering\n\\small\n",
    );
    let _ = writeln!(
        out,
        "\\caption{{{}}}",
        latex_quotes(&latex_escape(&caption(rows))).replace('±', "$\\pm$")
    );
    out.push_str("\\label{tab:qtips}\n\\begin{tabular}{llrrrcccc}\n\\toprule\n");
    out.push_str(
        "configuration & network & seeds & params (true) & params (paper) & paper IoU & mean IoU & loss & accuracy (\\%) \\\\\n\\midrule\n",
    );
    let pm = "$\\pm$";
    for row in rows {
        let _ = writeln!(
            out,
            "{} & {} & {} & {} & {} & {} & {} & {} & {} \\\\",
            latex_escape(&row.group),
            row.network(),
            seeds_text(row),
            row.parameters.total,
            row.parameters.paper_counting,
            row.paper_iou.show(3, 1.0, pm),
            row.mean_iou.show(3, 1.0, pm),
            row.loss.show(4, 1.0, pm),
            row.accuracy.show(2, 100.0, pm),
        );
    }
    out.push_str("\\midrule\n");
    for arch in [Arch::Imex, Arch::Resnet] {
        let paper = paper_row(arch);
        let name = arch.display_name();
        let _ = writeln!(
            out,
            "paper & {name} & -- & -- & {} & {:.3} & -- & {:.4} & {:.2} \\\\",
            paper.parameters,
            paper.paper_iou,
            paper.loss,
            paper.accuracy * 100.0
        );
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    out
}

/// Rows as CSV: every number at full precision, for other tools.
pub fn csv(rows: &[Row]) -> Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "study",
        "group",
        "network",
        "seeds",
        "checkpoint_rule",
        "epochs",
        "params_true",
        "params_paper_counting",
        "paper_iou_mean",
        "paper_iou_std",
        "paper_iou_paper",
        "mean_iou_mean",
        "mean_iou_std",
        "loss_mean",
        "loss_std",
        "loss_paper",
        "accuracy_mean",
        "accuracy_std",
        "accuracy_paper",
    ])?;
    let opt = |s: Option<f64>| s.map_or(String::new(), |v| v.to_string());
    for row in rows {
        let paper = paper_row(row.arch);
        let join = |v: &[String]| v.join(" ");
        writer.write_record([
            row.study.clone(),
            row.group.clone(),
            row.network().to_string(),
            join(&row.seeds.iter().map(u64::to_string).collect::<Vec<_>>()),
            format!("{:?}", row.rule),
            join(&row.epochs.iter().map(usize::to_string).collect::<Vec<_>>()),
            row.parameters.total.to_string(),
            row.parameters.paper_counting.to_string(),
            row.paper_iou.mean.to_string(),
            opt(row.paper_iou.std),
            paper.paper_iou.to_string(),
            row.mean_iou.mean.to_string(),
            opt(row.mean_iou.std),
            row.loss.mean.to_string(),
            opt(row.loss.std),
            paper.loss.to_string(),
            row.accuracy.mean.to_string(),
            opt(row.accuracy.std),
            paper.accuracy.to_string(),
        ])?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_the_sample_standard_deviation() {
        let s = Summary::of(&[0.618, 0.573, 0.550]);
        assert!((s.mean - 0.580333).abs() < 1e-6);
        // √(((0.0377)² + (0.0073)² + (0.0303)²)/2) = 0.03459
        assert!((s.std.unwrap() - 0.034588).abs() < 1e-5);
        assert_eq!(s.show(3, 1.0, " ± "), "0.580 ± 0.035");
        assert_eq!(Summary::of(&[0.5]).show(2, 100.0, " ± "), "50.00");
    }

    #[test]
    fn latex_gets_tex_quotes_and_escapes() {
        assert_eq!(latex_quotes("a \"b\" c \"d\""), "a ``b'' c ``d''");
        assert_eq!(latex_escape("qtips_small 5%"), "qtips\\_small 5\\%");
    }
}

/// The depth table's columns: metrics.csv column, label, decimals.
pub const DEPTH_COLUMNS: [(&str, &str, usize); 7] = [
    ("val_loss", "loss", 4),
    ("val_rmse", "RMSE (m)", 3),
    ("val_abs_rel", "AbsRel", 3),
    ("val_log10", "log10", 3),
    ("val_delta1", "δ<1.25", 3),
    ("val_delta2", "δ<1.25²", 3),
    ("val_delta3", "δ<1.25³", 3),
];

/// One configuration of a depth study: every [`DEPTH_COLUMNS`] metric at the
/// kept checkpoint, over seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthRow {
    pub group: String,
    pub arch: Arch,
    pub seeds: Vec<u64>,
    pub rule: CheckpointRule,
    pub parameters: ParamCounts,
    pub values: Vec<Summary>,
}

impl DepthRow {
    pub fn of(group: &Group) -> Result<Self> {
        let columns = DEPTH_COLUMNS.map(|c| c.0);
        let (_, values) = at_kept_epochs(group, &columns)?;
        let first = &group.runs[0];
        Ok(Self {
            group: group.name.clone(),
            arch: first.config.model.arch,
            seeds: seeds(group),
            rule: first.config.training.checkpoint,
            parameters: ParamCounts::of(&first.config.model),
            values: values.iter().map(|v| Summary::of(v)).collect(),
        })
    }

    fn network(&self) -> &'static str {
        self.arch.display_name()
    }
}

fn depth_caption(rows: &[DepthRow]) -> String {
    let mut rules: Vec<&str> = rows.iter().map(|r| rule_text(r.rule)).collect();
    rules.dedup();
    format!(
        "Depth from one RGB image, validation split. Each run is scored at {}; mean ± sample \
         standard deviation over seeds. RMSE in metres; AbsRel = mean |d̂ − d|/d; log10 = mean \
         |log10 d̂ − log10 d|; δ<t = share of pixels with max(d̂/d, d/d̂) < t (higher is better). \
         The paper's depth numbers are not known to us.",
        rules.join(" or ")
    )
}

/// Depth rows as Markdown (caption above), LaTeX (booktabs) and CSV.
pub fn depth_tables(rows: &[DepthRow]) -> Result<[String; 3]> {
    let labels: Vec<&str> = DEPTH_COLUMNS.iter().map(|c| c.1).collect();
    let mut md = format!(
        "{}\n\n| configuration | network | seeds | params | {} |\n|{}\n",
        depth_caption(rows),
        labels.join(" | "),
        " --- |".repeat(4 + labels.len())
    );
    let mut tex = format!(
        "% imex-run report: needs \\usepackage{{booktabs}}\n\\begin{{table}}[t]\n\\centering\n\\small\n\\caption{{{}}}\n\\label{{tab:depth}}\n\\begin{{tabular}}{{llrr{}}}\n\\toprule\nconfiguration & network & seeds & params & {} \\\\\n\\midrule\n",
        latex_escape(&depth_caption(rows)).replace('±', "$\\pm$"),
        "c".repeat(labels.len()),
        labels
            .iter()
            .map(|l| l
                .replace('δ', "$\\delta$")
                .replace('²', "$^2$")
                .replace('³', "$^3$"))
            .collect::<Vec<_>>()
            .join(" & ")
    );
    let mut csv = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "group".to_string(),
        "network".to_string(),
        "seeds".to_string(),
        "params_true".to_string(),
    ];
    for (column, _, _) in DEPTH_COLUMNS {
        header.extend([format!("{column}_mean"), format!("{column}_std")]);
    }
    csv.write_record(&header)?;
    for row in rows {
        let cells = |pm: &str| -> Vec<String> {
            row.values
                .iter()
                .zip(DEPTH_COLUMNS)
                .map(|(s, (_, _, digits))| s.show(digits, 1.0, pm))
                .collect()
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            row.group,
            row.network(),
            row.seeds.len(),
            row.parameters.total,
            cells(" ± ").join(" | ")
        );
        let _ = writeln!(
            tex,
            "{} & {} & {} & {} & {} \\\\",
            latex_escape(&row.group),
            row.network(),
            row.seeds.len(),
            row.parameters.total,
            cells("$\\pm$").join(" & ")
        );
        let mut record = vec![
            row.group.clone(),
            row.network().to_string(),
            row.seeds
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            row.parameters.total.to_string(),
        ];
        for s in &row.values {
            record.extend([
                s.mean.to_string(),
                s.std.map_or(String::new(), |v| v.to_string()),
            ]);
        }
        csv.write_record(&record)?;
    }
    tex.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    Ok([md, tex, String::from_utf8(csv.into_inner()?)?])
}
