//! Where a batch comes from: a host split, uploaded batch by batch, or the
//! split kept on the device for a whole run ([`Resident`]), from which a
//! batch is gathered where it lies. Training uploads both of its splits once.

use crate::config::Task;
use crate::data::Split;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

/// The images of a split, batch by batch, for either task.
pub trait Batches<B: Backend> {
    /// The split's shape and size.
    fn split(&self) -> &Split;
    /// Images [n, C, H, W] and class maps [n, H, W] of the images `indices`.
    fn classes(&self, indices: &[usize], device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 3, Int>);
    /// Images [n, C, H, W] and depths [n, 1, H, W] of the frames `indices`,
    /// frame k mirrored left–right where `flips[k]` (missing entries: not).
    fn depths(
        &self,
        indices: &[usize],
        flips: &[bool],
        device: &B::Device,
    ) -> (Tensor<B, 4>, Tensor<B, 4>);
}

impl<B: Backend> Batches<B> for Split {
    fn split(&self) -> &Split {
        self
    }

    fn classes(&self, indices: &[usize], device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 3, Int>) {
        let (x, labels, _) = self.batch(indices, device);
        (x, labels)
    }

    fn depths(
        &self,
        indices: &[usize],
        flips: &[bool],
        device: &B::Device,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let (x, depths, _) = self.depth_batch(indices, flips, device);
        (x, depths)
    }
}

/// A split uploaded to the device once: every image, and the class maps or
/// the depths. A batch is `select`ed along the image axis (the same values
/// as an upload of that batch, so results are unchanged bit for bit).
pub struct Resident<'a, B: Backend> {
    host: &'a Split,
    images: Tensor<B, 4>,
    labels: Option<Tensor<B, 3, Int>>,
    depths: Option<Tensor<B, 4>>,
}

impl<'a, B: Backend> Resident<'a, B> {
    pub fn upload(split: &'a Split, task: Task, device: &B::Device) -> Self {
        let all: Vec<usize> = (0..split.len()).collect();
        match task {
            Task::Segmentation => {
                let (images, labels, _) = split.batch(&all, device);
                Self {
                    host: split,
                    images,
                    labels: Some(labels),
                    depths: None,
                }
            }
            Task::Depth => {
                let (images, depths, _) = split.depth_batch(&all, &[], device);
                Self {
                    host: split,
                    images,
                    labels: None,
                    depths: Some(depths),
                }
            }
        }
    }
}

/// The indices as a device tensor, for `select`.
fn index_tensor<B: Backend>(indices: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let values: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(values, [indices.len()]), device)
}

/// `t` [n, c, H, W] with item k mirrored along W where `flips[k]`.
fn mirrored<B: Backend>(t: Tensor<B, 4>, flips: &[bool]) -> Tensor<B, 4> {
    let [n, c, h, w] = t.dims();
    if !flips.iter().take(n).any(|&f| f) {
        return t;
    }
    let wanted: Vec<bool> = (0..n)
        .map(|k| flips.get(k).copied().unwrap_or(false))
        .collect();
    let mask = Tensor::<B, 4, Bool>::from_data(TensorData::new(wanted, [n, 1, 1, 1]), &t.device())
        .expand([n, c, h, w]);
    t.clone().mask_where(mask, t.flip([3]))
}

impl<B: Backend> Batches<B> for Resident<'_, B> {
    fn split(&self) -> &Split {
        self.host
    }

    fn classes(&self, indices: &[usize], device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 3, Int>) {
        let labels = self.labels.as_ref().expect("a segmentation split");
        let index = index_tensor::<B>(indices, device);
        (
            self.images.clone().select(0, index.clone()),
            labels.clone().select(0, index),
        )
    }

    fn depths(
        &self,
        indices: &[usize],
        flips: &[bool],
        device: &B::Device,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let depths = self.depths.as_ref().expect("a depth split");
        let index = index_tensor::<B>(indices, device);
        (
            mirrored(self.images.clone().select(0, index.clone()), flips),
            mirrored(depths.clone().select(0, index), flips),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::segmentation::SegmentationSplit;
    use crate::data::Prepared;
    use burn::backend::Flex;

    fn values<const D: usize>(t: Tensor<Flex, D>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    /// A resident batch holds the same values as the host's upload of it.
    #[test]
    fn resident_class_batches_equal_uploaded_ones() {
        let (len, side) = (5, 4);
        let raw = SegmentationSplit {
            images: (0..len * side * side)
                .map(|v| (v * 7 % 256) as u8)
                .collect(),
            labels: (0..len * side * side).map(|v| (v % 4) as u8).collect(),
            len,
            height: side,
            width: side,
            names: (0..len).map(|i| format!("{i}.png")).collect(),
        };
        let split = Split::new(&raw, 0.4, 0.2);
        let device = Default::default();
        let resident = Resident::<Flex>::upload(&split, Task::Segmentation, &device);
        let indices = [3, 0, 4];
        let (x, labels) = Batches::<Flex>::classes(&resident, &indices, &device);
        let (hx, hlabels) = Batches::<Flex>::classes(&split, &indices, &device);
        assert_eq!(values(x), values(hx));
        assert_eq!(labels.into_data(), hlabels.into_data());
    }

    /// ... and so does a depth batch with some frames mirrored.
    #[test]
    fn resident_depth_batches_equal_uploaded_ones() {
        let cfg = crate::config::Config::parse(
            "[experiment]\nname = \"t\"\n[model]\narch = \"imex\"\ntask = \"depth\"\nin_channels = 3\n\
             [data]\ndataset = \"synthetic_rgbd\"\ntrain_size = 6\nval_size = 2\nheight = 12\nwidth = 16\n",
            "t.toml",
            &[],
        )
        .unwrap();
        let data = Prepared::load(&cfg).unwrap();
        let device = Default::default();
        let resident = Resident::<Flex>::upload(&data.train, Task::Depth, &device);
        let (indices, flips) = ([4, 0, 5], [true, false, true]);
        let (x, d) = Batches::<Flex>::depths(&resident, &indices, &flips, &device);
        let (hx, hd) = Batches::<Flex>::depths(&data.train, &indices, &flips, &device);
        assert_eq!(values(x), values(hx));
        assert_eq!(values(d), values(hd));
    }
}
