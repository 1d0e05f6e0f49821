//! Metric-against-epoch figures: one or more panels of lines, each line
//! optionally with a shaded band (the spread over seeds).

use super::figure::{legend, Figure, FONT, LABEL_SIZE, TICK_SIZE, TITLE_SIZE};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::ops::Range;

/// One line: e.g. "IMEXnet, validation".
#[derive(Debug, Clone)]
pub struct Curve {
    pub label: String,
    pub colour: RGBColor,
    /// Dashed lines are for training metrics, solid for validation.
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
    /// (x, low, high): the shaded spread around the line.
    pub band: Option<Vec<(f64, f64, f64)>>,
}

/// One set of axes.
#[derive(Debug, Clone)]
pub struct CurvePanel {
    pub title: String,
    /// The x axis: "epoch" for training curves.
    pub x_label: String,
    pub y_label: String,
    /// Fixed y limits (the authors plotted the loss on [0, 1.5]); None: fit the data.
    pub y_range: Option<Range<f64>>,
    pub curves: Vec<Curve>,
}

/// Panels in rows of two (one panel: full width), under a title.
#[derive(Debug, Clone)]
pub struct CurveGrid {
    pub title: String,
    pub panels: Vec<CurvePanel>,
}

impl CurveGrid {
    pub fn new(title: &str, panels: Vec<CurvePanel>) -> Self {
        Self {
            title: title.to_string(),
            panels,
        }
    }

    fn columns(&self) -> usize {
        self.panels.len().clamp(1, 2)
    }
}

const PANEL: (u32, u32) = (760, 520);
const HEADER: u32 = 50;

impl Figure for CurveGrid {
    fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.columns()).max(1) as u32;
        (PANEL.0 * self.columns() as u32, HEADER + PANEL.1 * rows)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let root = root.titled(&self.title, (FONT, TITLE_SIZE))?;
        let rows = self.panels.len().div_ceil(self.columns()).max(1);
        let areas = root.split_evenly((rows, self.columns()));
        for (panel, area) in self.panels.iter().zip(&areas) {
            draw_panel(panel, area)?;
        }
        Ok(())
    }
}

/// The x and y limits that show every point and band, padded by 5 % in y.
fn limits(panel: &CurvePanel) -> (Range<f64>, Range<f64>) {
    let xs = panel
        .curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let (x0, x1) = if x0 < x1 {
        (x0, x1)
    } else {
        (x0 - 1.0, x0 + 1.0)
    };
    let y_range = panel.y_range.clone().unwrap_or_else(|| {
        let ys = panel.curves.iter().flat_map(|c| {
            let band = c.band.iter().flatten().flat_map(|b| [b.1, b.2]);
            c.points.iter().map(|p| p.1).chain(band).collect::<Vec<_>>()
        });
        let (lo, hi) = ys
            .filter(|y| y.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
                (a.min(y), b.max(y))
            });
        let pad = ((hi - lo) * 0.05).max(1e-3);
        if lo <= hi {
            lo - pad..hi + pad
        } else {
            0.0..1.0
        }
    });
    (x0..x1, y_range)
}

/// A tick's label: epochs are whole numbers, so none between them; other
/// axes (noise σ, attack ε) as the value, without trailing zeros.
fn x_tick(x: &f64, epochs: bool) -> String {
    match (epochs, x.fract() == 0.0) {
        (true, true) => format!("{x:.0}"),
        (true, false) => String::new(),
        (false, _) => {
            let text = format!("{x:.3}");
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }
}

fn draw_panel<DB: DrawingBackend>(panel: &CurvePanel, area: &DrawingArea<DB, Shift>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (x_range, y_range) = limits(panel);
    let epochs = panel.x_label == "epoch";
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, LABEL_SIZE + 2))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x_range, y_range)?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .axis_desc_style((FONT, LABEL_SIZE))
        .label_style((FONT, TICK_SIZE))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .x_label_formatter(&|x| x_tick(x, epochs))
        .draw()?;
    for curve in &panel.curves {
        if let Some(band) = &curve.band {
            let outline: Vec<(f64, f64)> = band
                .iter()
                .map(|b| (b.0, b.2))
                .chain(band.iter().rev().map(|b| (b.0, b.1)))
                .collect();
            chart.draw_series(std::iter::once(Polygon::new(
                outline,
                curve.colour.mix(0.18).filled(),
            )))?;
        }
    }
    for curve in &panel.curves {
        let style = curve.colour.stroke_width(3);
        let legend_style = style;
        let dashed = curve.dashed;
        let series = if dashed {
            chart.draw_series(DashedLineSeries::new(
                curve.points.iter().copied(),
                10,
                6,
                style,
            ))?
        } else {
            chart.draw_series(LineSeries::new(curve.points.iter().copied(), style))?
        };
        series.label(&curve.label).legend(move |(x, y)| {
            let end = if dashed { x + 12 } else { x + 28 };
            PathElement::new(vec![(x, y), (end, y)], legend_style)
        });
        chart.draw_series(
            curve
                .points
                .iter()
                .map(|&p| Circle::new(p, 3, curve.colour.filled())),
        )?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_cover_points_and_bands() {
        let panel = CurvePanel {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            y_range: None,
            curves: vec![Curve {
                label: String::new(),
                colour: BLACK,
                dashed: false,
                points: vec![(1.0, 0.5), (3.0, 0.7)],
                band: Some(vec![(1.0, 0.4, 0.6), (3.0, 0.6, 0.9)]),
            }],
        };
        let (x, y) = limits(&panel);
        assert_eq!(x, 1.0..3.0);
        assert!(y.start < 0.4 && y.end > 0.9 && y.end < 0.95);
    }

    #[test]
    fn ticks_label_epochs_whole_and_other_axes_as_they_are() {
        assert_eq!(x_tick(&3.0, true), "3");
        assert_eq!(x_tick(&2.5, true), "");
        assert_eq!(x_tick(&0.0, false), "0");
        assert_eq!(x_tick(&0.1, false), "0.1");
        assert_eq!(x_tick(&0.25, false), "0.25");
        assert_eq!(x_tick(&2.0, false), "2");
    }
}
