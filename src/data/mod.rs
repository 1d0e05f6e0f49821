//! Data sets: the Q-tips generator, the loader of the authors' on-disk layout,
//! and the normalised in-memory splits the trainer draws batches from.

pub mod qtips;
pub mod segmentation;

use crate::config::{ClassWeights, Config, Dataset};
use crate::error::Failure;
use anyhow::Result;
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use segmentation::SegmentationSplit;

/// One split, normalised, ready to be cut into batches.
#[derive(Debug, Clone)]
pub struct Split {
    /// (pixel/255 − mean)/std, image after image, row-major.
    images: Vec<f32>,
    labels: Vec<u8>,
    pub names: Vec<String>,
    pub height: usize,
    pub width: usize,
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
            names: raw.names.clone(),
            height: raw.height,
            width: raw.width,
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

    /// Image `i`, normalised, row-major.
    pub fn image(&self, i: usize) -> &[f32] {
        &self.images[i * self.pixels()..(i + 1) * self.pixels()]
    }

    /// Class map of image `i`, row-major.
    pub fn label(&self, i: usize) -> &[u8] {
        &self.labels[i * self.pixels()..(i + 1) * self.pixels()]
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
}

impl Prepared {
    /// Loads (generating first, when asked and absent) the configured data set.
    pub fn load(cfg: &Config) -> Result<Self> {
        let d = &cfg.data;
        match d.dataset {
            Dataset::Qtips => {}
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
        })
    }

    pub fn class_weights_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 1> {
        let w: Vec<f32> = self.class_weights.iter().map(|&w| w as f32).collect();
        Tensor::from_data(TensorData::new(w, [self.class_weights.len()]), device)
    }
}
