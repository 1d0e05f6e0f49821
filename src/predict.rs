//! `imex-run predict RUN`: a trained checkpoint on one split. The whole split
//! is evaluated in the run's evaluation batches (so the paper's batch-statistics
//! BN sees what it saw in training), its metrics are reported, and the class
//! maps and per-class probabilities of chosen images are kept for figures and
//! written as `.npy` arrays for anyone who wants to plot them elsewhere.

use crate::data::Prepared;
use crate::error::Failure;
use crate::files::write_atomically;
use crate::metrics::EpochMetrics;
use crate::model::checkpoint::read_safetensors;
use crate::model::Network;
use crate::results::RunRecord;
use crate::train::{depth_from_head, evaluate_each, evaluate_task, predictions};
use anyhow::Result;
use burn::backend::Flex;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use npyz::WriterBuilder;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Which stored weights to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Checkpoint {
    Best,
    Last,
}

impl Checkpoint {
    pub fn name(self) -> &'static str {
        match self {
            Checkpoint::Best => "best",
            Checkpoint::Last => "last",
        }
    }
}

/// Which split to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitName {
    Train,
    Val,
}

impl SplitName {
    pub fn name(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Val => "val",
        }
    }
}

/// The validation images the slides show (the authors' indices).
pub const DEFAULT_IMAGES: [usize; 4] = [18, 33, 3, 11];

/// Which checkpoint of which run was evaluated on which split, and the
/// images kept from it: what a segmentation and a depth prediction share.
#[derive(Debug, Clone)]
pub struct Source {
    pub run: String,
    pub arch: crate::config::Arch,
    pub checkpoint: Checkpoint,
    pub epoch: usize,
    pub split: SplitName,
    pub height: usize,
    pub width: usize,
    /// Indices of the kept images in the split.
    pub images: Vec<usize>,
}

impl Source {
    fn new(
        run: &RunRecord,
        (checkpoint, epoch): (Checkpoint, usize),
        (split, split_data): (SplitName, &crate::data::Split),
        images: &[usize],
    ) -> Self {
        Self {
            run: run.name().to_string(),
            arch: run.config.model.arch,
            checkpoint,
            epoch,
            split,
            height: split_data.height,
            width: split_data.width,
            images: images.to_vec(),
        }
    }

    /// The keys every metrics.json starts with.
    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut keys = serde_json::Map::new();
        keys.insert("run".into(), json!(self.run));
        keys.insert("checkpoint".into(), json!(self.checkpoint.name()));
        keys.insert("epoch".into(), json!(self.epoch));
        keys.insert("images".into(), json!(self.images));
        keys
    }
}

/// What a checkpoint made of one split.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub source: Source,
    pub metrics: crate::metrics::SegmentationMetrics,
    pub n_classes: usize,
    /// Kept images' intensities in [0, 1] (the normalisation undone).
    pub intensities: Vec<Vec<f32>>,
    pub labels: Vec<Vec<u8>>,
    pub classes: Vec<Vec<u8>>,
    /// Kept images' class probabilities, [C, H, W] each.
    pub probabilities: Vec<Vec<f32>>,
}

/// A checkpoint's network (kernels projected, as in evaluation) and its data.
pub struct Loaded<B: Backend> {
    pub net: Network<B>,
    /// The epoch whose end the checkpoint holds.
    pub epoch: usize,
    pub data: Prepared,
}

/// `run`'s `checkpoint` on `device`, with the run's data.
pub fn load<B: Backend>(
    run: &RunRecord,
    checkpoint: Checkpoint,
    device: &B::Device,
) -> Result<Loaded<B>> {
    let path = run.checkpoint(checkpoint.name()).ok_or_else(|| {
        let command = (run.provenance.as_ref())
            .map_or_else(|| "imex-run CONFIG".into(), |p| p.command_line.join(" "));
        Failure::Data(format!(
            "{} has no {} checkpoint (only reference runs commit theirs); train it with: {command}",
            run.dir.display(),
            checkpoint.name()
        ))
    })?;
    let (tensors, metadata) = read_safetensors(&path)?;
    let epoch = metadata
        .get("epoch")
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let data = Prepared::load(&run.config)?;
    // Checkpoints hold the weights as the optimiser left them; like training's
    // evaluation, project same-width kernels onto zero mean before use.
    let net =
        Network::<B>::from_named_tensors(&run.config.model, &tensors, device)?.project_kernels();
    Ok(Loaded { net, epoch, data })
}

/// The split asked for, once every requested image is known to be in it.
pub fn chosen<'a>(
    data: &'a Prepared,
    split: SplitName,
    images: &[usize],
) -> Result<&'a crate::data::Split> {
    let split_data = match split {
        SplitName::Train => &data.train,
        SplitName::Val => &data.val,
    };
    if let Some(&bad) = images.iter().find(|&&i| i >= split_data.len()) {
        return Err(Failure::Config(format!(
            "image {bad} does not exist: the {:?} split has {} images (0..{})",
            split,
            split_data.len(),
            split_data.len()
        ))
        .into());
    }
    Ok(split_data)
}

/// Evaluates `run`'s `checkpoint` on `split` (on the CPU), keeping `images`.
pub fn predict(
    run: &RunRecord,
    checkpoint: Checkpoint,
    split: SplitName,
    images: &[usize],
) -> Result<Prediction> {
    let cfg = &run.config;
    let Loaded { net, epoch, data } = load::<Flex>(run, checkpoint, &Default::default())?;
    let split_data = chosen(&data, split, images)?;
    let kept = images.len();
    let (mut classes, mut probabilities) = (vec![Vec::new(); kept], vec![Vec::new(); kept]);
    let metrics = evaluate_each(
        &net,
        &data,
        split_data,
        cfg.training.eval_batch_size,
        |chunk, logits| {
            let wanted: Vec<(usize, usize)> = chunk
                .iter()
                .enumerate()
                .flat_map(|(row, i)| {
                    images
                        .iter()
                        .enumerate()
                        .filter(move |(_, j)| *j == i)
                        .map(move |(k, _)| (k, row))
                })
                .collect();
            if wanted.is_empty() {
                return;
            }
            let [_, c, h, w] = logits.dims();
            let class_maps = predictions(logits.clone());
            let probs: Vec<f32> = softmax(logits.clone(), 1)
                .into_data()
                .to_vec()
                .expect("f32 probabilities");
            for (k, row) in wanted {
                classes[k] = class_maps[row * h * w..(row + 1) * h * w].to_vec();
                probabilities[k] = probs[row * c * h * w..(row + 1) * c * h * w].to_vec();
            }
        },
    );
    let (mean, std) = (data.mean as f32, data.std as f32);
    Ok(Prediction {
        source: Source::new(run, (checkpoint, epoch), (split, split_data), images),
        metrics,
        n_classes: cfg.model.n_classes,
        intensities: images
            .iter()
            .map(|&i| split_data.image(i).iter().map(|x| x * std + mean).collect())
            .collect(),
        labels: images
            .iter()
            .map(|&i| split_data.label(i).to_vec())
            .collect(),
        classes,
        probabilities,
    })
}

impl Prediction {
    /// The checkpoint's metrics on the split, as JSON.
    pub fn metrics_json(&self) -> serde_json::Value {
        let m = &self.metrics;
        let mut keys = self.source.json();
        keys.insert(
            "split".into(),
            json!(format!("{:?}", self.source.split).to_lowercase()),
        );
        keys.insert("loss".into(), json!(m.loss()));
        keys.insert("pixel_accuracy".into(), json!(m.pixel_accuracy()));
        keys.insert("mean_iou".into(), json!(m.mean_iou()));
        keys.insert("paper_iou".into(), json!(m.paper_iou()));
        keys.insert("class_iou".into(), json!(m.class_iou()));
        keys.into()
    }

    /// Writes metrics.json and images/labels/predictions/probabilities.npy
    /// into `out` (the report draws the figures).
    pub fn write(&self, out: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(out)
            .map_err(|e| Failure::Output(format!("cannot create {}: {e}", out.display())))?;
        let source = &self.source;
        let (n, c, h, w) = (
            source.images.len() as u64,
            self.n_classes as u64,
            source.height as u64,
            source.width as u64,
        );
        let mut files = Vec::new();
        let mut npy = |name: &str, bytes: Vec<u8>| -> Result<()> {
            let path = out.join(name);
            write_atomically(&path, &bytes)?;
            files.push(path);
            Ok(())
        };
        npy(
            "images.npy",
            npy_bytes(&[n, h, w], self.intensities.concat())?,
        )?;
        npy("labels.npy", npy_bytes(&[n, h, w], self.labels.concat())?)?;
        npy(
            "predictions.npy",
            npy_bytes(&[n, h, w], self.classes.concat())?,
        )?;
        npy(
            "probabilities.npy",
            npy_bytes(&[n, c, h, w], self.probabilities.concat())?,
        )?;
        let metrics = out.join("metrics.json");
        write_atomically(
            &metrics,
            (serde_json::to_string_pretty(&self.metrics_json())? + "\n").as_bytes(),
        )?;
        files.push(metrics);
        Ok(files)
    }
}

/// What a depth checkpoint made of one split.
#[derive(Debug, Clone)]
pub struct DepthPrediction {
    pub source: Source,
    pub metrics: EpochMetrics,
    /// Kept frames' RGB in [0, 1], [3, H, W] each (the normalisation undone).
    pub rgb: Vec<Vec<f32>>,
    /// Kept frames' true and predicted depths in metres, [H, W] each.
    pub truth: Vec<Vec<f32>>,
    pub predicted: Vec<Vec<f32>>,
}

/// Evaluates a depth run's `checkpoint` on `split` (on the CPU), keeping `images`.
pub fn predict_depth(
    run: &RunRecord,
    checkpoint: Checkpoint,
    split: SplitName,
    images: &[usize],
) -> Result<DepthPrediction> {
    let cfg = &run.config;
    let Loaded { net, epoch, data } = load::<Flex>(run, checkpoint, &Default::default())?;
    let split_data = chosen(&data, split, images)?;
    let stats = data
        .depth
        .as_ref()
        .ok_or_else(|| Failure::Data(format!("{} is not a depth run", run.dir.display())))?;
    let metrics = evaluate_task(cfg, &net, &data, split_data, cfg.training.eval_batch_size);
    let (mut rgb, mut truth, mut predicted) = (Vec::new(), Vec::new(), Vec::new());
    let device = Default::default();
    // The kept frames in the same evaluation batches (BN may use batch statistics).
    let indices: Vec<usize> = (0..split_data.len()).collect();
    for &i in images {
        let batch = cfg.training.eval_batch_size;
        let chunk = &indices[i / batch * batch..((i / batch + 1) * batch).min(indices.len())];
        let (x, _, depth_host) = split_data.depth_batch::<Flex>(chunk, &[], &device);
        let row = i - chunk[0];
        let plane = split_data.pixels();
        let out: Vec<f32> = depth_from_head(net.forward(x.clone()), stats)
            .into_data()
            .to_vec()
            .expect("f32 depths");
        predicted.push(out[row * plane..(row + 1) * plane].to_vec());
        truth.push(depth_host[row * plane..(row + 1) * plane].to_vec());
        let normalised: Vec<f32> = x.into_data().to_vec().expect("f32 images");
        rgb.push(
            normalised[row * 3 * plane..(row + 1) * 3 * plane]
                .iter()
                .enumerate()
                .map(|(k, v)| {
                    let c = k / plane;
                    (*v as f64 * stats.rgb_std[c] + stats.rgb_mean[c]) as f32
                })
                .collect(),
        );
    }
    Ok(DepthPrediction {
        source: Source::new(run, (checkpoint, epoch), (split, split_data), images),
        metrics,
        rgb,
        truth,
        predicted,
    })
}

impl DepthPrediction {
    /// Writes metrics.json and rgb/depth/predicted_depth.npy into `out` (the
    /// report draws the figure).
    pub fn write(&self, out: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(out)
            .map_err(|e| Failure::Output(format!("cannot create {}: {e}", out.display())))?;
        let source = &self.source;
        let (n, h, w) = (
            source.images.len() as u64,
            source.height as u64,
            source.width as u64,
        );
        let mut files = Vec::new();
        for (name, shape, values) in [
            ("rgb.npy", vec![n, 3, h, w], self.rgb.concat()),
            ("depth.npy", vec![n, h, w], self.truth.concat()),
            (
                "predicted_depth.npy",
                vec![n, h, w],
                self.predicted.concat(),
            ),
        ] {
            let path = out.join(name);
            write_atomically(&path, &npy_bytes(&shape, values)?)?;
            files.push(path);
        }
        let mut metrics = self.source.json();
        for (name, value) in self.metrics.named_values() {
            metrics.insert(name, json!(value));
        }
        let path = out.join("metrics.json");
        write_atomically(
            &path,
            (serde_json::to_string_pretty(&metrics)? + "\n").as_bytes(),
        )?;
        files.push(path);
        Ok(files)
    }
}

/// An `.npy` file (NumPy's format, readable by `numpy.load`) of `values` in `shape`.
pub(crate) fn npy_bytes<T: npyz::Serialize + npyz::AutoSerialize>(
    shape: &[u64],
    values: Vec<T>,
) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut writer = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut bytes)
            .begin_nd()?;
        writer.extend(values)?;
        writer.finish()?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_files_carry_shape_and_values() {
        let bytes = npy_bytes(&[2, 3], vec![1u8, 2, 3, 4, 5, 6]).unwrap();
        let file = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(file.shape(), &[2, 3]);
        assert_eq!(file.into_vec::<u8>().unwrap(), vec![1, 2, 3, 4, 5, 6]);
        let bytes = npy_bytes(&[1, 2], vec![0.5f32, -1.0]).unwrap();
        assert_eq!(
            npyz::NpyFile::new(&bytes[..])
                .unwrap()
                .into_vec::<f32>()
                .unwrap(),
            vec![0.5, -1.0]
        );
    }
}
