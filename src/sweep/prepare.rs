//! The data a sweep's points share, made before any of them starts.

use super::spec::Sweep;
use crate::config::{DataSection, Dataset};
use crate::data::Prepared;
use anyhow::Result;

/// Generates the Q-tips sets the points need and lack, once each, before
/// any point starts: points started together would each generate the same
/// folder and all but the first would find it taken.
pub fn prepare_data(sweep: &Sweep) -> Result<()> {
    let mut seen: Vec<&DataSection> = Vec::new();
    for point in &sweep.points {
        let data = &point.config.data;
        let qtips = data.dataset == Dataset::Qtips;
        if qtips && data.generate && !data.path.exists() && !seen.contains(&data) {
            seen.push(data);
            Prepared::load(&point.config)?;
        }
    }
    Ok(())
}
