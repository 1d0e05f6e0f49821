//! Segmentation metrics accumulated over a whole epoch (not averaged per batch).
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
}
