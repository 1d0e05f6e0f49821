//! NYU Depth V2's `nyu_depth_v2_labeled.mat` (MATLAB v7.3, i.e. HDF5),
//! read one transposed frame at a time.

use std::path::{Path, PathBuf};

use crate::data::frame::Frame;
use crate::error::data_error;

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
