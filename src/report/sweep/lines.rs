//! A sweep's metric against each varied key of its main grid, mean ± std
//! over seeds, the extra blocks dashed beside.

use super::cells::{block_name, levels, show_value, varied, Cell, SweepRuns};
use crate::report::figure::{
    legend, Figure, FONT, GREY, LABEL_SIZE, PALETTE, TICK_SIZE, TITLE_SIZE,
};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

/// The extra blocks' dashed lines: apart from the grid's palette.
const EXTRA_COLOURS: [RGBColor; 2] = [BLACK, GREY];

/// One line: a block's cells over one key, the other keys held.
struct Line {
    label: String,
    colour: RGBColor,
    dashed: bool,
    /// (level index, mean, std)
    points: Vec<(f64, f64, f64)>,
}

/// The metric against each varied key of the main grid, one panel per key.
pub struct LinePlots {
    title: String,
    metric: String,
    panels: Vec<(String, Vec<String>, Vec<Line>)>,
}

impl LinePlots {
    pub fn new(sweep: &SweepRuns, cells: &[Cell], metric: &str) -> Option<Self> {
        let keys = &sweep.manifest.keys;
        let axes = varied(cells, 0, keys);
        if axes.is_empty() {
            return None;
        }
        let mut panels = Vec::new();
        for key in &axes {
            let main: Vec<&Cell> = cells.iter().filter(|c| c.block == 0).collect();
            let xs = levels(&main, key);
            let others: Vec<&String> = axes.iter().filter(|k| *k != key).collect();
            // One line per combination of the other keys' values.
            let mut lines: Vec<Line> = Vec::new();
            let mut combos: Vec<Vec<Value>> = Vec::new();
            for c in &main {
                let combo: Vec<Value> = others.iter().filter_map(|k| c.value(k).cloned()).collect();
                if !combos.contains(&combo) {
                    combos.push(combo);
                }
            }
            for (n, combo) in combos.iter().enumerate() {
                let label = others
                    .iter()
                    .zip(combo)
                    .map(|(k, v)| format!("{} = {}", short(k), show_value(v)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let points = line_points(&main, key, &xs, |c| {
                    others.iter().zip(combo).all(|(k, v)| c.value(k) == Some(v))
                });
                lines.push(Line {
                    label: if label.is_empty() {
                        "grid".into()
                    } else {
                        label
                    },
                    colour: PALETTE[n % PALETTE.len()],
                    dashed: false,
                    points,
                });
            }
            // Extra blocks that vary over this key alone: dashed, beside.
            let mut blocks: Vec<usize> = cells.iter().map(|c| c.block).filter(|&b| b > 0).collect();
            blocks.dedup();
            for block in blocks {
                if varied(cells, block, keys).as_slice() == std::slice::from_ref(key) {
                    let of_block: Vec<&Cell> = cells.iter().filter(|c| c.block == block).collect();
                    lines.push(Line {
                        label: block_name(sweep, cells, block),
                        colour: EXTRA_COLOURS[(block - 1) % EXTRA_COLOURS.len()],
                        dashed: true,
                        points: line_points(&of_block, key, &xs, |_| true),
                    });
                }
            }
            // Side by side at each value, so that the std bars do not hide each other.
            let count = lines.len() as f64;
            for (n, line) in lines.iter_mut().enumerate() {
                let dodge = (n as f64 - (count - 1.0) / 2.0) * 0.04;
                for p in &mut line.points {
                    p.0 += dodge;
                }
            }
            panels.push((key.clone(), xs.iter().map(show_value).collect(), lines));
        }
        Some(LinePlots {
            title: format!(
                "sweep {}: {metric} at the kept checkpoint against each key (mean ± std over seeds)",
                sweep.manifest.sweep
            ),
            metric: metric.to_string(),
            panels,
        })
    }
}

/// `model.alpha` → `alpha`.
fn short(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn line_points(
    cells: &[&Cell],
    key: &str,
    xs: &[Value],
    keep: impl Fn(&Cell) -> bool,
) -> Vec<(f64, f64, f64)> {
    xs.iter()
        .enumerate()
        .filter_map(|(i, x)| {
            let c = cells.iter().find(|c| c.value(key) == Some(x) && keep(c))?;
            let s = c.summary()?;
            Some((i as f64, s.mean, s.std.unwrap_or(0.0)))
        })
        .collect()
}

const PANEL: (u32, u32) = (760, 520);

impl Figure for LinePlots {
    fn size(&self) -> (u32, u32) {
        (
            PANEL.0 * self.panels.len().min(2) as u32,
            50 + PANEL.1 * self.panels.len().div_ceil(2) as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let root = root.titled(&self.title, (FONT, TITLE_SIZE - 6))?;
        let columns = self.panels.len().min(2);
        let areas = root.split_evenly((self.panels.len().div_ceil(2), columns));
        for ((key, levels, lines), area) in self.panels.iter().zip(&areas) {
            let ys = lines
                .iter()
                .flat_map(|l| l.points.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2]));
            let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
                (a.min(y), b.max(y))
            });
            let (lo, hi) = match lo < hi {
                true => (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)),
                false if lo.is_finite() => (lo - 0.5, lo + 0.5),
                false => (0.0, 1.0),
            };
            let n = levels.len() as f64;
            let mut chart = ChartBuilder::on(area)
                .margin(14)
                .x_label_area_size(48)
                .y_label_area_size(72)
                .build_cartesian_2d(-0.3..(n - 0.7), lo..hi)?;
            let names = levels.clone();
            chart
                .configure_mesh()
                .x_desc(key.as_str())
                .y_desc(self.metric.as_str())
                .axis_desc_style((FONT, LABEL_SIZE))
                .label_style((FONT, TICK_SIZE))
                .light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.08))
                .x_labels(levels.len() + 1)
                // The key's values, evenly spaced (they need not be numbers).
                .x_label_formatter(&move |x| {
                    let i = x.round();
                    match (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                        true => names[i as usize].clone(),
                        false => String::new(),
                    }
                })
                .draw()?;
            for line in lines {
                let style = line.colour.stroke_width(3);
                let pts: Vec<(f64, f64)> = line.points.iter().map(|p| (p.0, p.1)).collect();
                let series = match line.dashed {
                    true => chart.draw_series(DashedLineSeries::new(pts.clone(), 10, 6, style))?,
                    false => chart.draw_series(LineSeries::new(pts.clone(), style))?,
                };
                let dashed = line.dashed;
                series.label(&line.label).legend(move |(x, y)| {
                    let end = if dashed { x + 12 } else { x + 28 };
                    PathElement::new(vec![(x, y), (end, y)], style)
                });
                chart.draw_series(line.points.iter().map(|&(x, m, s)| {
                    PathElement::new(vec![(x, m - s), (x, m + s)], line.colour.stroke_width(2))
                }))?;
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, line.colour.filled())))?;
            }
            legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
        Ok(())
    }
}
