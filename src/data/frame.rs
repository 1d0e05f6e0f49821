//! One RGB-D frame, as every depth source (NYU, PNG pairs, the synthetic
//! rooms) hands it to the loader.

use crate::error::Failure;

/// One RGB-D frame: `rgb` row-major H×W×3, `depth` H×W in metres.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub rgb: Vec<u8>,
    pub depth: Vec<f32>,
    pub height: usize,
    pub width: usize,
}

impl Frame {
    /// Refuses a depth that is not finite and > 0, naming `what` and the pixel.
    pub fn check_depth(&self, what: &str) -> anyhow::Result<()> {
        match self.depth.iter().position(|d| !(d.is_finite() && *d > 0.0)) {
            None => Ok(()),
            Some(i) => Err(Failure::Data(format!(
                "{what}: depth {} at row {}, column {} (expected a finite depth > 0 in metres \
                 at every pixel; holes are not supported)",
                self.depth[i],
                i / self.width,
                i % self.width
            ))
            .into()),
        }
    }

    /// Mirror image (left-right).
    pub fn flipped(&self) -> Frame {
        let (h, w) = (self.height, self.width);
        let mut out = self.clone();
        for r in 0..h {
            for c in 0..w {
                let (dst, src) = (r * w + c, r * w + (w - 1 - c));
                out.depth[dst] = self.depth[src];
                out.rgb[3 * dst..3 * dst + 3].copy_from_slice(&self.rgb[3 * src..3 * src + 3]);
            }
        }
        out
    }
}
