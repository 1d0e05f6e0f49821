//! The paper's Figure 1: how far information travels through an explicit
//! network and through the semi-implicit one.
//!
//! An impulse is pushed through linear networks with a fixed smoothing
//! operator L (the 9-point Laplacian stencil of the authors' code, without
//! its 1e-2 scale): the ResNet step Y ← Y − hLY (3×3, so one pixel per step)
//! for 20 and for 5 steps, and the IMEX step of the authors' code
//! Y ← (I + hαL)⁻¹(Y − hLY) for 5 steps, through the same exact periodic
//! solve the networks use. The explicit kernel's second moment is 2h per
//! step; the implicit step adds 2hα more, so its spread grows as 2n(h + hα).

use super::figure::{
    axes, colour_bar, legend, viridis, Figure, Raster, BLUE, FONT, GREEN, GREY, LABEL_SIZE,
    TITLE_SIZE, VERMILLION,
};
use crate::model::explicit::conv3x3;
use crate::model::implicit::FourierBasis;
use crate::model::network::LAPLACIAN_STENCIL;
use anyhow::Result;
use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use plotters::coord::Shift;
use plotters::prelude::*;

type B = Flex;

/// The demonstration's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demonstration {
    /// Image side (the impulse sits at its centre).
    pub size: usize,
    /// Step size; the explicit step is stable for h ≤ 2/max ŝ = 0.375.
    pub h: f64,
    /// Strength of the implicit term.
    pub alpha: f64,
}

impl Default for Demonstration {
    fn default() -> Self {
        Self {
            size: 96,
            h: 0.25,
            alpha: 40.0,
        }
    }
}

/// The smoothing operator L: the authors' Laplacian stencil times 100,
/// [[-1,-4,-1],[-4,20,-4],[-1,-4,-1]]/6 ≈ −Δ.
fn stencil() -> [f32; 9] {
    LAPLACIAN_STENCIL.map(|s| s * 100.0)
}

/// A network's output, row-major `size × size`.
#[derive(Debug, Clone)]
pub struct Response {
    pub label: String,
    pub values: Vec<f32>,
}

impl Demonstration {
    pub fn impulse(&self) -> Vec<f32> {
        let mut image = vec![0.0; self.size * self.size];
        image[self.centre() * self.size + self.centre()] = 1.0;
        image
    }

    fn centre(&self) -> usize {
        self.size / 2
    }

    fn tensor(&self, image: &[f32]) -> Tensor<B, 4> {
        let data = TensorData::new(image.to_vec(), [1, 1, self.size, self.size]);
        Tensor::from_data(data, &Default::default())
    }

    fn explicit_step(&self, y: Tensor<B, 4>) -> Tensor<B, 4> {
        let kernel = Tensor::from_data(
            TensorData::new(stencil().to_vec(), [1, 1, 3, 3]),
            &y.device(),
        );
        y.clone() - conv3x3(y, kernel).mul_scalar(self.h)
    }

    /// `steps` ResNet steps Y ← Y − hLY.
    pub fn explicit(&self, image: &[f32], steps: usize) -> Vec<f32> {
        let y = (0..steps).fold(self.tensor(image), |y, _| self.explicit_step(y));
        y.into_data().to_vec().expect("f32 image")
    }

    /// `steps` IMEX steps Y ← (I + hαL)⁻¹(Y − hLY).
    pub fn semi_implicit(&self, image: &[f32], steps: usize) -> Vec<f32> {
        let device = Default::default();
        let basis = FourierBasis::<B>::new(self.size, self.size, &device);
        let stencil = Tensor::from_data(TensorData::new(stencil().to_vec(), [3, 3]), &device);
        let lambda = basis.symbol_of_stencil(stencil);
        let y = (0..steps).fold(self.tensor(image), |y, _| {
            basis.solve(self.explicit_step(y), lambda.clone(), self.h * self.alpha)
        });
        y.into_data().to_vec().expect("f32 image")
    }

    /// The three networks of the figure on the impulse.
    pub fn responses(&self) -> Vec<Response> {
        let impulse = self.impulse();
        vec![
            Response {
                label: "ResNet, 20 steps".into(),
                values: self.explicit(&impulse, 20),
            },
            Response {
                label: "ResNet, 5 steps".into(),
                values: self.explicit(&impulse, 5),
            },
            Response {
                label: format!("IMEX, 5 steps, hα = {}", self.h * self.alpha),
                values: self.semi_implicit(&impulse, 5),
            },
        ]
    }

    /// Chebyshev distance from the centre of the farthest pixel with
    /// |Y| > `fraction` · max|Y| (fraction 0: the exact support).
    pub fn reach(&self, values: &[f32], fraction: f32) -> usize {
        let peak = values.iter().fold(0f32, |m, v| m.max(v.abs()));
        let c = self.centre() as isize;
        values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.abs() > fraction * peak)
            .map(|(i, _)| {
                let (y, x) = ((i / self.size) as isize, (i % self.size) as isize);
                (y - c).abs().max((x - c).abs()) as usize
            })
            .max()
            .unwrap_or(0)
    }

    /// Σ Y and the second moment Σ (x − c)² Y along one axis.
    pub fn moments(&self, values: &[f32]) -> (f64, f64) {
        let c = self.centre() as f64;
        values
            .iter()
            .enumerate()
            .fold((0.0, 0.0), |(mass, second), (i, &v)| {
                let dx = (i % self.size) as f64 - c;
                (mass + v as f64, second + dx * dx * v as f64)
            })
    }
}

/// Decades shown in the heat maps: log10(|Y| / max|Y|) ∈ [−FLOOR, 0].
const FLOOR: f64 = 6.0;
/// The share of the peak that counts as "arrived" in the captions.
const ARRIVED: f32 = 1e-3;

/// Heat maps of the three responses and their profiles through the centre.
pub struct PropagationFigure {
    pub demo: Demonstration,
    pub responses: Vec<Response>,
}

impl PropagationFigure {
    pub fn new(demo: Demonstration) -> Self {
        Self {
            responses: demo.responses(),
            demo,
        }
    }
}

fn log_magnitude(values: &[f32]) -> Vec<f64> {
    let peak = peak(values);
    values
        .iter()
        .map(|&v| ((v.abs() as f64) / peak).log10().max(-FLOOR))
        .collect()
}

/// A heat map of log10(|v| / max|v|) on [−FLOOR, 0] in viridis, pixels that
/// are exactly zero black.
pub fn log_heat_map(values: &[f32], width: usize, height: usize) -> Raster {
    let logs = log_magnitude(values);
    Raster::from_fn(width, height, |i| {
        if values[i] == 0.0 {
            BLACK
        } else {
            viridis(1.0 + logs[i] / FLOOR)
        }
    })
}

/// A line of a [`Profile`]: label, colour, points.
pub type Line = (String, RGBColor, Vec<(f64, f64)>);

/// A line plot of log-magnitudes along a row of pixels.
pub struct Profile<'a> {
    pub caption: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub x: std::ops::Range<f64>,
    pub y: std::ops::Range<f64>,
    /// Label, colour and points of each line.
    pub lines: Vec<Line>,
    /// x positions of dashed grey vertical lines, and their legend label.
    pub marks: (Vec<f64>, &'a str),
}

/// Draws `profile` in `area`.
pub fn draw_profile<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    profile: &Profile,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .caption(profile.caption, (FONT, LABEL_SIZE))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(profile.x.clone(), profile.y.clone())?;
    axes(&mut chart, profile.x_desc, profile.y_desc)?;
    let (marks, mark_label) = &profile.marks;
    for (k, &x) in marks.iter().enumerate() {
        let style = GREY.stroke_width(2);
        let line = vec![(x, profile.y.start), (x, profile.y.end)];
        let series = chart.draw_series(DashedLineSeries::new(line, 8, 6, style))?;
        if k == 0 {
            series
                .label(*mark_label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], style));
        }
    }
    for (label, colour, points) in &profile.lines {
        let style = colour.stroke_width(3);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 28, y)], style));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}

const SCALE: u32 = 3;
const COLOURS: [RGBColor; 3] = [VERMILLION, GREEN, BLUE];

impl Figure for PropagationFigure {
    fn size(&self) -> (u32, u32) {
        (1500, 1000)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let root = root.titled(
            "Information propagation from an impulse: explicit vs semi-implicit steps",
            (FONT, TITLE_SIZE),
        )?;
        let (maps, profile) = root.split_vertically(440);
        let (maps, bar) = maps.split_horizontally(1380);
        let side = self.demo.size as u32 * SCALE;
        let inputs = std::iter::once(("input: impulse".to_string(), self.demo.impulse()));
        let panels = inputs.chain(self.responses.iter().map(|r| {
            let reach = self.demo.reach(&r.values, ARRIVED);
            (
                format!("{}: 0.1 % within {reach} px", r.label),
                r.values.clone(),
            )
        }));
        for (k, (title, values)) in panels.enumerate() {
            let x = 20 + k as i32 * (side as i32 + 40);
            super::figure::centred_text(&maps, &title, (x + side as i32 / 2, 10), LABEL_SIZE - 2)?;
            let raster = log_heat_map(&values, self.demo.size, self.demo.size);
            raster.enlarged(SCALE).draw(&maps, (x, 40))?;
        }
        colour_bar(&bar, "log10 |Y| / max |Y|", (-FLOOR, 0.0), viridis)?;

        let half = self.demo.size as f64 / 2.0;
        let row = self.demo.size / 2;
        let lines = self
            .responses
            .iter()
            .zip(COLOURS)
            .map(|(response, colour)| {
                let values = &response.values[row * self.demo.size..(row + 1) * self.demo.size];
                let peak = peak(&response.values);
                (
                    response.label.clone(),
                    colour,
                    row_profile(values, peak, half),
                )
            })
            .collect();
        draw_profile(
            &profile,
            &Profile {
                caption: "profile through the centre row (black pixels above: exactly zero)",
                x_desc: "distance from the impulse (pixels)",
                y_desc: "log10 |Y| / max |Y|",
                x: -half..half,
                y: -12.0..0.5,
                lines,
                marks: (Vec::new(), ""),
            },
        )
    }
}

/// max |v|.
pub fn peak(values: &[f32]) -> f64 {
    values.iter().fold(0f32, |m, v| m.max(v.abs())) as f64
}

/// (x − origin, log10 |v| / peak) along a row of a map, zeros left out.
pub fn row_profile(values: &[f32], peak: f64, origin: f64) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(x, v)| (x, v.abs() as f64))
        .filter(|(_, v)| *v > 0.0)
        .map(|(x, v)| (x as f64 - origin, (v / peak).log10()))
        .collect()
}

/// One network's effective receptive fields, as `imex-run probe` measures
/// them: E_p(q) = mean over images of Σ_c |∂z_c(p)/∂x(q)| for each probed
/// output pixel p, row-major.
#[derive(Debug, Clone)]
pub struct SensitivityRow {
    /// The network, e.g. "IMEXnet, seed 0".
    pub label: String,
    pub colour: RGBColor,
    pub maps: Vec<Vec<f32>>,
    /// The radius holding half of each map's mass (pixels).
    pub r50: Vec<f64>,
}

/// The trained networks' receptive fields in the layout of the propagation
/// figure: log-scale heat maps (a row per network, a column per pixel p),
/// and the profile through the first p's row.
pub struct SensitivityMaps {
    pub title: String,
    pub width: usize,
    pub height: usize,
    /// The probed pixels (row, column), as the maps are ordered.
    pub positions: Vec<(usize, usize)>,
    pub rows: Vec<SensitivityRow>,
    /// How far 3×3 steps alone reach (pixels): the explicit receptive field.
    pub explicit_radius: usize,
}

const MAP_LABEL: i32 = 120;
const MAP_GAP: i32 = 50;
const MAP_TOP: i32 = 40;
const PROFILE_HEIGHT: u32 = 420;

impl SensitivityMaps {
    fn side(&self) -> i32 {
        self.width as i32 * SCALE as i32
    }

    /// From one column of maps to the next: room for the captions too.
    fn pitch(&self) -> i32 {
        self.side().max(200) + MAP_GAP
    }
}

impl Figure for SensitivityMaps {
    fn size(&self) -> (u32, u32) {
        let columns = self.positions.len() as i32;
        let rows = self.rows.len() as i32;
        let width = MAP_LABEL + columns * self.pitch() + 150;
        let height = 50 + MAP_TOP + rows * (self.height as i32 * SCALE as i32 + MAP_GAP);
        (width.max(1200) as u32, height as u32 + PROFILE_HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let root = root.titled(&self.title, (FONT, TITLE_SIZE))?;
        let (full_width, full_height) = root.dim_in_pixel();
        let (maps, profile) = root.split_vertically(full_height - PROFILE_HEIGHT);
        let (maps, bar) = maps.split_horizontally(full_width - 140);
        let (side, map_height) = (self.side(), self.height as i32 * SCALE as i32);
        let scale = SCALE as i32;
        for (k, &(row, column)) in self.positions.iter().enumerate() {
            let x = MAP_LABEL + k as i32 * self.pitch();
            let title = format!("p = ({row}, {column})");
            super::figure::centred_text(&maps, &title, (x + side / 2, 5), LABEL_SIZE - 2)?;
        }
        for (r, network) in self.rows.iter().enumerate() {
            let y = MAP_TOP + r as i32 * (map_height + MAP_GAP);
            for (line, text) in network.label.split(", ").enumerate() {
                super::figure::centred_text(
                    &maps,
                    text,
                    (MAP_LABEL / 2, y + map_height / 2 - 20 + 24 * line as i32),
                    LABEL_SIZE - 2,
                )?;
            }
            for (k, (map, &(row, column))) in network.maps.iter().zip(&self.positions).enumerate() {
                let x = MAP_LABEL + k as i32 * self.pitch();
                log_heat_map(map, self.width, self.height)
                    .enlarged(SCALE)
                    .draw(&maps, (x, y))?;
                let (px, py) = (x + column as i32 * scale, y + row as i32 * scale);
                maps.draw(&Rectangle::new(
                    [(px - 3, py - 3), (px + scale + 2, py + scale + 2)],
                    WHITE.stroke_width(1),
                ))?;
                let caption = format!("half the mass within {:.1} px", network.r50[k]);
                super::figure::centred_text(
                    &maps,
                    &caption,
                    (x + side / 2, y + map_height + 6),
                    LABEL_SIZE - 4,
                )?;
            }
        }
        colour_bar(&bar, "log10 E_p / max E_p", (-FLOOR, 0.0), viridis)?;

        let (row, column) = self.positions[0];
        let lines: Vec<Line> = self
            .rows
            .iter()
            .map(|network| {
                let map = &network.maps[0];
                let values = &map[row * self.width..(row + 1) * self.width];
                let points = row_profile(values, peak(map), column as f64);
                (network.label.clone(), network.colour, points)
            })
            .collect();
        let lowest = lines
            .iter()
            .flat_map(|(_, _, points)| points.iter().map(|p| p.1))
            .fold(0.0, f64::min);
        let radius = self.explicit_radius as f64;
        draw_profile(
            &profile,
            &Profile {
                caption: &format!(
                    "profile through the row of p = ({row}, {column}) (white square above: p)"
                ),
                x_desc: "distance from p along its row (pixels)",
                y_desc: "log10 E_p / max E_p",
                x: -(column as f64)..(self.width - column) as f64,
                y: (lowest.floor() - 0.5).max(-12.0)..0.5,
                lines,
                marks: (
                    vec![-radius, radius],
                    &format!("reach of the 3×3 steps alone, ±{} px", self.explicit_radius),
                ),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×3 step moves information exactly one pixel: n steps reach n.
    #[test]
    fn explicit_support_grows_one_pixel_per_step() {
        let demo = Demonstration::default();
        for steps in [1, 5, 20] {
            let y = demo.explicit(&demo.impulse(), steps);
            assert_eq!(demo.reach(&y, 0.0), steps);
        }
    }

    /// One implicit step couples every pixel.
    #[test]
    fn the_implicit_step_reaches_every_pixel() {
        let demo = Demonstration::default();
        let y = demo.semi_implicit(&demo.impulse(), 1);
        assert!(y.iter().all(|&v| v != 0.0));
        assert_eq!(demo.reach(&y, 0.0), demo.size / 2);
    }

    /// L annihilates constants (ŝ(0) = 0), so both steps keep the mass 1;
    /// the second moment is 2hn explicitly and 2n(h + hα) semi-implicitly
    /// (the stencil's second moment is −2; the periodic wrap is negligible at
    /// this spread). Tolerances: float32 sums of ~10⁴ terms.
    #[test]
    fn moments_match_the_closed_forms() {
        let demo = Demonstration::default();
        let (mass, second) = demo.moments(&demo.explicit(&demo.impulse(), 20));
        assert!((mass - 1.0).abs() < 1e-5, "{mass}");
        assert!((second - 2.0 * demo.h * 20.0).abs() < 1e-4, "{second}");
        let (mass, second) = demo.moments(&demo.semi_implicit(&demo.impulse(), 5));
        let expected = 2.0 * 5.0 * (demo.h + demo.h * demo.alpha);
        assert!((mass - 1.0).abs() < 1e-4, "{mass}");
        assert!(
            (second - expected).abs() < 1e-3 * expected,
            "{second} vs {expected}"
        );
    }
}
