//! Metrics accumulated over a whole epoch (not averaged per batch): for
//! segmentation (below) and for depth ([`DepthMetrics`]).
//!
//! - loss: the class-weighted cross-entropy Σ w_y·(−log p_y) / Σ w_y over every
//!   pixel of the epoch (PyTorch's normalisation, applied epoch-wide);
//! - pixel accuracy over all pixels, background included;
//! - IoU per class TP / (TP + FP + FN) from the epoch's confusion matrix, and
//!   their mean over the classes that occur in labels or predictions;
//! - the paper's "IoU": the authors' script's per-image
//!   (Σ(pred & label) + 1e-6) / (Σ(pred | label) + 1e-6) with **bitwise** and/or
//!   on integer class maps, averaged over images. Not a standard IoU; reported
//!   under its own name.

/// Running sums for one split and one epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationMetrics {
    n_classes: usize,
    /// confusion[label · n_classes + prediction] = pixel count.
    confusion: Vec<u64>,
    weighted_nll: f64,
    weight: f64,
    paper_iou_sum: f64,
    images: usize,
}

/// The authors' bitwise "IoU" of one image.
pub fn paper_iou(prediction: &[u8], label: &[u8]) -> f64 {
    let (and, or) = prediction
        .iter()
        .zip(label)
        .fold((0u64, 0u64), |(a, o), (&p, &l)| {
            (a + (p & l) as u64, o + (p | l) as u64)
        });
    paper_iou_of_sums(and, or)
}

/// The authors' "IoU" from an image's Σ(pred & label) and Σ(pred | label).
pub fn paper_iou_of_sums(and: u64, or: u64) -> f64 {
    (and as f64 + 1e-6) / (or as f64 + 1e-6)
}

impl SegmentationMetrics {
    pub fn new(n_classes: usize) -> Self {
        Self {
            n_classes,
            confusion: vec![0; n_classes * n_classes],
            weighted_nll: 0.0,
            weight: 0.0,
            paper_iou_sum: 0.0,
            images: 0,
        }
    }

    /// Adds one batch: per-pixel predictions and labels (image after image,
    /// `pixels` each) and the batch's loss numerator Σ w·nll and denominator Σ w.
    pub fn add(
        &mut self,
        predictions: &[u8],
        labels: &[u8],
        pixels: usize,
        weighted_nll: f64,
        weight: f64,
    ) {
        assert_eq!(predictions.len(), labels.len());
        for (&p, &l) in predictions.iter().zip(labels) {
            self.confusion[l as usize * self.n_classes + p as usize] += 1;
        }
        for (p, l) in predictions.chunks(pixels).zip(labels.chunks(pixels)) {
            self.paper_iou_sum += paper_iou(p, l);
            self.images += 1;
        }
        self.weighted_nll += weighted_nll;
        self.weight += weight;
    }

    /// Adds what a batch counted on the device: confusion counts
    /// (`confusion[label · n_classes + prediction]`), each image's
    /// (Σ pred & label, Σ pred | label), and the loss numerator and
    /// denominator. The same sums, in the same order, as [`Self::add`].
    pub fn add_counts(
        &mut self,
        confusion: &[u64],
        bitwise_sums: &[(u64, u64)],
        weighted_nll: f64,
        weight: f64,
    ) {
        assert_eq!(confusion.len(), self.confusion.len());
        for (total, &c) in self.confusion.iter_mut().zip(confusion) {
            *total += c;
        }
        for &(and, or) in bitwise_sums {
            self.paper_iou_sum += paper_iou_of_sums(and, or);
            self.images += 1;
        }
        self.weighted_nll += weighted_nll;
        self.weight += weight;
    }

    pub fn loss(&self) -> f64 {
        self.weighted_nll / self.weight
    }

    pub fn pixel_accuracy(&self) -> f64 {
        let correct: u64 = (0..self.n_classes)
            .map(|k| self.confusion[k * self.n_classes + k])
            .sum();
        correct as f64 / self.confusion.iter().sum::<u64>() as f64
    }

    /// IoU of each class; NaN for a class absent from labels and predictions.
    pub fn class_iou(&self) -> Vec<f64> {
        let k = self.n_classes;
        (0..k)
            .map(|c| {
                let tp = self.confusion[c * k + c];
                let row: u64 = (0..k).map(|p| self.confusion[c * k + p]).sum();
                let col: u64 = (0..k).map(|l| self.confusion[l * k + c]).sum();
                let union = row + col - tp;
                if union == 0 {
                    f64::NAN
                } else {
                    tp as f64 / union as f64
                }
            })
            .collect()
    }

    /// Mean of [`Self::class_iou`] over the classes that occur.
    pub fn mean_iou(&self) -> f64 {
        let present: Vec<f64> = self
            .class_iou()
            .into_iter()
            .filter(|v| !v.is_nan())
            .collect();
        present.iter().sum::<f64>() / present.len() as f64
    }

    pub fn paper_iou(&self) -> f64 {
        self.paper_iou_sum / self.images as f64
    }
}

/// Depth metrics accumulated over a whole epoch, over every pixel (each
/// pixel of each image counts once; the usual NYU definitions, Eigen et al.
/// 2014), with d the true and p the predicted depth in metres:
///
/// - `rmse` = sqrt(mean (p − d)²), in metres;
/// - `abs_rel` = mean |p − d| / d;
/// - `log10` = mean |log10 p − log10 d|;
/// - `delta1..3` = fraction of pixels with max(p/d, d/p) < 1.25, 1.25², 1.25³;
/// - `loss`: the training loss, Σ numerators / Σ denominators over the batches.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DepthMetrics {
    pixels: u64,
    squared_error: f64,
    relative_error: f64,
    log10_error: f64,
    within: [u64; 3],
    loss_numerator: f64,
    loss_denominator: f64,
}

/// The δ thresholds 1.25, 1.25², 1.25³.
pub const DELTA_THRESHOLDS: [f64; 3] = [1.25, 1.5625, 1.953125];

impl DepthMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one batch: predicted and true depths (metres, same order) and the
    /// batch's loss numerator and denominator.
    pub fn add(
        &mut self,
        predicted: &[f32],
        truth: &[f32],
        loss_numerator: f64,
        loss_denominator: f64,
    ) {
        assert_eq!(predicted.len(), truth.len());
        for (&p, &d) in predicted.iter().zip(truth) {
            let (p, d) = (p as f64, d as f64);
            let e = p - d;
            self.squared_error += e * e;
            self.relative_error += e.abs() / d;
            self.log10_error += (p.log10() - d.log10()).abs();
            let ratio = (p / d).max(d / p);
            for (k, t) in DELTA_THRESHOLDS.iter().enumerate() {
                if ratio < *t {
                    self.within[k] += 1;
                }
            }
        }
        self.pixels += predicted.len() as u64;
        self.loss_numerator += loss_numerator;
        self.loss_denominator += loss_denominator;
    }

    pub fn loss(&self) -> f64 {
        self.loss_numerator / self.loss_denominator
    }

    pub fn rmse(&self) -> f64 {
        (self.squared_error / self.pixels as f64).sqrt()
    }

    pub fn abs_rel(&self) -> f64 {
        self.relative_error / self.pixels as f64
    }

    pub fn log10(&self) -> f64 {
        self.log10_error / self.pixels as f64
    }

    /// δ < 1.25^(k+1), k = 0, 1, 2.
    pub fn delta(&self, k: usize) -> f64 {
        self.within[k] as f64 / self.pixels as f64
    }
}

/// One split's metrics for one epoch, for either task.
#[derive(Debug, Clone, PartialEq)]
pub enum EpochMetrics {
    Segmentation(SegmentationMetrics),
    Depth(DepthMetrics),
}

impl EpochMetrics {
    /// Empty metrics of the model's task.
    pub fn new(model: &crate::config::ModelSection) -> Self {
        match model.task {
            crate::config::Task::Segmentation => {
                EpochMetrics::Segmentation(SegmentationMetrics::new(model.n_classes))
            }
            crate::config::Task::Depth => EpochMetrics::Depth(DepthMetrics::new()),
        }
    }

    pub fn loss(&self) -> f64 {
        match self {
            EpochMetrics::Segmentation(m) => m.loss(),
            EpochMetrics::Depth(m) => m.loss(),
        }
    }

    /// (column suffix, value) pairs in metrics.csv order, after `loss`.
    pub fn named_values(&self) -> Vec<(String, f64)> {
        match self {
            EpochMetrics::Segmentation(m) => {
                let mut v = vec![
                    ("loss".to_string(), m.loss()),
                    ("pixel_accuracy".to_string(), m.pixel_accuracy()),
                    ("mean_iou".to_string(), m.mean_iou()),
                    ("paper_iou".to_string(), m.paper_iou()),
                ];
                v.extend(
                    m.class_iou()
                        .into_iter()
                        .enumerate()
                        .map(|(c, x)| (format!("iou_class{c}"), x)),
                );
                v
            }
            EpochMetrics::Depth(m) => vec![
                ("loss".to_string(), m.loss()),
                ("rmse".to_string(), m.rmse()),
                ("abs_rel".to_string(), m.abs_rel()),
                ("log10".to_string(), m.log10()),
                ("delta1".to_string(), m.delta(0)),
                ("delta2".to_string(), m.delta(1)),
                ("delta3".to_string(), m.delta(2)),
            ],
        }
    }

    /// A short summary for the log line.
    pub fn summary(&self) -> String {
        match self {
            EpochMetrics::Segmentation(m) => format!(
                "loss {:.4} acc {:.4} mIoU {:.3} paper-IoU {:.3}",
                m.loss(),
                m.pixel_accuracy(),
                m.mean_iou(),
                m.paper_iou()
            ),
            EpochMetrics::Depth(m) => format!(
                "loss {:.4} rmse {:.3} m abs_rel {:.3} δ1 {:.3}",
                m.loss(),
                m.rmse(),
                m.abs_rel(),
                m.delta(0)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitwise_iou_matches_hand_computation() {
        // pred 3 vs label 1: 3&1 = 1, 3|1 = 3; pred 0 vs label 2: 0, 2.
        let v = paper_iou(&[3, 0], &[1, 2]);
        assert!((v - (1.0 + 1e-6) / (5.0 + 1e-6)).abs() < 1e-12);
        // all background: 0/0 guarded by 1e-6 → 1.
        assert_eq!(paper_iou(&[0, 0], &[0, 0]), 1.0);
    }

    #[test]
    fn counts_add_up_as_the_class_maps_do() {
        let (predictions, labels) = ([0u8, 1, 1, 3, 2, 0, 0, 3], [0u8, 0, 1, 1, 2, 2, 3, 3]);
        let mut from_maps = SegmentationMetrics::new(4);
        from_maps.add(&predictions, &labels, 4, 3.0, 2.0);
        let mut confusion = vec![0u64; 16];
        for (&p, &l) in predictions.iter().zip(&labels) {
            confusion[l as usize * 4 + p as usize] += 1;
        }
        let sums = |i: usize| {
            let (p, l) = (&predictions[4 * i..4 * i + 4], &labels[4 * i..4 * i + 4]);
            let and = p.iter().zip(l).map(|(&p, &l)| (p & l) as u64).sum();
            let or = p.iter().zip(l).map(|(&p, &l)| (p | l) as u64).sum();
            (and, or)
        };
        let mut from_counts = SegmentationMetrics::new(4);
        from_counts.add_counts(&confusion, &[sums(0), sums(1)], 3.0, 2.0);
        assert_eq!(from_counts, from_maps);
    }

    #[test]
    fn confusion_metrics_match_hand_computation() {
        let mut m = SegmentationMetrics::new(3);
        // labels 0 0 1 1 | predictions 0 1 1 1 ; second image 2 2 0 0 | 2 0 0 0
        m.add(
            &[0, 1, 1, 1, 2, 0, 0, 0],
            &[0, 0, 1, 1, 2, 2, 0, 0],
            4,
            3.0,
            2.0,
        );
        m.add(&[], &[], 4, 1.0, 2.0);
        assert_eq!(m.loss(), 1.0);
        assert_eq!(m.pixel_accuracy(), 6.0 / 8.0);
        // class 0: tp 3, label count 4, predicted 4 → 3/5; class 1: tp 2, 2, 3 → 2/3; class 2: 1, 2, 1 → 1/2.
        let iou = m.class_iou();
        assert!(
            (iou[0] - 0.6).abs() < 1e-12
                && (iou[1] - 2.0 / 3.0).abs() < 1e-12
                && (iou[2] - 0.5).abs() < 1e-12
        );
        assert!((m.mean_iou() - (0.6 + 2.0 / 3.0 + 0.5) / 3.0).abs() < 1e-12);
        let expected_paper = (paper_iou(&[0, 1, 1, 1], &[0, 0, 1, 1])
            + paper_iou(&[2, 0, 0, 0], &[2, 2, 0, 0]))
            / 2.0;
        assert_eq!(m.paper_iou(), expected_paper);
    }

    #[test]
    fn absent_class_is_left_out_of_the_mean() {
        let mut m = SegmentationMetrics::new(4);
        m.add(&[0, 1], &[0, 1], 2, 0.0, 1.0);
        assert!(m.class_iou()[3].is_nan());
        assert_eq!(m.mean_iou(), 1.0);
    }

    #[test]
    fn depth_metrics_match_hand_computation() {
        let mut m = DepthMetrics::new();
        // (pred, true): (1, 1), (2, 1), (3, 4), (10, 8).
        m.add(&[1.0, 2.0], &[1.0, 1.0], 3.0, 2.0);
        m.add(&[3.0, 10.0], &[4.0, 8.0], 1.0, 2.0);
        assert_eq!(m.loss(), 1.0);
        // squared errors 0, 1, 1, 4 → rmse sqrt(6/4).
        assert!((m.rmse() - 1.5f64.sqrt()).abs() < 1e-12);
        // relative 0, 1, 1/4, 2/8 → 1.5/4.
        assert!((m.abs_rel() - 0.375).abs() < 1e-12);
        // log10 |0|, log10 2, log10 4/3, log10 10/8.
        let l = (2f64.log10() + (4.0f64 / 3.0).log10() + 1.25f64.log10()) / 4.0;
        assert!((m.log10() - l).abs() < 1e-12);
        // ratios 1, 2, 4/3, 1.25: < 1.25 → 1 of 4 (1.25 is not < 1.25);
        // < 1.5625 → 3; < 1.953125 → 3.
        assert_eq!((m.delta(0), m.delta(1), m.delta(2)), (0.25, 0.75, 0.75));
        let e = EpochMetrics::Depth(m.clone());
        let names: Vec<String> = e.named_values().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["loss", "rmse", "abs_rel", "log10", "delta1", "delta2", "delta3"]
        );
    }

    #[test]
    fn perfect_depth_scores_perfectly() {
        let mut m = DepthMetrics::new();
        m.add(&[0.5, 3.0, 9.5], &[0.5, 3.0, 9.5], 0.0, 3.0);
        assert_eq!((m.rmse(), m.abs_rel(), m.log10()), (0.0, 0.0, 0.0));
        assert_eq!((m.delta(0), m.delta(1), m.delta(2)), (1.0, 1.0, 1.0));
    }
}
