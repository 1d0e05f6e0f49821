//! Drawing helpers shared by every figure: one drawing routine renders both
//! the PNG (for looking at) and the SVG (for papers), text in the bundled
//! DejaVu Sans, colours from the Okabe–Ito palette (readable with every common
//! colour-vision deficiency).

use crate::files::write_atomically;
use anyhow::{Context, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Okabe & Ito (2008), "Color Universal Design".
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
pub const GREEN: RGBColor = RGBColor(0, 158, 115);
pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
pub const SKY_BLUE: RGBColor = RGBColor(86, 180, 233);
pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
pub const YELLOW: RGBColor = RGBColor(240, 228, 66);
pub const GREY: RGBColor = RGBColor(120, 120, 120);

/// Line colours in the order series are given them.
pub const PALETTE: [RGBColor; 7] = [BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY_BLUE, GREY];

/// Q-tips classes as on the slides: background black, WW blue, BW orange, BB green.
pub const CLASS_COLOURS: [RGBColor; 4] = [BLACK, BLUE, ORANGE, GREEN];
pub const CLASS_NAMES: [&str; 4] = ["background", "WW (class 1)", "BW (class 2)", "BB (class 3)"];

pub const FONT: &str = "sans-serif";
pub const TITLE_SIZE: u32 = 26;
pub const LABEL_SIZE: u32 = 20;
pub const TICK_SIZE: u32 = 17;

static FONT_DATA: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_DATA)
            .unwrap_or_else(|_| panic!("the bundled DejaVu Sans is a valid font"));
    });
}

/// Something that can draw itself on any plotters backend.
pub trait Figure {
    /// Canvas size in pixels (PNG) or user units (SVG).
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// Writes `stem.png` and `stem.svg` (each atomically) and returns their paths.
pub fn save(figure: &impl Figure, stem: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    let (w, h) = figure.size();
    let png = stem.with_extension("png");
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        figure
            .draw(&root)
            .with_context(|| format!("drawing {}", png.display()))?;
        root.present()?;
    }
    write_atomically(&png, &encode_png(&pixels, w, h)?)?;
    let svg = stem.with_extension("svg");
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        figure
            .draw(&root)
            .with_context(|| format!("drawing {}", svg.display()))?;
        root.present()?;
    }
    // plotters-svg labels embedded bitmaps `data:png`, which is not a MIME
    // type; browsers and Inkscape want `data:image/png`.
    let text = text.replace("href=\"data:png;base64,", "href=\"data:image/png;base64,");
    write_atomically(&svg, text.as_bytes())?;
    Ok(vec![png, svg])
}

/// PNG bytes of an RGB8 buffer.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut bytes),
        rgb,
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(bytes)
}

/// An RGB raster, e.g. an image, a class map or a heat map.
#[derive(Debug, Clone, PartialEq)]
pub struct Raster {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Raster {
    pub fn from_fn(width: usize, height: usize, colour: impl Fn(usize) -> RGBColor) -> Self {
        let rgb = (0..width * height)
            .flat_map(|i| {
                let RGBColor(r, g, b) = colour(i);
                [r, g, b]
            })
            .collect();
        Self {
            width: width as u32,
            height: height as u32,
            rgb,
        }
    }

    /// Nearest-neighbour enlargement by an integer factor (pixels stay square
    /// and sharp, as they are in the data).
    pub fn enlarged(&self, factor: u32) -> Self {
        let (w, h) = (self.width * factor, self.height * factor);
        let mut rgb = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                let i = (((y / factor) * self.width + x / factor) * 3) as usize;
                rgb.extend_from_slice(&self.rgb[i..i + 3]);
            }
        }
        Self {
            width: w,
            height: h,
            rgb,
        }
    }

    /// Draws the raster with its top-left corner at `pos` (pixels of `area`).
    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        pos: (i32, i32),
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let element = BitMapElement::with_ref(pos, (self.width, self.height), &self.rgb)
            .context("raster buffer of the wrong size")?;
        area.draw(&element)?;
        Ok(())
    }
}

/// Viridis at t ∈ [0, 1] (matplotlib's default map: perceptually uniform,
/// readable in greyscale and with colour-vision deficiencies). Piecewise
/// linear between 9 of its 256 entries.
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A diverging map at t ∈ [0, 1]: blue at 0, white at ½, vermillion at 1
/// (the report's IMEX and ResNet colours), linear in between; for signed
/// values symmetric around 0.
pub fn diverging(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let (end, f) = match t < 0.5 {
        true => (BLUE, 1.0 - 2.0 * t),
        false => (VERMILLION, 2.0 * t - 1.0),
    };
    let mix = |e: u8| (255.0 + (e as f64 - 255.0) * f).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// A vertical colour bar for `map` on [lo, hi], drawn in `area`, with ticks.
pub fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    label: &str,
    (lo, hi): (f64, f64),
    map: impl Fn(f64) -> RGBColor,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .margin_top(30)
        .margin_bottom(30)
        .margin_right(10)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_desc(label)
        .axis_desc_style((FONT, LABEL_SIZE))
        .label_style((FONT, TICK_SIZE))
        .draw()?;
    let steps = 200;
    chart.draw_series((0..steps).map(|k| {
        let (a, b) = (k as f64 / steps as f64, (k + 1) as f64 / steps as f64);
        let (y0, y1) = (lo + (hi - lo) * a, lo + (hi - lo) * b);
        Rectangle::new([(0.0, y0), (1.0, y1)], map(0.5 * (a + b)).filled())
    }))?;
    Ok(())
}

/// A row of coloured squares with names: the legend of a class map.
pub fn class_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (w, _) = area.dim_in_pixel();
    let slot = w as i32 / CLASS_NAMES.len() as i32;
    for (k, (name, colour)) in CLASS_NAMES.iter().zip(CLASS_COLOURS).enumerate() {
        let x = k as i32 * slot + 20;
        area.draw(&Rectangle::new([(x, 8), (x + 22, 30)], colour.filled()))?;
        area.draw(&Rectangle::new(
            [(x, 8), (x + 22, 30)],
            BLACK.stroke_width(1),
        ))?;
        area.draw(&Text::new(
            name.to_string(),
            (x + 30, 10),
            (FONT, LABEL_SIZE).into_font(),
        ))?;
    }
    Ok(())
}

/// A chart with f64 axes, as every plot of the report has.
pub type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Axes with their descriptions in the report's fonts and a faint grid.
pub fn axes<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    x_desc: &str,
    y_desc: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style((FONT, LABEL_SIZE))
        .label_style((FONT, TICK_SIZE))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    Ok(())
}

/// The series' legend, boxed, at `position`.
pub fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    position: SeriesLabelPosition,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .label_font((FONT, TICK_SIZE))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .position(position)
        .draw()?;
    Ok(())
}

/// Centred text.
pub fn centred_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    (x, y): (i32, i32),
    size: u32,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let style = TextStyle::from((FONT, size).into_font())
        .pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ))
        .color(&BLACK);
    area.draw(&Text::new(text.to_string(), (x, y), style))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends_and_clamps() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(-3.0), viridis(0.0));
        assert_eq!(viridis(f64::NAN), viridis(0.0));
    }

    #[test]
    fn diverging_is_white_at_the_middle_and_the_network_colours_at_the_ends() {
        assert_eq!(diverging(0.5), WHITE);
        assert_eq!(diverging(0.0), BLUE);
        assert_eq!(diverging(1.0), VERMILLION);
        assert_eq!(diverging(0.25), RGBColor(128, 185, 217));
        assert_eq!(diverging(f64::NAN), WHITE);
    }

    #[test]
    fn enlarging_repeats_pixels() {
        let r = Raster::from_fn(2, 1, |i| if i == 0 { BLACK } else { WHITE });
        let big = r.enlarged(2);
        assert_eq!((big.width, big.height), (4, 2));
        assert_eq!(&big.rgb[..6], &[0, 0, 0, 0, 0, 0]);
        assert_eq!(&big.rgb[6..12], &[255; 6]);
    }

    #[test]
    fn a_figure_renders_to_png_and_svg() {
        struct Dot;
        impl Figure for Dot {
            fn size(&self) -> (u32, u32) {
                (40, 30)
            }
            fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
            where
                DB::ErrorType: 'static,
            {
                centred_text(root, "x", (20, 5), 12)?;
                Raster::from_fn(1, 1, |_| BLUE).draw(root, (0, 0))
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let files = save(&Dot, &dir.path().join("dot")).unwrap();
        let png = image::open(&files[0]).unwrap().to_rgb8();
        assert_eq!(png.dimensions(), (40, 30));
        assert_eq!(png.get_pixel(0, 0).0, [0, 114, 178]);
        let svg = std::fs::read_to_string(&files[1]).unwrap();
        assert!(svg.contains("<svg") && svg.contains("data:image/png;base64"));
    }
}
