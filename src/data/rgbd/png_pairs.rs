//! RGB and depth PNG pairs listed in a CSV (`rgb,depth[,split]`), depth as
//! 16-bit greyscale in millimetres.

use std::path::{Path, PathBuf};

use crate::data::frame::Frame;
use crate::data::png::decode;
use crate::error::{data_error, Failure};

/// Which split a CSV row asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Train,
    Val,
}

/// One row of the CSV.
#[derive(Debug, Clone)]
pub struct Pair {
    pub rgb: PathBuf,
    pub depth: PathBuf,
    pub role: Option<Role>,
    /// 1-based line in the CSV.
    pub line: usize,
}

/// The pairs listed in a CSV: `rgb,depth[,split]`.
pub struct PngPairs {
    pub csv: PathBuf,
    pub pairs: Vec<Pair>,
}

impl PngPairs {
    pub fn open(csv_path: &Path) -> anyhow::Result<Self> {
        let fail = |what: String| data_error(format!("{}: {what}", csv_path.display()));
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(csv_path)
            .map_err(|e| fail(format!("cannot read the pair list: {e}")))?;
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| fail(e.to_string()))?
            .iter()
            .map(String::from)
            .collect();
        let column = |name: &str| header.iter().position(|h| h == name);
        let (Some(rgb_col), Some(depth_col)) = (column("rgb"), column("depth")) else {
            return Err(fail(format!(
                "header {header:?} lacks `rgb` and `depth` (expected columns rgb,depth and \
                 optionally split)"
            )));
        };
        let split_col = column("split");
        let base = csv_path.parent().unwrap_or(Path::new("."));
        let mut pairs = Vec::new();
        for (row, record) in reader.records().enumerate() {
            let line = row + 2;
            let record = record.map_err(|e| fail(format!("line {line}: {e}")))?;
            let get = |i: usize| record.get(i).unwrap_or("").to_string();
            let (rgb, depth) = (get(rgb_col), get(depth_col));
            if rgb.is_empty() || depth.is_empty() {
                return Err(fail(format!("line {line}: empty rgb or depth path")));
            }
            let role = match split_col.map(get).as_deref() {
                None | Some("") => None,
                Some("train") => Some(Role::Train),
                Some("val" | "test") => Some(Role::Val),
                Some(other) => {
                    return Err(fail(format!(
                        "line {line}: split {other:?}, expected train, val or test"
                    )))
                }
            };
            pairs.push(Pair {
                rgb: base.join(rgb),
                depth: base.join(depth),
                role,
                line,
            });
        }
        if pairs.is_empty() {
            return Err(fail("lists no pairs".into()));
        }
        Ok(Self {
            csv: csv_path.to_path_buf(),
            pairs,
        })
    }

    /// Pair `i`: the RGB image and its depth (mm → m), checked.
    pub fn frame(&self, i: usize) -> anyhow::Result<Frame> {
        let pair = &self.pairs[i];
        let listed = format!("listed in {}, line {}", self.csv.display(), pair.line);
        let expected = format!("expected a PNG image; {listed}");
        let rgb = decode(&pair.rgb, &listed, &expected)?.to_rgb8();
        let depth = match decode(&pair.depth, &listed, &expected)? {
            image::DynamicImage::ImageLuma16(d) => d,
            other => {
                return Err(data_error(format!(
                    "depth map {} is {:?}, expected a 16-bit greyscale PNG in millimetres",
                    pair.depth.display(),
                    other.color()
                )))
            }
        };
        if depth.dimensions() != rgb.dimensions() {
            return Err(data_error(format!(
                "depth map {} is {}×{} but its image {} is {}×{} (width×height; expected the \
                 same size)",
                pair.depth.display(),
                depth.width(),
                depth.height(),
                pair.rgb.display(),
                rgb.width(),
                rgb.height()
            )));
        }
        let frame = Frame {
            height: rgb.height() as usize,
            width: rgb.width() as usize,
            rgb: rgb.into_raw(),
            depth: depth
                .as_raw()
                .iter()
                .map(|&mm| mm as f32 / 1000.0)
                .collect(),
        };
        frame.check_depth(&format!("depth map {}", pair.depth.display()))?;
        Ok(frame)
    }

    /// Writes frames as PNG pairs and the CSV (`split` column from `roles`).
    pub fn write(dir: &Path, frames: &[(Frame, Role)]) -> anyhow::Result<PathBuf> {
        for sub in ["rgb", "depth"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| {
                Failure::Output(format!("cannot create {}: {e}", dir.join(sub).display()))
            })?;
        }
        let mut csv = String::from("rgb,depth,split\n");
        for (i, (frame, role)) in frames.iter().enumerate() {
            let name = format!("{i:06}.png");
            let (w, h) = (frame.width as u32, frame.height as u32);
            let rgb = image::RgbImage::from_raw(w, h, frame.rgb.clone()).expect("H×W×3 bytes");
            let mm: Vec<u16> = frame
                .depth
                .iter()
                .map(|&d| (d as f64 * 1000.0).round().clamp(1.0, 65535.0) as u16)
                .collect();
            let depth =
                image::ImageBuffer::<image::Luma<u16>, _>::from_raw(w, h, mm).expect("H×W values");
            rgb.save(dir.join("rgb").join(&name))?;
            depth.save(dir.join("depth").join(&name))?;
            let split = match role {
                Role::Train => "train",
                Role::Val => "val",
            };
            csv.push_str(&format!("rgb/{name},depth/{name},{split}\n"));
        }
        let path = dir.join("pairs.csv");
        crate::files::write_atomically(&path, csv.as_bytes())?;
        Ok(path)
    }
}
