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
//! - `synthetic_rgbd`: rendered rooms ([`crate::data::synthetic_rgbd`]).
//!
//! Every depth must be finite and > 0 (NYU's labelled depths are in-painted,
//! so they all are); the loader refuses anything else naming the file, the
//! frame and the pixel, since a silent hole would bias every metric.
//!
//! Frames are centre-cropped (`data.crop_height` × `data.crop_width`, in
//! source pixels) and then resized to `data.height` × `data.width`: by exact
//! area averaging when the sizes divide (480×640 → 240×320 or 120×160), by
//! bilinear interpolation (pixel centres aligned) otherwise.

mod nyu;
mod png_pairs;
mod resize;
mod split;

pub use super::frame::Frame;
pub use nyu::NyuMat;
pub use png_pairs::{Pair, PngPairs, Role};
pub use resize::{preprocess, resize};
pub use split::{read_split_file, seeded_split};

use crate::config::{Config, Dataset};
use crate::error::data_error;

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
                    let frame = crate::data::synthetic_rgbd::render(
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
