//! Data sets: the Q-tips generator, the loader of the authors' on-disk layout,
//! the RGB-D sets of the depth task, and the normalised in-memory splits the
//! trainer draws batches from.

pub mod frame;
pub mod mat5;
mod png;
pub mod qtips;
pub mod rgbd;
pub mod segmentation;
pub mod synthetic_rgbd;

use crate::config::{ClassWeights, Config, Task};
use crate::error::Failure;
use anyhow::Result;
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use segmentation::SegmentationSplit;

/// One split, normalised, ready to be cut into batches.
#[derive(Debug, Clone)]
pub struct Split {
    /// (pixel/255 − mean)/std, image after image, channel after channel, row-major.
    images: Vec<f32>,
    /// Segmentation: the class maps. Empty for depth.
    labels: Vec<u8>,
    /// Depth: metres, image after image. Empty for segmentation.
    depths: Vec<f32>,
    pub names: Vec<String>,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl Split {
    pub fn new(raw: &SegmentationSplit, mean: f64, std: f64) -> Self {
        let images = raw
            .images
            .iter()
            .map(|&p| ((p as f64 / 255.0 - mean) / std) as f32)
            .collect();
        Self {
            images,
            labels: raw.labels.clone(),
            depths: Vec::new(),
            names: raw.names.clone(),
            height: raw.height,
            width: raw.width,
            channels: 1,
        }
    }

    /// RGB-D frames, each RGB channel normalised with the training split's
    /// statistics: ((pixel/255 − mean_c)/std_c).
    pub fn from_rgbd(frames: &[rgbd::Frame], names: &[String], stats: &DepthStats) -> Self {
        let (height, width) = frames.first().map_or((0, 0), |f| (f.height, f.width));
        let p = height * width;
        let mut images = Vec::with_capacity(frames.len() * 3 * p);
        let mut depths = Vec::with_capacity(frames.len() * p);
        for f in frames {
            for c in 0..3 {
                let (m, s) = (stats.rgb_mean[c], stats.rgb_std[c]);
                images.extend((0..p).map(|i| ((f.rgb[3 * i + c] as f64 / 255.0 - m) / s) as f32));
            }
            depths.extend_from_slice(&f.depth);
        }
        Self {
            images,
            labels: Vec::new(),
            depths,
            names: names.to_vec(),
            height,
            width,
            channels: 3,
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Image `i`, normalised, channel after channel, row-major.
    pub fn image(&self, i: usize) -> &[f32] {
        let size = self.channels * self.pixels();
        &self.images[i * size..(i + 1) * size]
    }

    /// Class map of image `i`, row-major.
    pub fn label(&self, i: usize) -> &[u8] {
        &self.labels[i * self.pixels()..(i + 1) * self.pixels()]
    }

    /// Depth batch: images [n, 3, H, W], depths [n, 1, H, W] in metres and
    /// the depths on the host; image k mirrored left-right where `flips[k]`.
    pub fn depth_batch<B: Backend>(
        &self,
        indices: &[usize],
        flips: &[bool],
        device: &B::Device,
    ) -> (Tensor<B, 4>, Tensor<B, 4>, Vec<f32>) {
        let (p, c) = (self.pixels(), self.channels);
        let (n, h, w) = (indices.len(), self.height, self.width);
        let mut images = Vec::with_capacity(n * c * p);
        let mut depths = Vec::with_capacity(n * p);
        // Row by row, reversed when flipped.
        let rows = |plane: &[f32], flip: bool, out: &mut Vec<f32>| {
            for row in plane.chunks(w) {
                if flip {
                    out.extend(row.iter().rev());
                } else {
                    out.extend_from_slice(row);
                }
            }
        };
        for (k, &i) in indices.iter().enumerate() {
            let flip = flips.get(k).copied().unwrap_or(false);
            rows(&self.images[i * c * p..(i + 1) * c * p], flip, &mut images);
            rows(&self.depths[i * p..(i + 1) * p], flip, &mut depths);
        }
        (
            Tensor::from_data(TensorData::new(images, [n, c, h, w]), device),
            Tensor::from_data(TensorData::new(depths.clone(), [n, 1, h, w]), device),
            depths,
        )
    }

    /// Images [n, 1, H, W], labels [n, H, W] and the labels as bytes.
    pub fn batch<B: Backend>(
        &self,
        indices: &[usize],
        device: &B::Device,
    ) -> (Tensor<B, 4>, Tensor<B, 3, Int>, Vec<u8>) {
        let (n, h, w) = (indices.len(), self.height, self.width);
        let images: Vec<f32> = indices
            .iter()
            .flat_map(|&i| self.image(i))
            .copied()
            .collect();
        let labels: Vec<u8> = indices
            .iter()
            .flat_map(|&i| self.label(i))
            .copied()
            .collect();
        let label_ints: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        (
            Tensor::from_data(TensorData::new(images, [n, 1, h, w]), device),
            Tensor::from_data(TensorData::new(label_ints, [n, h, w]), device),
            labels,
        )
    }
}

/// Both splits of an experiment's data set, with the statistics the authors
/// computed from the training split.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub train: Split,
    pub val: Split,
    /// Normalisation of the training split (mean over images of per-image mean and std).
    pub mean: f64,
    pub std: f64,
    /// Per-class loss weights resolved from the config (`auto` = 1 − pixel frequency).
    pub class_weights: Vec<f64>,
    /// Depth task: the normalisation of images and depths.
    pub depth: Option<DepthStats>,
}

/// Normalisation of an RGB-D training split: per-channel mean and std of
/// pixel/255 over all its pixels, and mean and std of ln(depth in metres).
/// The depth head predicts (ln d − log_depth_mean)/log_depth_std.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DepthStats {
    pub rgb_mean: [f64; 3],
    pub rgb_std: [f64; 3],
    pub log_depth_mean: f64,
    pub log_depth_std: f64,
}

impl DepthStats {
    /// Computed in f64 over every pixel (sums of integers for RGB, exact).
    pub fn of(frames: &[rgbd::Frame]) -> Self {
        let (mut sum, mut sum_sq, mut n) = ([0u128; 3], [0u128; 3], 0u128);
        let (mut ld, mut ld_sq, mut nd) = (0f64, 0f64, 0f64);
        for f in frames {
            for px in f.rgb.chunks(3) {
                for c in 0..3 {
                    sum[c] += px[c] as u128;
                    sum_sq[c] += (px[c] as u128) * (px[c] as u128);
                }
            }
            n += (f.rgb.len() / 3) as u128;
            for &d in &f.depth {
                let l = (d as f64).ln();
                ld += l;
                ld_sq += l * l;
                nd += 1.0;
            }
        }
        let mean = |c: usize| sum[c] as f64 / (n * 255) as f64;
        let std = |c: usize| {
            let var = (n * sum_sq[c] - sum[c] * sum[c]) as f64 / (n * n * 255 * 255) as f64;
            var.sqrt().max(1e-6)
        };
        let log_depth_mean = ld / nd;
        Self {
            rgb_mean: [mean(0), mean(1), mean(2)],
            rgb_std: [std(0), std(1), std(2)],
            log_depth_mean,
            log_depth_std: (ld_sq / nd - log_depth_mean * log_depth_mean)
                .max(0.0)
                .sqrt()
                .max(1e-6),
        }
    }
}

impl Prepared {
    /// Loads (generating first, when asked and absent) the configured data set.
    pub fn load(cfg: &Config) -> Result<Self> {
        let d = &cfg.data;
        match d.dataset.task() {
            Task::Segmentation => {}
            Task::Depth => return Self::load_rgbd(cfg),
        }
        if cfg.model.in_channels != 1 {
            return Err(Failure::Config(format!(
                "model.in_channels = {}: Q-tips images have 1 channel",
                cfg.model.in_channels
            ))
            .into());
        }
        if !d.path.exists() {
            if !d.generate {
                return Err(Failure::Data(format!(
                    "data folder {} does not exist (set data.generate = true to create it)",
                    d.path.display()
                ))
                .into());
            }
            let spec = qtips::QtipsSpec {
                seed: d.generator_seed,
                train: d.train_size,
                val: d.val_size,
                size: d.image_size,
            };
            tracing::info!(
                "generating Q-tips into {} ({} train, {} val, seed {})",
                d.path.display(),
                spec.train,
                spec.val,
                spec.seed
            );
            qtips::write_dataset(&d.path, &spec)?;
        }
        let n_classes = cfg.model.n_classes;
        let mut train = SegmentationSplit::load(&d.path, "train", n_classes)?;
        if d.train_limit > 0 && d.train_limit < train.len {
            let pixels = train.height * train.width;
            train.len = d.train_limit;
            train.images.truncate(train.len * pixels);
            train.labels.truncate(train.len * pixels);
            train.names.truncate(train.len);
        }
        let val = SegmentationSplit::load(&d.path, "val", n_classes)?;
        if (val.height, val.width) != (train.height, train.width) {
            return Err(Failure::Data(format!(
                "{}: validation images are {}×{}, training images {}×{}",
                d.path.display(),
                val.height,
                val.width,
                train.height,
                train.width
            ))
            .into());
        }
        let (mean, std) = train.normalisation();
        let class_weights = match &cfg.training.class_weights {
            ClassWeights::Auto => train
                .class_frequencies(n_classes)
                .iter()
                .map(|f| 1.0 - f)
                .collect(),
            ClassWeights::None => vec![1.0; n_classes],
            ClassWeights::Explicit(w) => w.clone(),
        };
        Ok(Self {
            train: Split::new(&train, mean, std),
            val: Split::new(&val, mean, std),
            mean,
            std,
            class_weights,
            depth: None,
        })
    }

    /// The depth task's data: frames read, split and preprocessed by
    /// [`rgbd::load`], normalised with the training split's statistics.
    fn load_rgbd(cfg: &Config) -> Result<Self> {
        let splits = rgbd::load(cfg)?;
        let stats = DepthStats::of(&splits.train);
        Ok(Self {
            train: Split::from_rgbd(&splits.train, &splits.train_names, &stats),
            val: Split::from_rgbd(&splits.val, &splits.val_names, &stats),
            // The mean over the channels, for the run.json summary.
            mean: stats.rgb_mean.iter().sum::<f64>() / 3.0,
            std: stats.rgb_std.iter().sum::<f64>() / 3.0,
            class_weights: Vec::new(),
            depth: Some(stats),
        })
    }

    pub fn class_weights_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 1> {
        let w: Vec<f32> = self.class_weights.iter().map(|&w| w as f32).collect();
        Tensor::from_data(TensorData::new(w, [self.class_weights.len()]), device)
    }
}
