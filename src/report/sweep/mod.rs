//! A sweep's figures and table: the chosen metric at each point's kept
//! checkpoint, mean ± sample std over seeds, as a heat map over the main
//! grid's two varied keys (the `[[sweep.extra]]` runs, e.g. the ResNet
//! baseline, as a row or column beside it on the same colour scale), as
//! lines against each varied key, and as a table of every point.
//!
//! A sweep is recognised by `sweep.json` in its folder (written by
//! `imex-run sweep`); its runs are drawn here and not as ordinary studies.

mod cells;
mod heat_map;
mod lines;
mod tables;

pub use cells::{cells, default_metric, show_value, take_sweeps, Cell, SweepRuns};
pub use heat_map::HeatMap;
pub use lines::LinePlots;
pub use tables::tables;

use super::figure::save;
use anyhow::Result;
use cells::varied;
use std::path::{Path, PathBuf};

/// Every figure and table of one sweep into `out`: `S_heatmap`, `S_lines`
/// (PNG and SVG) and `S_table.{md,tex,csv}`; what cannot be drawn is said
/// in `skipped`.
pub fn draw(
    sweep: &SweepRuns,
    out: &Path,
    metric: Option<&str>,
) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let metric = metric.unwrap_or_else(|| default_metric(sweep));
    let name = &sweep.manifest.sweep;
    let (mut files, mut skipped) = (Vec::new(), Vec::new());
    if let Some(run) = sweep.runs.iter().flatten().find(|r| !r.metrics.has(metric)) {
        return Err(crate::error::Failure::Data(format!(
            "sweep {name}: {} has no column `{metric}` (--sweep-metric names a metrics.csv column)",
            run.metrics.file.display()
        ))
        .into());
    }
    let cells = cells(sweep, metric)?;
    if cells.iter().all(|c| c.seeds.is_empty()) {
        skipped.push(format!(
            "sweep {name} ({}): no point has finished yet; nothing to draw",
            sweep.dir.display()
        ));
        return Ok((files, skipped));
    }
    match HeatMap::new(sweep, &cells, metric) {
        Some(map) => files.extend(save(&map, &out.join(format!("{name}_heatmap")))?),
        None => skipped.push(format!(
            "sweep {name}: the heat map needs a main grid of exactly two varied keys besides \
             experiment.seed (it varies {:?}); lines and table drawn",
            varied(&cells, 0, &sweep.manifest.keys)
        )),
    }
    if let Some(lines) = LinePlots::new(sweep, &cells, metric) {
        files.extend(save(&lines, &out.join(format!("{name}_lines")))?);
    }
    for (ext, text) in ["md", "tex", "csv"]
        .iter()
        .zip(tables(sweep, &cells, metric)?)
    {
        let path = out.join(format!("{name}_table.{ext}"));
        crate::files::write_atomically(&path, text.as_bytes())?;
        files.push(path);
    }
    Ok((files, skipped))
}
