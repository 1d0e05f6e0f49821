//! Absolute stability regions on the test equation y' = λy, in the complex
//! z = hλ plane, computed from each scheme's amplification factor R(z):
//!
//! - forward Euler (ResNet):      R(z) = 1 + z
//! - IMEX, split form, L = αI:    R(z) = (1 + z + hα) / (1 + hα)
//! - IMEX, damped form, L = αI:   R(z) = (1 + z) / (1 + hα)
//!
//! A step is stable where |R(z)| ≤ 1. The boundary is found by bisection
//! along rays from z = −1 (inside every region here), not drawn from the
//! closed forms; the tests check it against them.

use super::figure::{
    axes, legend, Figure, BLUE, FONT, GREEN, LABEL_SIZE, SKY_BLUE, TITLE_SIZE, VERMILLION,
};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// A one-step method on y' = λy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheme {
    /// The ResNet step.
    ForwardEuler,
    /// IMEX as on the slides, with hα.
    Split(f64),
    /// IMEX as in the authors' code, with hα.
    Damped(f64),
}

impl Scheme {
    /// |R(z)| at z = re + i·im.
    pub fn amplification(self, (re, im): (f64, f64)) -> f64 {
        match self {
            Scheme::ForwardEuler => (1.0 + re).hypot(im),
            Scheme::Split(a) => (1.0 + re + a).hypot(im) / (1.0 + a),
            Scheme::Damped(a) => (1.0 + re).hypot(im) / (1.0 + a),
        }
    }

    pub fn label(self) -> String {
        match self {
            Scheme::ForwardEuler => "ResNet (forward Euler)".into(),
            Scheme::Split(a) | Scheme::Damped(a) => format!("IMEX, hα = {a}"),
        }
    }

    /// `n` points on the boundary |R(z)| = 1, counter-clockwise, found by
    /// bisection along rays from z = −1 (to 1e-12 in the radius).
    pub fn boundary(self, n: usize) -> Vec<(f64, f64)> {
        let centre = (-1.0, 0.0);
        debug_assert!(self.amplification(centre) < 1.0);
        (0..n)
            .map(|k| {
                let theta = 2.0 * std::f64::consts::PI * k as f64 / n as f64;
                let (dx, dy) = (theta.cos(), theta.sin());
                let at = |r: f64| (centre.0 + r * dx, centre.1 + r * dy);
                let mut hi = 1.0;
                while self.amplification(at(hi)) <= 1.0 {
                    hi *= 2.0;
                }
                let mut lo = 0.0;
                while hi - lo > 1e-12 {
                    let mid = 0.5 * (lo + hi);
                    if self.amplification(at(mid)) <= 1.0 {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                at(0.5 * (lo + hi))
            })
            .collect()
    }
}

/// The hα values drawn, with their colours.
const H_ALPHAS: [(f64, RGBColor); 3] = [(2.0, GREEN), (1.0, BLUE), (0.5, SKY_BLUE)];

/// The figure: split and damped forms side by side, ResNet in both.
pub struct StabilityFigure;

impl Figure for StabilityFigure {
    fn size(&self) -> (u32, u32) {
        (1500, 640)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let root = root.titled(
            "Absolute stability regions |R(hλ)| ≤ 1 on y′ = λy (L = αI)",
            (FONT, TITLE_SIZE),
        )?;
        let halves = root.split_evenly((1, 2));
        // Legends where no region is.
        type Form = (&'static str, fn(f64) -> Scheme, SeriesLabelPosition);
        let forms: [Form; 2] = [
            (
                "split form (slides): R = (1 + hλ + hα)/(1 + hα)",
                Scheme::Split,
                SeriesLabelPosition::UpperRight,
            ),
            (
                "damped form (authors' code): R = (1 + hλ)/(1 + hα)",
                Scheme::Damped,
                SeriesLabelPosition::UpperLeft,
            ),
        ];
        for ((title, scheme, legend_at), area) in forms.iter().zip(&halves) {
            let mut chart = ChartBuilder::on(area)
                .caption(*title, (FONT, LABEL_SIZE))
                .margin(14)
                .x_label_area_size(48)
                .y_label_area_size(56)
                .build_cartesian_2d(-6.6..2.6, -3.6..3.6)?;
            axes(&mut chart, "Re(hλ)", "Im(hλ)")?;
            for axis in [[(-6.6, 0.0), (2.6, 0.0)], [(0.0, -3.6), (0.0, 3.6)]] {
                chart.draw_series(std::iter::once(PathElement::new(
                    axis.to_vec(),
                    BLACK.mix(0.5).stroke_width(1),
                )))?;
            }
            let schemes = H_ALPHAS
                .iter()
                .map(|&(a, colour)| (scheme(a), colour))
                .chain(std::iter::once((Scheme::ForwardEuler, VERMILLION)));
            for (s, colour) in schemes {
                let outline = s.boundary(720);
                chart.draw_series(std::iter::once(Polygon::new(
                    outline.clone(),
                    colour.mix(0.12).filled(),
                )))?;
                let mut closed = outline;
                closed.push(closed[0]);
                let style = colour.stroke_width(3);
                chart
                    .draw_series(std::iter::once(PathElement::new(closed, style)))?
                    .label(s.label())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 28, y)], style));
            }
            legend(&mut chart, legend_at.clone())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every computed boundary point lies on the closed-form circle:
    /// ResNet |z + 1| = 1; split |z + 1 + a| = 1 + a; damped |z + 1| = 1 + a.
    #[test]
    fn boundaries_are_the_closed_form_circles() {
        let cases = [
            (Scheme::ForwardEuler, (-1.0, 1.0)),
            (Scheme::Split(0.5), (-1.5, 1.5)),
            (Scheme::Split(2.0), (-3.0, 3.0)),
            (Scheme::Damped(1.0), (-1.0, 2.0)),
            (Scheme::Damped(2.0), (-1.0, 3.0)),
        ];
        for (scheme, (centre, radius)) in cases {
            for (x, y) in scheme.boundary(97) {
                let distance = (x - centre).hypot(y);
                assert!((distance - radius).abs() < 1e-9, "{scheme:?}: {distance}");
                assert!((scheme.amplification((x, y)) - 1.0).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn amplification_at_chosen_points() {
        // hλ = −2 is ResNet's stability limit on the real axis.
        assert_eq!(Scheme::ForwardEuler.amplification((-2.0, 0.0)), 1.0);
        assert_eq!(Scheme::ForwardEuler.amplification((-3.0, 0.0)), 2.0);
        // The split form with hα = 1 is stable down to hλ = −4 ...
        assert_eq!(Scheme::Split(1.0).amplification((-4.0, 0.0)), 1.0);
        // ... and leaves undamped oscillations |R(i·t)| > 1 unstable.
        assert!(Scheme::Split(1.0).amplification((0.0, 0.5)) > 1.0);
        // The damped form damps hλ = 0 by 1/(1 + hα).
        assert_eq!(Scheme::Damped(3.0).amplification((0.0, 0.0)), 0.25);
        // and makes small imaginary hλ stable.
        assert!(Scheme::Damped(1.0).amplification((0.0, 1.0)) < 1.0);
    }
}
