//! The heat map of a sweep: the main grid's two varied keys, the extra
//! blocks as rows or columns beside it on the same colour scale.

use super::cells::{block_name, levels, show_value, varied, Cell, SweepRuns};
use crate::report::figure::{
    centred_text, colour_bar, viridis, Figure, FONT, LABEL_SIZE, TICK_SIZE, TITLE_SIZE,
};
use crate::report::table::Summary;
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

/// A row (or column) of extra runs on one of the heat map's axes.
struct Strip {
    label: String,
    /// Aligned with the axis' levels.
    cells: Vec<Option<Summary>>,
}

/// The heat map: main-grid cells over (x, y), extra blocks beside.
pub struct HeatMap {
    title: String,
    metric: String,
    x_key: String,
    y_key: String,
    x_levels: Vec<String>,
    y_levels: Vec<String>,
    /// grid[y][x]
    grid: Vec<Vec<Option<Summary>>>,
    /// Extra rows under the map (they vary over x).
    rows: Vec<Strip>,
    /// Extra columns right of it (they vary over y).
    columns: Vec<Strip>,
    range: (f64, f64),
}

const CELL: (i32, i32) = (120, 70);
const LEFT: i32 = 170;
const TOP: i32 = 80;
const GAP: i32 = 24;
const BAR: i32 = 130;

impl HeatMap {
    /// None unless the main grid varies exactly two keys besides the seed.
    pub fn new(sweep: &SweepRuns, cells: &[Cell], metric: &str) -> Option<Self> {
        let keys = &sweep.manifest.keys;
        let axes = varied(cells, 0, keys);
        let [x_key, y_key] = axes.as_slice() else {
            return None;
        };
        let main: Vec<&Cell> = cells.iter().filter(|c| c.block == 0).collect();
        let (xs, ys) = (levels(&main, x_key), levels(&main, y_key));
        let find = |cs: &[&Cell], key: &str, v: &Value, other: Option<(&str, &Value)>| {
            cs.iter()
                .find(|c| {
                    c.value(key) == Some(v) && other.is_none_or(|(k, w)| c.value(k) == Some(w))
                })
                .and_then(|c| c.summary())
        };
        let grid: Vec<Vec<Option<Summary>>> = ys
            .iter()
            .map(|y| {
                xs.iter()
                    .map(|x| find(&main, x_key.as_str(), x, Some((y_key.as_str(), y))))
                    .collect()
            })
            .collect();
        let (mut rows, mut columns) = (Vec::new(), Vec::new());
        let blocks: Vec<usize> = {
            let mut b: Vec<usize> = cells.iter().map(|c| c.block).filter(|&b| b > 0).collect();
            b.dedup();
            b
        };
        for block in blocks {
            let of_block: Vec<&Cell> = cells.iter().filter(|c| c.block == block).collect();
            let label = block_name(sweep, cells, block);
            match varied(cells, block, keys).as_slice() {
                [k] if k == x_key => rows.push(Strip {
                    label,
                    cells: xs
                        .iter()
                        .map(|x| find(&of_block, x_key.as_str(), x, None))
                        .collect(),
                }),
                [k] if k == y_key => columns.push(Strip {
                    label,
                    cells: ys
                        .iter()
                        .map(|y| find(&of_block, y_key.as_str(), y, None))
                        .collect(),
                }),
                _ => {}
            }
        }
        let all = grid
            .iter()
            .flatten()
            .chain(rows.iter().chain(&columns).flat_map(|s| &s.cells))
            .flatten()
            .map(|s: &Summary| s.mean);
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let range = match lo < hi {
            true => (lo, hi),
            false if lo.is_finite() => (lo - 0.5, lo + 0.5),
            false => (0.0, 1.0),
        };
        Some(HeatMap {
            title: format!(
                "sweep {}: {metric} (mean ± std over seeds)",
                sweep.manifest.sweep
            ),
            metric: metric.to_string(),
            x_key: x_key.clone(),
            y_key: y_key.clone(),
            x_levels: xs.iter().map(show_value).collect(),
            y_levels: ys.iter().map(show_value).collect(),
            grid,
            rows,
            columns,
            range,
        })
    }

    fn colour(&self, v: f64) -> RGBColor {
        viridis((v - self.range.0) / (self.range.1 - self.range.0))
    }

    fn draw_cell<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (x, y): (i32, i32),
        cell: Option<&Summary>,
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let corner = [(x, y), (x + CELL.0 - 2, y + CELL.1 - 2)];
        let Some(s) = cell else {
            area.draw(&Rectangle::new(corner, RGBColor(235, 235, 235).filled()))?;
            return centred_text(
                area,
                "not run",
                (x + CELL.0 / 2, y + CELL.1 / 2 - 10),
                TICK_SIZE,
            );
        };
        let colour = self.colour(s.mean);
        area.draw(&Rectangle::new(corner, colour.filled()))?;
        // Dark text on the light end of viridis, white on the dark end.
        let light =
            0.299 * colour.0 as f64 + 0.587 * colour.1 as f64 + 0.114 * colour.2 as f64 > 140.0;
        let ink = if light { BLACK } else { WHITE };
        let style = |size: u32| {
            TextStyle::from((FONT, size).into_font())
                .pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Top,
                ))
                .color(&ink)
        };
        area.draw(&Text::new(
            format!("{:.3}", s.mean),
            (x + CELL.0 / 2, y + 12),
            style(LABEL_SIZE),
        ))?;
        let spread = match s.std {
            Some(sd) => format!("± {sd:.3} (n={})", s.n),
            None => format!("(n={})", s.n),
        };
        area.draw(&Text::new(
            spread,
            (x + CELL.0 / 2, y + 40),
            style(TICK_SIZE - 3),
        ))?;
        Ok(())
    }
}

impl Figure for HeatMap {
    fn size(&self) -> (u32, u32) {
        let (nx, ny) = (self.x_levels.len() as i32, self.y_levels.len() as i32);
        let extra_w = match self.columns.len() as i32 {
            0 => 0,
            k => GAP + k * CELL.0,
        };
        let extra_h = match self.rows.len() as i32 {
            0 => 0,
            k => GAP + k * CELL.1,
        };
        let w = LEFT + nx * CELL.0 + extra_w + BAR + 20;
        let h = TOP + ny * CELL.1 + extra_h + 80;
        (w.max(700) as u32, h as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (w, _) = self.size();
        centred_text(root, &self.title, (w as i32 / 2, 12), TITLE_SIZE - 4)?;
        let (nx, ny) = (self.x_levels.len() as i32, self.y_levels.len() as i32);
        for (j, label) in self.y_levels.iter().enumerate() {
            let y = TOP + j as i32 * CELL.1;
            centred_text(root, label, (LEFT - 30, y + CELL.1 / 2 - 10), TICK_SIZE)?;
            for (i, cell) in self.grid[j].iter().enumerate() {
                self.draw_cell(root, (LEFT + i as i32 * CELL.0, y), cell.as_ref())?;
            }
        }
        centred_text(root, &self.y_key, (LEFT / 2, TOP - 30), LABEL_SIZE - 2)?;
        // Extra rows under the map.
        let below = TOP + ny * CELL.1 + GAP;
        for (r, strip) in self.rows.iter().enumerate() {
            let y = below + r as i32 * CELL.1;
            centred_text(
                root,
                &strip.label,
                (LEFT / 2 - 10, y + CELL.1 / 2 - 10),
                TICK_SIZE,
            )?;
            for (i, cell) in strip.cells.iter().enumerate() {
                self.draw_cell(root, (LEFT + i as i32 * CELL.0, y), cell.as_ref())?;
            }
        }
        let bottom = below - GAP
            + match self.rows.len() as i32 {
                0 => 0,
                k => GAP + k * CELL.1,
            };
        for (i, label) in self.x_levels.iter().enumerate() {
            centred_text(
                root,
                label,
                (LEFT + i as i32 * CELL.0 + CELL.0 / 2, bottom + 6),
                TICK_SIZE,
            )?;
        }
        centred_text(
            root,
            &self.x_key,
            (LEFT + nx * CELL.0 / 2, bottom + 34),
            LABEL_SIZE - 2,
        )?;
        // Extra columns right of it.
        let right = LEFT + nx * CELL.0 + GAP;
        for (c, strip) in self.columns.iter().enumerate() {
            let x = right + c as i32 * CELL.0;
            centred_text(root, &strip.label, (x + CELL.0 / 2, TOP - 30), TICK_SIZE)?;
            for (j, cell) in strip.cells.iter().enumerate() {
                self.draw_cell(root, (x, TOP + j as i32 * CELL.1), cell.as_ref())?;
            }
        }
        let bar_x = right
            + match self.columns.len() as i32 {
                0 => -GAP + 10,
                k => k * CELL.0 + 10,
            };
        let bar_h = (ny * CELL.1).max(200) + 60;
        let bar = root
            .clone()
            .shrink((bar_x, TOP - 30), (BAR as u32, bar_h as u32));
        colour_bar(&bar, &self.metric, self.range, viridis)?;
        Ok(())
    }
}
