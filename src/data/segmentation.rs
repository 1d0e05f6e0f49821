//! Loader of the authors' on-disk layout of a segmentation data set:
//!
//! ```text
//! ROOT/SPLIT/filenames.txt      one file name per line, e.g. "000000.png"
//! ROOT/SPLIT/images/NAME        any PNG, converted to 8-bit greyscale
//! ROOT/SPLIT/labels/NAME        8-bit greyscale PNG of class indices
//! ```
//!
//! Every problem is reported as [`Failure::Data`](crate::error::Failure::Data)
//! naming the file or folder and what was expected, since the user has to fix
//! the data, not the code.

use std::fs;
use std::path::Path;

use image::DynamicImage;

use crate::data::png::decode;
use crate::data::qtips::Sample;
use crate::error::data_error;

/// Where images and label maps are listed, and what they must be: the
/// decoder names both when one is missing or undecodable.
const LISTED: &str = "listed in filenames.txt";
const EXPECTED: &str = "expected a PNG image";

/// A split of a segmentation data set held in memory as raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentationSplit {
    /// `len` greyscale images, each `height`×`width`, row-major, concatenated.
    pub images: Vec<u8>,
    /// The label maps (class indices), laid out like `images`.
    pub labels: Vec<u8>,
    pub len: usize,
    pub height: usize,
    pub width: usize,
    /// File name of each image, as listed in filenames.txt.
    pub names: Vec<String>,
}

impl SegmentationSplit {
    /// Reads ROOT/SPLIT/filenames.txt and, for each NAME listed, images/NAME
    /// and labels/NAME. Images may be any PNG (converted to 8-bit grey);
    /// labels must be 8-bit greyscale with values below `n_classes`, and all
    /// images and labels must share one size.
    pub fn load(root: &Path, split: &str, n_classes: usize) -> anyhow::Result<Self> {
        if !root.is_dir() {
            return Err(data_error(format!(
                "data folder {} does not exist (expected a folder holding {split}/filenames.txt, \
                 {split}/images/ and {split}/labels/)",
                root.display()
            )));
        }
        let dir = root.join(split);
        if !dir.is_dir() {
            return Err(data_error(format!(
                "split folder {} does not exist (expected filenames.txt, images/ and labels/ in it)",
                dir.display()
            )));
        }
        let names = read_names(&dir.join("filenames.txt"))?;
        let mut out = SegmentationSplit {
            images: Vec::new(),
            labels: Vec::new(),
            len: 0,
            height: 0,
            width: 0,
            names: Vec::new(),
        };
        let mut first = String::new();
        for name in names {
            let image_path = dir.join("images").join(&name);
            let label_path = dir.join("labels").join(&name);
            let image = decode(&image_path, LISTED, EXPECTED)?.to_luma8();
            let label = match decode(&label_path, LISTED, EXPECTED)? {
                DynamicImage::ImageLuma8(label) => label,
                other => {
                    return Err(data_error(format!(
                        "label map {} is {:?}, expected 8-bit greyscale (L8) class indices",
                        label_path.display(),
                        other.color()
                    )))
                }
            };
            let (w, h) = (image.width() as usize, image.height() as usize);
            if label.dimensions() != image.dimensions() {
                return Err(data_error(format!(
                    "label map {} is {}×{} but its image {} is {w}×{h} (expected the same size)",
                    label_path.display(),
                    label.width(),
                    label.height(),
                    image_path.display()
                )));
            }
            if out.len == 0 {
                (out.width, out.height) = (w, h);
                first = image_path.display().to_string();
            } else if (w, h) != (out.width, out.height) {
                return Err(data_error(format!(
                    "image {} is {w}×{h}, expected {}×{} like the first image {first}",
                    image_path.display(),
                    out.width,
                    out.height
                )));
            }
            if let Some(i) = label.as_raw().iter().position(|&v| v as usize >= n_classes) {
                return Err(data_error(format!(
                    "label map {} has value {} at row {}, column {} (expected 0..={})",
                    label_path.display(),
                    label.as_raw()[i],
                    i / w,
                    i % w,
                    n_classes.saturating_sub(1)
                )));
            }
            out.images.extend_from_slice(image.as_raw());
            out.labels.extend_from_slice(label.as_raw());
            out.names.push(name);
            out.len += 1;
        }
        Ok(out)
    }

    /// Wraps generated samples (e.g. Q-tips) without touching the disk;
    /// names are "000000.png", … as [`crate::data::qtips::write_dataset`]
    /// would write them. Panics if a sample is not size×size.
    pub fn from_samples(samples: Vec<Sample>, size: usize) -> Self {
        let len = samples.len();
        let mut images = Vec::with_capacity(len * size * size);
        let mut labels = Vec::with_capacity(len * size * size);
        for s in &samples {
            assert!(s.image.len() == size * size && s.label.len() == size * size);
            images.extend_from_slice(&s.image);
            labels.extend_from_slice(&s.label);
        }
        SegmentationSplit {
            images,
            labels,
            len,
            height: size,
            width: size,
            names: (0..len).map(|i| format!("{i:06}.png")).collect(),
        }
    }

    fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Image `i`, row-major.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * self.pixels()..(i + 1) * self.pixels()]
    }

    /// Label map `i`, row-major.
    pub fn label(&self, i: usize) -> &[u8] {
        &self.labels[i * self.pixels()..(i + 1) * self.pixels()]
    }

    /// The authors' normalisation: mean over images of the per-image mean
    /// and std of pixel/255 (population std per image). Per image, the sums
    /// are exact integers, so each mean and variance is rounded only once.
    pub fn normalisation(&self) -> (f64, f64) {
        let n = self.pixels() as u128;
        let (mut mean, mut std) = (0.0, 0.0);
        for i in 0..self.len {
            let sum: u128 = self.image(i).iter().map(|&p| p as u128).sum();
            let sum_sq: u128 = self
                .image(i)
                .iter()
                .map(|&p| (p as u128) * (p as u128))
                .sum();
            mean += sum as f64 / (n * 255) as f64;
            std += ((n * sum_sq - sum * sum) as f64 / (n * n * 255 * 255) as f64).sqrt();
        }
        (mean / self.len as f64, std / self.len as f64)
    }

    /// Fraction of pixels of each class (labels >= `n_classes` are not
    /// counted; [`Self::load`] rejects them anyway).
    pub fn class_frequencies(&self, n_classes: usize) -> Vec<f64> {
        let mut counts = vec![0usize; n_classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        let total = self.labels.len().max(1) as f64;
        counts.into_iter().map(|c| c as f64 / total).collect()
    }
}

/// The file names listed in filenames.txt, skipping blank lines; each must
/// be a plain file name (no folders), so it stays inside images/ and labels/.
fn read_names(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = fs::read_to_string(path).map_err(|e| {
        data_error(format!(
            "cannot read {}: {e} (expected one image file name per line)",
            path.display()
        ))
    })?;
    let mut names = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let name = line.trim();
        if name.is_empty() {
            continue;
        }
        if name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(data_error(format!(
                "{}, line {}: {name:?} is not a plain file name (expected e.g. \"000000.png\")",
                path.display(),
                i + 1
            )));
        }
        names.push(name.to_string());
    }
    if names.is_empty() {
        return Err(data_error(format!(
            "{} lists no file names (expected one image file name per line)",
            path.display()
        )));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::qtips::{self, QtipsSpec, Split};
    use std::path::PathBuf;

    /// A small Q-tips set on disk: 4 train, 2 val images.
    fn fixture() -> (tempfile::TempDir, PathBuf, QtipsSpec) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("qtips");
        let spec = QtipsSpec {
            train: 4,
            val: 2,
            ..QtipsSpec::default()
        };
        qtips::write_dataset(&root, &spec).unwrap();
        (tmp, root, spec)
    }

    /// Loads train and returns the error message, checking it is a data error.
    fn load_error(root: &Path, split: &str, n_classes: usize) -> String {
        let err = SegmentationSplit::load(root, split, n_classes).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 3, "{err}");
        err.to_string()
    }

    fn save(path: PathBuf, img: DynamicImage) {
        img.save_with_format(path, image::ImageFormat::Png).unwrap();
    }

    #[test]
    fn round_trip_through_disk() {
        let (_tmp, root, spec) = fixture();
        for split in [Split::Train, Split::Val] {
            let loaded = SegmentationSplit::load(&root, split.name(), 4).unwrap();
            let direct = SegmentationSplit::from_samples(qtips::generate(&spec, split), 64);
            assert_eq!(loaded, direct);
            assert_eq!(loaded.image(1), &qtips::generate(&spec, split)[1].image[..]);
        }
    }

    #[test]
    fn missing_root_split_or_list() {
        let (tmp, root, _) = fixture();
        assert!(load_error(&tmp.path().join("nowhere"), "train", 4).contains("nowhere"));
        assert!(load_error(&root, "test", 4).contains("test"));
        fs::remove_file(root.join("train/filenames.txt")).unwrap();
        assert!(load_error(&root, "train", 4).contains("filenames.txt"));
        fs::write(root.join("train/filenames.txt"), "\n").unwrap();
        assert!(load_error(&root, "train", 4).contains("filenames.txt"));
        fs::write(root.join("train/filenames.txt"), "000000.png\n../x.png\n").unwrap();
        let msg = load_error(&root, "train", 4);
        assert!(
            msg.contains("filenames.txt") && msg.contains("line 2"),
            "{msg}"
        );
    }

    #[test]
    fn missing_corrupt_or_truncated_png() {
        let (_tmp, root, _) = fixture();
        fs::remove_file(root.join("train/images/000001.png")).unwrap();
        assert!(load_error(&root, "train", 4).contains("images/000001.png"));
        fs::write(root.join("train/images/000001.png"), b"not a png").unwrap();
        assert!(load_error(&root, "train", 4).contains("images/000001.png"));
        let label = root.join("train/labels/000002.png");
        let bytes = fs::read(&label).unwrap();
        fs::write(&label, &bytes[..bytes.len() / 2]).unwrap();
        fs::copy(
            root.join("train/images/000000.png"),
            root.join("train/images/000001.png"),
        )
        .unwrap();
        assert!(load_error(&root, "train", 4).contains("labels/000002.png"));
    }

    #[test]
    fn colour_images_are_converted_but_labels_must_be_grey() {
        let (_tmp, root, spec) = fixture();
        let grey = image::open(root.join("train/images/000000.png")).unwrap();
        save(
            root.join("train/images/000000.png"),
            DynamicImage::ImageRgb8(grey.to_rgb8()),
        );
        let loaded = SegmentationSplit::load(&root, "train", 4).unwrap();
        assert_eq!(
            loaded.image(0),
            &qtips::generate(&spec, Split::Train)[0].image[..]
        );
        let label = image::open(root.join("train/labels/000003.png")).unwrap();
        save(
            root.join("train/labels/000003.png"),
            DynamicImage::ImageRgb8(label.to_rgb8()),
        );
        assert!(load_error(&root, "train", 4).contains("labels/000003.png"));
    }

    #[test]
    fn sizes_must_agree() {
        let (_tmp, root, _) = fixture();
        let small = || DynamicImage::ImageLuma8(image::GrayImage::new(32, 32));
        save(root.join("train/labels/000001.png"), small());
        assert!(load_error(&root, "train", 4).contains("labels/000001.png"));
        save(root.join("train/images/000001.png"), small());
        let msg = load_error(&root, "train", 4);
        assert!(
            msg.contains("images/000001.png") && msg.contains("000000.png"),
            "{msg}"
        );
    }

    #[test]
    fn label_values_must_be_classes() {
        let (_tmp, root, _) = fixture();
        let mut label = image::GrayImage::new(64, 64);
        label.put_pixel(5, 3, image::Luma([7])); // column 5, row 3
        save(
            root.join("val/labels/000001.png"),
            DynamicImage::ImageLuma8(label),
        );
        let msg = load_error(&root, "val", 4);
        for part in [
            "val/labels/000001.png",
            "value 7",
            "row 3",
            "column 5",
            "0..=3",
        ] {
            assert!(msg.contains(part), "{part:?} not in {msg}");
        }
        // Q-tips has 4 classes: with 2, the first object pixel is refused.
        assert!(load_error(&root, "train", 2).contains("train/labels/"));
    }

    #[test]
    fn normalisation_of_qtips_matches_the_authors() {
        let spec = QtipsSpec::default();
        let train = SegmentationSplit::from_samples(qtips::generate(&spec, Split::Train), 64);
        let (mean, std) = train.normalisation();
        assert!((mean - 0.266144).abs() < 0.003, "mean {mean}");
        assert!((std - 0.082362).abs() < 0.003, "std {std}");
        let freq = train.class_frequencies(4);
        assert!((freq.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((freq[0] - 0.9385).abs() < 0.004, "{freq:?}");
    }

    #[test]
    fn normalisation_matches_direct_computation() {
        let images: [[u8; 4]; 2] = [[0, 255, 255, 255], [0, 255, 0, 255]];
        let samples = images
            .iter()
            .map(|im| Sample {
                image: im.to_vec(),
                label: vec![0; 4],
            })
            .collect();
        let split = SegmentationSplit::from_samples(samples, 2);
        let (mut mean, mut std) = (0.0, 0.0);
        for im in &images {
            let x: Vec<f64> = im.iter().map(|&p| p as f64 / 255.0).collect();
            let m = x.iter().sum::<f64>() / 4.0;
            mean += m;
            std += (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 4.0).sqrt();
        }
        assert_eq!(split.normalisation(), (mean / 2.0, std / 2.0));
        assert_eq!(
            split.normalisation(),
            (0.625, (0.75f64.sqrt() / 2.0 + 0.5) / 2.0)
        );
        assert_eq!(split.class_frequencies(2), vec![1.0, 0.0]);
    }
}
