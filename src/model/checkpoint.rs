//! Checkpoints as safetensors, with the tensor names of the peer reference
//! (`shared/peer/README.md`), so PyTorch users can read them directly:
//!
//! | name | shape | |
//! | --- | --- | --- |
//! | `K{j}` | (C_out, C_in, 3, 3) | every layer j |
//! | `L{j}` | (C, 1, 3, 3) | depthwise kernel C of L = CᵀC (learned operator) |
//! | `W` | (n_classes or 1, C_last) | 1×1 head: classifier, or depth |
//! | `bn{j}_weight`, `bn{j}_bias` | (C_out,) | γ, β |
//! | `bn{j}_running_mean`, `bn{j}_running_var` | (C_out,) | standard BN only uses them |
//!
//! All float32. The metadata holds the resolved config (`config`, TOML) and
//! whatever the caller adds (epoch, metric).

use super::network::{layer_table, Network};
use crate::config::ModelSection;
use crate::error::Failure;
use crate::files::write_atomically;
use anyhow::{Context, Result};
use burn::module::Param;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// A tensor on the host: shape and row-major float32 values.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl HostTensor {
    pub fn of<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Self {
        let shape = tensor.dims().to_vec();
        let values = tensor
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("float32 data");
        Self { shape, values }
    }

    pub fn to_tensor<B: Backend, const D: usize>(&self, device: &B::Device) -> Tensor<B, D> {
        Tensor::from_data(
            TensorData::new(self.values.clone(), self.shape.clone()),
            device,
        )
    }
}

pub type NamedTensors = BTreeMap<String, HostTensor>;

/// Reads every tensor of a safetensors file as float32 (F32, F64 and integer
/// tensors are converted) and its metadata.
pub fn read_safetensors(path: &Path) -> Result<(NamedTensors, HashMap<String, String>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_safetensors(&bytes, &path.display().to_string())
}

/// [`read_safetensors`] on bytes already in memory; `origin` names them in errors.
pub fn parse_safetensors(
    bytes: &[u8],
    origin: &str,
) -> Result<(NamedTensors, HashMap<String, String>)> {
    let parsed = SafeTensors::deserialize(bytes)
        .map_err(|e| Failure::Data(format!("{origin} is not a safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Failure::Data(format!("{origin}: bad safetensors header: {e}")))?;
    let mut tensors = NamedTensors::new();
    for (name, view) in parsed.tensors() {
        let values = decode(&view).ok_or_else(|| {
            Failure::Data(format!(
                "{origin}: tensor {name} has unsupported dtype {:?}",
                view.dtype()
            ))
        })?;
        tensors.insert(
            name,
            HostTensor {
                shape: view.shape().to_vec(),
                values,
            },
        );
    }
    Ok((tensors, header.metadata().clone().unwrap_or_default()))
}

fn decode(view: &TensorView) -> Option<Vec<f32>> {
    let bytes = view.data();
    macro_rules! cast {
        ($t:ty, $n:expr) => {
            bytes
                .chunks_exact($n)
                .map(|b| <$t>::from_le_bytes(b.try_into().unwrap()) as f32)
                .collect()
        };
    }
    Some(match view.dtype() {
        Dtype::F32 => cast!(f32, 4),
        Dtype::F64 => cast!(f64, 8),
        Dtype::I64 => cast!(i64, 8),
        Dtype::I32 => cast!(i32, 4),
        Dtype::U8 => bytes.iter().map(|&b| b as f32).collect(),
        _ => return None,
    })
}

/// Writes tensors and metadata as float32 safetensors, atomically (temporary
/// file in the same folder, then rename): a crash never leaves half a file.
pub fn write_safetensors(
    path: &Path,
    tensors: &NamedTensors,
    metadata: HashMap<String, String>,
) -> Result<()> {
    write_atomically(path, &safetensors_bytes(tensors, metadata)?)
}

/// The bytes of a float32 safetensors file of `tensors` and `metadata`.
pub fn safetensors_bytes(
    tensors: &NamedTensors,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let bytes: BTreeMap<&str, Vec<u8>> = tensors
        .iter()
        .map(|(name, t)| {
            (
                name.as_str(),
                t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = tensors.iter().map(|(name, t)| {
        let view = TensorView::new(Dtype::F32, t.shape.clone(), &bytes[name.as_str()])
            .expect("consistent shape");
        (name.as_str(), view)
    });
    sorted_header(safetensors::serialize(views, &Some(metadata))?)
}

/// A safetensors file with the keys of its JSON header sorted: the metadata
/// comes as a `HashMap`, whose order changes from process to process, and the
/// same tensors and metadata should give the same bytes. The sorted header is
/// no longer than the original; it is padded with spaces to the same length.
fn sorted_header(mut bytes: Vec<u8>) -> Result<Vec<u8>> {
    let length = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + length])?;
    let mut sorted = serde_json::to_vec(&header)?;
    anyhow::ensure!(sorted.len() <= length, "a sorted header grew");
    sorted.resize(length, b' ');
    bytes[8..8 + length].copy_from_slice(&sorted);
    Ok(bytes)
}

impl<B: Backend> Network<B> {
    /// Every weight and BN statistic under its peer-reference name.
    pub fn to_named_tensors(&self) -> NamedTensors {
        let mut out = NamedTensors::new();
        for (j, layer) in self.layers.iter().enumerate() {
            out.insert(format!("K{j}"), HostTensor::of(layer.kernel.val()));
            if let Some(c) = &layer.operator_kernel {
                out.insert(format!("L{j}"), HostTensor::of(c.val()));
            }
            out.insert(
                format!("bn{j}_weight"),
                HostTensor::of(layer.bn.gamma.val()),
            );
            out.insert(format!("bn{j}_bias"), HostTensor::of(layer.bn.beta.val()));
            // `value()` may lag one update behind (Burn keeps the latest
            // per thread until a sync); `value_sync()` folds it in.
            out.insert(
                format!("bn{j}_running_mean"),
                HostTensor::of(layer.bn.running_mean.value_sync()),
            );
            out.insert(
                format!("bn{j}_running_var"),
                HostTensor::of(layer.bn.running_var.value_sync()),
            );
        }
        out.insert("W".into(), HostTensor::of(self.classifier.val()));
        out
    }

    /// A network of geometry `spec` holding the given tensors. K, L (learned
    /// IMEX operator) and W are required; BN tensors default to γ=1, β=0 and
    /// fresh running statistics. Shapes are checked against the geometry.
    pub fn from_named_tensors(
        spec: &ModelSection,
        tensors: &NamedTensors,
        device: &B::Device,
    ) -> Result<Self> {
        let mut net = Network::new(spec, 0, device);
        let take = |name: &str, shape: &[usize]| -> Result<Option<HostTensor>> {
            match tensors.get(name) {
                None => Ok(None),
                Some(t) if t.values.len() == shape.iter().product::<usize>() => {
                    Ok(Some(HostTensor {
                        shape: shape.to_vec(),
                        values: t.values.clone(),
                    }))
                }
                Some(t) => Err(Failure::Data(format!(
                    "tensor {name} has shape {:?}, this network expects {shape:?}",
                    t.shape
                ))
                .into()),
            }
        };
        let require = |name: &str, shape: &[usize]| -> Result<HostTensor> {
            take(name, shape)?.ok_or_else(|| {
                Failure::Data(format!("checkpoint lacks tensor {name} {shape:?}")).into()
            })
        };
        for (j, ((c_in, c_out), layer)) in layer_table(spec)
            .into_iter()
            .zip(net.layers.iter_mut())
            .enumerate()
        {
            let kernel = require(&format!("K{j}"), &[c_out, c_in, 3, 3])?;
            layer.kernel = replace(layer.kernel.clone(), kernel, device);
            if let Some(c) = layer.operator_kernel.take() {
                layer.operator_kernel = Some(replace(
                    c,
                    require(&format!("L{j}"), &[c_out, 1, 3, 3])?,
                    device,
                ));
            }
            let bn = &mut layer.bn;
            if let Some(t) = take(&format!("bn{j}_weight"), &[c_out])? {
                bn.gamma = replace(bn.gamma.clone(), t, device);
            }
            if let Some(t) = take(&format!("bn{j}_bias"), &[c_out])? {
                bn.beta = replace(bn.beta.clone(), t, device);
            }
            if let Some(t) = take(&format!("bn{j}_running_mean"), &[c_out])? {
                bn.running_mean = burn::module::RunningState::new(t.to_tensor(device));
            }
            if let Some(t) = take(&format!("bn{j}_running_var"), &[c_out])? {
                bn.running_var = burn::module::RunningState::new(t.to_tensor(device));
            }
        }
        let c_last = layer_table(spec).last().map_or(spec.in_channels, |l| l.1);
        let w = require("W", &[spec.head_width(), c_last])?;
        net.classifier = replace(net.classifier, w, device);
        Ok(net)
    }
}

/// The same parameter (id and gradient requirement kept) holding new values.
fn replace<B: Backend, const D: usize>(
    param: Param<Tensor<B, D>>,
    values: HostTensor,
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    param.map(|old| {
        values
            .to_tensor(device)
            .set_require_grad(old.is_require_grad())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `HashMap` iterates in its own order: the file must not.
    #[test]
    fn the_same_tensors_and_metadata_give_the_same_bytes() {
        let tensors: NamedTensors = ["b", "a", "K0"]
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let values = vec![k as f32, -1.5, 2.0];
                (
                    name.to_string(),
                    HostTensor {
                        shape: vec![3],
                        values,
                    },
                )
            })
            .collect();
        let metadata = || -> HashMap<String, String> {
            (0..12)
                .map(|k| (format!("key{k}"), format!("value {k}")))
                .collect()
        };
        let first = safetensors_bytes(&tensors, metadata()).unwrap();
        for _ in 0..5 {
            assert_eq!(safetensors_bytes(&tensors, metadata()).unwrap(), first);
        }
        let (read, read_metadata) = parse_safetensors(&first, "test").unwrap();
        assert_eq!(read, tensors);
        assert_eq!(read_metadata, metadata());
    }
}
