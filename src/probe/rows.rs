//! The studies' CSV files: the metrics' columns and values, rows to bytes.

use crate::metrics::{EpochMetrics, SegmentationMetrics};
use anyhow::Result;

/// The four segmentation metrics of a CSV row.
pub fn metric_values(m: &SegmentationMetrics) -> [f64; 4] {
    [m.loss(), m.pixel_accuracy(), m.mean_iou(), m.paper_iou()]
}

pub const METRIC_COLUMNS: [&str; 4] = ["loss", "pixel_accuracy", "mean_iou", "paper_iou"];

/// The metrics of a CSV row, for either task: segmentation's four
/// ([`METRIC_COLUMNS`]), or the depth metrics of `metrics.csv` (loss, rmse,
/// abs_rel, log10, delta1–3).
pub fn task_metrics(m: &EpochMetrics) -> Vec<(String, f64)> {
    match m {
        EpochMetrics::Segmentation(m) => METRIC_COLUMNS
            .iter()
            .map(|c| c.to_string())
            .zip(metric_values(m))
            .collect(),
        EpochMetrics::Depth(_) => m.named_values(),
    }
}

/// A CSV file in memory: header, then rows.
pub fn csv_bytes(header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(row)?;
    }
    Ok(writer.into_inner()?)
}
