//! The studies' CSV files: the metrics' columns and values, rows to bytes.

use crate::metrics::SegmentationMetrics;
use anyhow::Result;

/// The four segmentation metrics of a CSV row.
pub fn metric_values(m: &SegmentationMetrics) -> [f64; 4] {
    [m.loss(), m.pixel_accuracy(), m.mean_iou(), m.paper_iou()]
}

pub const METRIC_COLUMNS: [&str; 4] = ["loss", "pixel_accuracy", "mean_iou", "paper_iou"];

/// A CSV file in memory: header, then rows.
pub fn csv_bytes(header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(row)?;
    }
    Ok(writer.into_inner()?)
}
