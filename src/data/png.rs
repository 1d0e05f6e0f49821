//! The one PNG decoder of the data readers (segmentation folders and RGB-D
//! pairs): its messages name the file and where it was listed.

use std::path::Path;

use image::DynamicImage;

use crate::error::data_error;

/// Decodes the image at `path`, of any colour type. A missing file is
/// reported with `listed` (where its path came from), an undecodable one
/// with `expected` (what the reader wanted), so the user knows what to fix.
pub(super) fn decode(path: &Path, listed: &str, expected: &str) -> anyhow::Result<DynamicImage> {
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
                "cannot decode {}: {e} ({expected})",
                path.display()
            ))
        })
}
