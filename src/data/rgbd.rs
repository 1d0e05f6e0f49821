//! RGB-D data for the depth task: the readers, the split, the preprocessing.
//!
//! Three sources give frames (8-bit RGB and depth in metres), one at a time:
//!
//! - `nyu_mat`: NYU Depth V2's `nyu_depth_v2_labeled.mat`, a MATLAB v7.3 file,
//!   i.e. HDF5 behind a 512-byte MATLAB user block. h5py shows `images` as
//!   (N, 3, W, H) uint8 and `depths` as (N, W, H) float32 (MATLAB's
//!   column-major [H W 3 N] and [H W N] read in C order), so every frame is
//!   stored transposed; [`NyuMat::frame`] reads one frame's hyperslab (the
//!   file is 2.8 GB; it is memory-mapped, never read whole) and transposes it.
//! - `rgbd_png`: a CSV file with columns `rgb,depth` and optionally `split`
//!   (`train`, or `val`/`test`), paths relative to the CSV's folder; RGB PNGs
//!   of any colour type, depth as 16-bit greyscale PNGs in millimetres.
//! - `synthetic_rgbd`: rendered rooms ([`super::synthetic_rgbd`]).
//!
//! Every depth must be finite and > 0 (NYU's labelled depths are in-painted,
//! so they all are); the loader refuses anything else naming the file, the
//! frame and the pixel, since a silent hole would bias every metric.
//!
//! Frames are centre-cropped (`data.crop_height` × `data.crop_width`, in
//! source pixels) and then resized to `data.height` × `data.width`: by exact
//! area averaging when the sizes divide (480×640 → 240×320 or 120×160), by
//! bilinear interpolation (pixel centres aligned) otherwise.

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::{Config, Dataset};
use crate::error::Failure;

fn data_error(msg: String) -> anyhow::Error {
    Failure::Data(msg).into()
}

pub use super::frame::Frame;

// ---------------------------------------------------------------------------
// NYU Depth V2, MATLAB v7.3
// ---------------------------------------------------------------------------

/// `nyu_depth_v2_labeled.mat`, opened (memory-mapped) but not read.
pub struct NyuMat {
    path: PathBuf,
    images: hdf5_reader::Dataset,
    depths: hdf5_reader::Dataset,
    /// Frames, rows (H) and columns (W) of a frame as it is seen.
    pub len: usize,
    pub height: usize,
    pub width: usize,
}

impl NyuMat {
    /// Opens the file and checks the two datasets' types and shapes.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let fail = |what: String| data_error(format!("{}: {what}", path.display()));
        if !path.is_file() {
            return Err(fail(
                "no such file (expected NYU Depth V2's nyu_depth_v2_labeled.mat, \
                 see the README for where to get it)"
                    .into(),
            ));
        }
        let file = hdf5_reader::Hdf5File::open(path)
            .map_err(|e| fail(format!("cannot read it as a MATLAB v7.3 (HDF5) file: {e}")))?;
        let dataset = |name: &str| {
            file.dataset(name)
                .map_err(|e| fail(format!("no dataset `{name}` ({e})")))
        };
        let (images, depths) = (dataset("images")?, dataset("depths")?);
        let (is, ds) = (images.shape().to_vec(), depths.shape().to_vec());
        use hdf5_reader::Datatype::{FixedPoint, FloatingPoint};
        if !matches!(
            images.dtype(),
            FixedPoint {
                size: 1,
                signed: false,
                ..
            }
        ) {
            return Err(fail(format!(
                "`images` holds {:?}, expected uint8",
                images.dtype()
            )));
        }
        if !matches!(depths.dtype(), FloatingPoint { size: 4, .. }) {
            return Err(fail(format!(
                "`depths` holds {:?}, expected float32 (single)",
                depths.dtype()
            )));
        }
        if is.len() != 4 || is[1] != 3 || ds.len() != 3 || ds[..] != [is[0], is[2], is[3]] {
            return Err(fail(format!(
                "`images` has shape {is:?} and `depths` {ds:?}; expected (N, 3, W, H) and \
                 (N, W, H) as MATLAB writes [H W 3 N] and [H W N] (NYU: (1449, 3, 640, 480) \
                 and (1449, 640, 480))"
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            images,
            depths,
            len: is[0] as usize,
            height: is[3] as usize,
            width: is[2] as usize,
        })
    }

    /// Frame `i` (0-based), transposed back to H×W.
    pub fn frame(&self, i: usize) -> anyhow::Result<Frame> {
        use hdf5_reader::{SliceInfo, SliceInfoElem};
        let all = SliceInfoElem::Slice {
            start: 0,
            end: u64::MAX,
            step: 1,
        };
        let select = |dims: usize| SliceInfo {
            selections: std::iter::once(SliceInfoElem::Index(i as u64))
                .chain(std::iter::repeat_n(all.clone(), dims - 1))
                .collect(),
        };
        let fail = |what: &str, e: hdf5_reader::error::Error| {
            data_error(format!(
                "{}: cannot read frame {} of `{what}`: {e}",
                self.path.display(),
                i + 1
            ))
        };
        let images = self
            .images
            .read_slice::<u8>(&select(4))
            .map_err(|e| fail("images", e))?;
        let depths = self
            .depths
            .read_slice::<f32>(&select(3))
            .map_err(|e| fail("depths", e))?;
        let (h, w) = (self.height, self.width);
        // Stored [c][x][y] and [x][y]; wanted [y][x][c] and [y][x].
        let (src_rgb, src_depth) = (images.iter().copied().collect::<Vec<u8>>(), depths);
        let src_depth: Vec<f32> = src_depth.iter().copied().collect();
        let mut rgb = vec![0u8; h * w * 3];
        let mut depth = vec![0f32; h * w];
        for x in 0..w {
            for y in 0..h {
                depth[y * w + x] = src_depth[x * h + y];
                for c in 0..3 {
                    rgb[(y * w + x) * 3 + c] = src_rgb[c * w * h + x * h + y];
                }
            }
        }
        let frame = Frame {
            rgb,
            depth,
            height: h,
            width: w,
        };
        frame.check_depth(&format!("{}, frame {}", self.path.display(), i + 1))?;
        Ok(frame)
    }
}

// ---------------------------------------------------------------------------
// PNG pairs listed in a CSV
// ---------------------------------------------------------------------------

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
        let rgb = decode(&pair.rgb, &listed)?.to_rgb8();
        let depth = match decode(&pair.depth, &listed)? {
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

fn decode(path: &Path, listed: &str) -> anyhow::Result<image::DynamicImage> {
    if !path.is_file() {
        return Err(data_error(format!(
            "missing file {} ({listed})",
            path.display()
        )));
    }
    image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(anyhow::Error::from)
        .and_then(|r| r.decode().map_err(anyhow::Error::from))
        .map_err(|e| {
            data_error(format!(
                "cannot decode {}: {e} (expected a PNG image; {listed})",
                path.display()
            ))
        })
}

// ---------------------------------------------------------------------------
// Splits
// ---------------------------------------------------------------------------

/// 0-based (train, val) frame indices from a split file: a MATLAB file with
/// `trainNdxs` and `testNdxs` (1-based, NYU's `splits.mat`, v7.3/HDF5 or
/// v5), or a text file of the 1-based test indices (whitespace- or
/// comma-separated, `#` comments), every other frame being for training.
pub fn read_split_file(path: &Path, frames: usize) -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    let fail = |what: String| data_error(format!("{}: {what}", path.display()));
    let bytes =
        std::fs::read(path).map_err(|e| fail(format!("cannot read the split file: {e}")))?;
    let to_index = |v: f64, what: &str| -> anyhow::Result<usize> {
        if v.fract() != 0.0 || v < 1.0 || v > frames as f64 {
            return Err(fail(format!(
                "{what} index {v} is not a frame number in 1..={frames}"
            )));
        }
        Ok(v as usize - 1)
    };
    let (train, val) = if bytes.starts_with(b"MATLAB") {
        let (train, test) = if bytes.len() > 512 && bytes[512..].starts_with(b"\x89HDF") {
            let file = hdf5_reader::Hdf5File::open(path)
                .map_err(|e| fail(format!("cannot read it as HDF5: {e}")))?;
            let read = |name: &str| -> anyhow::Result<Vec<f64>> {
                let d = file
                    .dataset(name)
                    .map_err(|e| fail(format!("no dataset `{name}` ({e})")))?;
                Ok(d.read_array::<f64>()
                    .map_err(|e| fail(format!("cannot read `{name}`: {e}")))?
                    .iter()
                    .copied()
                    .collect())
            };
            (read("trainNdxs")?, read("testNdxs")?)
        } else {
            let vars = super::mat5::read_numeric(&bytes).map_err(&fail)?;
            let get = |name: &str| {
                vars.iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| fail(format!("no variable `{name}`")))
            };
            (get("trainNdxs")?, get("testNdxs")?)
        };
        let train = train
            .iter()
            .map(|&v| to_index(v, "trainNdxs"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let val = test
            .iter()
            .map(|&v| to_index(v, "testNdxs"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        (train, val)
    } else {
        let text =
            String::from_utf8(bytes).map_err(|_| fail("neither a MATLAB file nor text".into()))?;
        let mut val = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            for token in line.split(|c: char| c.is_whitespace() || c == ',') {
                if token.is_empty() {
                    continue;
                }
                let v: f64 = token.parse().map_err(|_| {
                    fail(format!(
                        "line {}: {token:?} is not a frame number (expected 1-based test indices)",
                        n + 1
                    ))
                })?;
                val.push(to_index(v, &format!("line {}: test", n + 1))?);
            }
        }
        let mut is_val = vec![false; frames];
        for &v in &val {
            is_val[v] = true;
        }
        let train = (0..frames).filter(|&i| !is_val[i]).collect();
        (train, val)
    };
    let mut seen = vec![false; frames];
    for &i in train.iter().chain(&val) {
        if std::mem::replace(&mut seen[i], true) {
            return Err(fail(format!(
                "frame {} is listed twice (train and test must not overlap)",
                i + 1
            )));
        }
    }
    if train.is_empty() || val.is_empty() {
        return Err(fail("leaves the training or the test split empty".into()));
    }
    Ok((train, val))
}

/// A seeded split: the first `val` frames of a permutation for validation,
/// the next `train` for training (fewer if the set is smaller).
pub fn seeded_split(
    frames: usize,
    train: usize,
    val: usize,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..frames).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let val_part = order[..val.min(frames)].to_vec();
    let rest = &order[val.min(frames)..];
    let train_part = rest[..train.min(rest.len())].to_vec();
    (train_part, val_part)
}

// ---------------------------------------------------------------------------
// Preprocessing
// ---------------------------------------------------------------------------

/// Centre crop to crop (0 = none), then resize to size (0 = none).
pub fn preprocess(
    frame: Frame,
    crop: (usize, usize),
    size: (usize, usize),
    what: &str,
) -> anyhow::Result<Frame> {
    let frame = if crop.0 > 0 {
        if crop.0 > frame.height || crop.1 > frame.width {
            return Err(data_error(format!(
                "{what} is {}×{} (rows×columns), smaller than data.crop_height × data.crop_width \
                 = {}×{}",
                frame.height, frame.width, crop.0, crop.1
            )));
        }
        centre_crop(&frame, crop.0, crop.1)
    } else {
        frame
    };
    if size.0 == 0 || (size.0, size.1) == (frame.height, frame.width) {
        return Ok(frame);
    }
    Ok(resize(&frame, size.0, size.1))
}

fn centre_crop(f: &Frame, h: usize, w: usize) -> Frame {
    let (top, left) = ((f.height - h) / 2, (f.width - w) / 2);
    let mut rgb = Vec::with_capacity(h * w * 3);
    let mut depth = Vec::with_capacity(h * w);
    for r in top..top + h {
        let row = r * f.width;
        rgb.extend_from_slice(&f.rgb[3 * (row + left)..3 * (row + left + w)]);
        depth.extend_from_slice(&f.depth[row + left..row + left + w]);
    }
    Frame {
        rgb,
        depth,
        height: h,
        width: w,
    }
}

/// Area average when the sizes divide exactly, bilinear otherwise.
pub fn resize(f: &Frame, h: usize, w: usize) -> Frame {
    let (fh, fw) = (f.height, f.width);
    let mut rgb = Vec::with_capacity(h * w * 3);
    let mut depth = Vec::with_capacity(h * w);
    if fh % h == 0 && fw % w == 0 {
        let (sy, sx) = (fh / h, fw / w);
        let n = (sy * sx) as f64;
        for r in 0..h {
            for c in 0..w {
                let (mut acc, mut d) = ([0u32; 3], 0f64);
                for y in r * sy..(r + 1) * sy {
                    for x in c * sx..(c + 1) * sx {
                        let i = y * fw + x;
                        for (a, &v) in acc.iter_mut().zip(&f.rgb[3 * i..3 * i + 3]) {
                            *a += v as u32;
                        }
                        d += f.depth[i] as f64;
                    }
                }
                let m = (sy * sx) as u32;
                rgb.extend(acc.map(|a| ((a + m / 2) / m) as u8));
                depth.push((d / n) as f32);
            }
        }
    } else {
        // Pixel centres aligned: source coordinate (dst + 0.5)·scale − 0.5, clamped.
        let coord = |dst: usize, src_len: usize, dst_len: usize| {
            let s = ((dst as f64 + 0.5) * src_len as f64 / dst_len as f64 - 0.5)
                .clamp(0.0, (src_len - 1) as f64);
            let i0 = s.floor() as usize;
            let i1 = (i0 + 1).min(src_len - 1);
            (i0, i1, s - i0 as f64)
        };
        for r in 0..h {
            let (y0, y1, ty) = coord(r, fh, h);
            for c in 0..w {
                let (x0, x1, tx) = coord(c, fw, w);
                let at = |y: usize, x: usize| y * fw + x;
                let weights = [
                    (at(y0, x0), (1.0 - ty) * (1.0 - tx)),
                    (at(y0, x1), (1.0 - ty) * tx),
                    (at(y1, x0), ty * (1.0 - tx)),
                    (at(y1, x1), ty * tx),
                ];
                for k in 0..3 {
                    let v: f64 = weights
                        .iter()
                        .map(|&(i, wt)| f.rgb[3 * i + k] as f64 * wt)
                        .sum();
                    rgb.push(v.round().clamp(0.0, 255.0) as u8);
                }
                let d: f64 = weights.iter().map(|&(i, wt)| f.depth[i] as f64 * wt).sum();
                depth.push(d as f32);
            }
        }
    }
    Frame {
        rgb,
        depth,
        height: h,
        width: w,
    }
}

// ---------------------------------------------------------------------------
// The configured data set, split and preprocessed
// ---------------------------------------------------------------------------

/// Training and validation frames with their names.
pub struct RgbdSplits {
    pub train: Vec<Frame>,
    pub train_names: Vec<String>,
    pub val: Vec<Frame>,
    pub val_names: Vec<String>,
}

/// Reads (or renders) the configured RGB-D set: split, cropped, resized,
/// checked. Frames are read one at a time.
pub fn load(cfg: &Config) -> anyhow::Result<RgbdSplits> {
    let d = &cfg.data;
    let crop = (d.crop_height, d.crop_width);
    let size = (d.height, d.width);
    let split_file = (!d.split_file.as_os_str().is_empty()).then_some(d.split_file.as_path());
    let mut out = RgbdSplits {
        train: Vec::new(),
        train_names: Vec::new(),
        val: Vec::new(),
        val_names: Vec::new(),
    };
    match d.dataset {
        Dataset::SyntheticRgbd => {
            for (stream, n) in [(0u64, d.train_size), (1, d.val_size)] {
                for i in 0..n {
                    let frame = super::synthetic_rgbd::render(
                        d.generator_seed,
                        stream,
                        i,
                        d.height,
                        d.width,
                    );
                    let name = format!("synthetic_{}_{i:06}", ["train", "val"][stream as usize]);
                    let frame = preprocess(frame, crop, size, &name)?;
                    if stream == 0 {
                        out.train.push(frame);
                        out.train_names.push(name);
                    } else {
                        out.val.push(frame);
                        out.val_names.push(name);
                    }
                }
            }
        }
        Dataset::NyuMat => {
            let mat = NyuMat::open(&d.path)?;
            let (train, val) = match split_file {
                Some(f) => read_split_file(f, mat.len)?,
                None => seeded_split(mat.len, d.train_size, d.val_size, d.split_seed),
            };
            tracing::info!(
                "{}: {} frames of {}×{}; {} for training, {} for validation",
                d.path.display(),
                mat.len,
                mat.height,
                mat.width,
                train.len(),
                val.len()
            );
            for (indices, frames, names) in [
                (&train, &mut out.train, &mut out.train_names),
                (&val, &mut out.val, &mut out.val_names),
            ] {
                for &i in indices {
                    let what = format!("{}, frame {}", d.path.display(), i + 1);
                    frames.push(preprocess(mat.frame(i)?, crop, size, &what)?);
                    names.push(format!("frame{:04}", i + 1));
                }
            }
        }
        Dataset::RgbdPng => {
            let pairs = PngPairs::open(&d.path)?;
            let n = pairs.pairs.len();
            let (train, val) = match split_file {
                Some(f) => read_split_file(f, n)?,
                None if pairs.pairs.iter().all(|p| p.role.is_some()) => {
                    let of = |role| {
                        (0..n)
                            .filter(|&i| pairs.pairs[i].role == Some(role))
                            .collect()
                    };
                    (of(Role::Train), of(Role::Val))
                }
                None => seeded_split(n, d.train_size, d.val_size, d.split_seed),
            };
            for (indices, frames, names) in [
                (&train, &mut out.train, &mut out.train_names),
                (&val, &mut out.val, &mut out.val_names),
            ] {
                for &i in indices {
                    let what = pairs.pairs[i].rgb.display().to_string();
                    frames.push(preprocess(pairs.frame(i)?, crop, size, &what)?);
                    names.push(what);
                }
            }
        }
        Dataset::Qtips => unreachable!("Q-tips is a segmentation set"),
    }
    if d.train_limit > 0 && d.train_limit < out.train.len() {
        out.train.truncate(d.train_limit);
        out.train_names.truncate(d.train_limit);
    }
    let first = out
        .train
        .first()
        .or(out.val.first())
        .map(|f| (f.height, f.width));
    for (frames, names) in [(&out.train, &out.train_names), (&out.val, &out.val_names)] {
        if frames.is_empty() {
            return Err(data_error(format!(
                "{}: the training or the validation split is empty",
                d.path.display()
            )));
        }
        for (f, name) in frames.iter().zip(names) {
            if Some((f.height, f.width)) != first {
                let (h, w) = first.unwrap_or_default();
                return Err(data_error(format!(
                    "{name} is {}×{} (rows×columns) after preprocessing, the first frame {h}×{w}; \
                     set data.height and data.width to bring all frames to one size",
                    f.height, f.width
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(h: usize, w: usize) -> Frame {
        Frame {
            rgb: (0..h * w * 3).map(|i| (i % 251) as u8).collect(),
            depth: (0..h * w).map(|i| 1.0 + i as f32).collect(),
            height: h,
            width: w,
        }
    }

    #[test]
    fn area_resize_averages_blocks() {
        let f = frame(4, 6);
        let r = resize(&f, 2, 3);
        // Output (0, 0) averages source rows 0-1, columns 0-1.
        let d = (f.depth[0] + f.depth[1] + f.depth[6] + f.depth[7]) / 4.0;
        assert_eq!(r.depth[0], d);
        let red = (f.rgb[0] as u32 + f.rgb[3] as u32 + f.rgb[18] as u32 + f.rgb[21] as u32 + 2) / 4;
        assert_eq!(r.rgb[0] as u32, red);
        assert_eq!(
            (r.height, r.width, r.rgb.len(), r.depth.len()),
            (2, 3, 18, 6)
        );
    }

    #[test]
    fn bilinear_resize_keeps_constants_and_linear_ramps() {
        let mut f = frame(5, 7);
        for (i, d) in f.depth.iter_mut().enumerate() {
            *d = 2.0 + (i % 7) as f32; // linear in the column
        }
        let r = resize(&f, 3, 4);
        for row in 0..3 {
            for c in 0..4 {
                let s = ((c as f64 + 0.5) * 7.0 / 4.0 - 0.5).clamp(0.0, 6.0);
                assert!((r.depth[row * 4 + c] as f64 - (2.0 + s)).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn crop_takes_the_centre() {
        let f = frame(6, 8);
        let c = preprocess(f.clone(), (2, 4), (0, 0), "x").unwrap();
        assert_eq!(
            c.depth,
            [
                f.depth[2 * 8 + 2..2 * 8 + 6].to_vec(),
                f.depth[3 * 8 + 2..3 * 8 + 6].to_vec()
            ]
            .concat()
        );
        let err = preprocess(f, (7, 4), (0, 0), "frame x").unwrap_err();
        assert!(err.to_string().contains("frame x"));
    }

    #[test]
    fn flip_mirrors_rgb_and_depth() {
        let f = frame(2, 3);
        let g = f.flipped();
        assert_eq!(g.depth, vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
        assert_eq!(&g.rgb[..3], &f.rgb[6..9]);
        assert_eq!(g.flipped(), f);
    }

    #[test]
    fn seeded_split_is_disjoint_and_seeded() {
        let (t, v) = seeded_split(20, 12, 5, 1);
        assert_eq!((t.len(), v.len()), (12, 5));
        assert!(t.iter().all(|i| !v.contains(i)));
        assert_eq!(seeded_split(20, 12, 5, 1), (t.clone(), v.clone()));
        assert_ne!(seeded_split(20, 12, 5, 2).1, v);
        let (t, v) = seeded_split(6, 100, 2, 0);
        assert_eq!((t.len(), v.len()), (4, 2));
    }
}
