//! Which frames train and which validate: NYU's split file (MATLAB or
//! text), or a seeded permutation.

use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::data_error;

/// 0-based (train, val) frame indices from a split file: a MATLAB file with
/// `trainNdxs` and `testNdxs` (1-based, NYU's `splits.mat`, v7.3/HDF5 or
/// v5), or a text file of the 1-based test indices (whitespace- or
/// comma-separated, `#` comments), every other frame being for training.
pub fn read_split_file(path: &Path, frames: usize) -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    let fail = |what: String| data_error(format!("{}: {what}", path.display()));
    let bytes =
        std::fs::read(path).map_err(|e| fail(format!("cannot read the split file: {e}")))?;
    let to_index = |v: f64, what: &str| -> anyhow::Result<usize> {
        if v.fract() != 0.0 || v < 1.0 || v > frames as f64 {
            return Err(fail(format!(
                "{what} index {v} is not a frame number in 1..={frames}"
            )));
        }
        Ok(v as usize - 1)
    };
    let (train, val) = if bytes.starts_with(b"MATLAB") {
        let (train, test) = if bytes.len() > 512 && bytes[512..].starts_with(b"\x89HDF") {
            let file = hdf5_reader::Hdf5File::open(path)
                .map_err(|e| fail(format!("cannot read it as HDF5: {e}")))?;
            let read = |name: &str| -> anyhow::Result<Vec<f64>> {
                let d = file
                    .dataset(name)
                    .map_err(|e| fail(format!("no dataset `{name}` ({e})")))?;
                Ok(d.read_array::<f64>()
                    .map_err(|e| fail(format!("cannot read `{name}`: {e}")))?
                    .iter()
                    .copied()
                    .collect())
            };
            (read("trainNdxs")?, read("testNdxs")?)
        } else {
            let vars = crate::data::mat5::read_numeric(&bytes).map_err(&fail)?;
            let get = |name: &str| {
                vars.iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| fail(format!("no variable `{name}`")))
            };
            (get("trainNdxs")?, get("testNdxs")?)
        };
        let train = train
            .iter()
            .map(|&v| to_index(v, "trainNdxs"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let val = test
            .iter()
            .map(|&v| to_index(v, "testNdxs"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        (train, val)
    } else {
        let text =
            String::from_utf8(bytes).map_err(|_| fail("neither a MATLAB file nor text".into()))?;
        let mut val = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            for token in line.split(|c: char| c.is_whitespace() || c == ',') {
                if token.is_empty() {
                    continue;
                }
                let v: f64 = token.parse().map_err(|_| {
                    fail(format!(
                        "line {}: {token:?} is not a frame number (expected 1-based test indices)",
                        n + 1
                    ))
                })?;
                val.push(to_index(v, &format!("line {}: test", n + 1))?);
            }
        }
        let mut is_val = vec![false; frames];
        for &v in &val {
            is_val[v] = true;
        }
        let train = (0..frames).filter(|&i| !is_val[i]).collect();
        (train, val)
    };
    let mut seen = vec![false; frames];
    for &i in train.iter().chain(&val) {
        if std::mem::replace(&mut seen[i], true) {
            return Err(fail(format!(
                "frame {} is listed twice (train and test must not overlap)",
                i + 1
            )));
        }
    }
    if train.is_empty() || val.is_empty() {
        return Err(fail("leaves the training or the test split empty".into()));
    }
    Ok((train, val))
}

/// A seeded split: the first `val` frames of a permutation for validation,
/// the next `train` for training (fewer if the set is smaller).
pub fn seeded_split(
    frames: usize,
    train: usize,
    val: usize,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..frames).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let val_part = order[..val.min(frames)].to_vec();
    let rest = &order[val.min(frames)..];
    let train_part = rest[..train.min(rest.len())].to_vec();
    (train_part, val_part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_split_is_disjoint_and_seeded() {
        let (t, v) = seeded_split(20, 12, 5, 1);
        assert_eq!((t.len(), v.len()), (12, 5));
        assert!(t.iter().all(|i| !v.contains(i)));
        assert_eq!(seeded_split(20, 12, 5, 1), (t.clone(), v.clone()));
        assert_ne!(seeded_split(20, 12, 5, 2).1, v);
        let (t, v) = seeded_split(6, 100, 2, 0);
        assert_eq!((t.len(), v.len()), (4, 2));
    }
}
