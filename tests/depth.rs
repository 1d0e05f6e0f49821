//! The depth task's data: the NYU Depth V2 .mat reader against fixtures made
//! with h5py (`tests/fixtures/make_nyu_fixture.py`), split files, the PNG +
//! CSV layout and its errors, and the prepared (normalised) splits.

use std::path::{Path, PathBuf};

use imex_run::config::Config;
use imex_run::data::rgbd::{read_split_file, Frame, NyuMat, PngPairs, Role};
use imex_run::data::{synthetic_rgbd, Prepared};
use imex_run::error::exit_code;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nyu")
        .join(name)
}

/// The fixture's pixel values (see make_nyu_fixture.py).
fn expected_rgb(f: usize, r: usize, c: usize) -> [u8; 3] {
    [(16 * r + c) as u8, (40 * f + r) as u8, (10 * c) as u8]
}
fn expected_depth(f: usize, r: usize, c: usize) -> f32 {
    (1.0 + f as f64 + r as f64 / 10.0 + c as f64 / 1000.0) as f32
}

/// The message of a data error (exit code 3).
fn data_error<T>(result: anyhow::Result<T>) -> String {
    let err = result.err().expect("expected a data error");
    assert_eq!(exit_code(&err), 3, "{err:#}");
    format!("{err:#}")
}

#[test]
fn nyu_mat_frames_load_transposed_back() {
    for name in ["nyu_tiny_contiguous.mat", "nyu_tiny_chunked.mat"] {
        let mat = NyuMat::open(&fixture(name)).unwrap();
        assert_eq!((mat.len, mat.height, mat.width), (4, 12, 16), "{name}");
        for f in 0..4 {
            let frame = mat.frame(f).unwrap();
            assert_eq!((frame.height, frame.width), (12, 16));
            for r in 0..12 {
                for c in 0..16 {
                    let i = r * 16 + c;
                    assert_eq!(
                        frame.rgb[3 * i..3 * i + 3],
                        expected_rgb(f, r, c),
                        "{name} frame {f} row {r} col {c}"
                    );
                    assert_eq!(frame.depth[i], expected_depth(f, r, c));
                }
            }
        }
    }
}

#[test]
fn nyu_mat_errors_name_the_file() {
    let msg = data_error(NyuMat::open(&fixture("absent.mat")));
    assert!(
        msg.contains("absent.mat") && msg.contains("no such file"),
        "{msg}"
    );
    let msg = data_error(NyuMat::open(&fixture("splits.txt")));
    assert!(msg.contains("splits.txt") && msg.contains("HDF5"), "{msg}");
    // A v7.3 file without `images`.
    let msg = data_error(NyuMat::open(&fixture("splits_v73.mat")));
    assert!(
        msg.contains("splits_v73.mat") && msg.contains("`images`"),
        "{msg}"
    );
    let bad = NyuMat::open(&fixture("nyu_tiny_bad_depth.mat")).unwrap();
    bad.frame(0).unwrap();
    let msg = data_error(bad.frame(1));
    for part in [
        "nyu_tiny_bad_depth.mat",
        "frame 2",
        "NaN",
        "row 5",
        "column 7",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    let msg = data_error(bad.frame(3));
    for part in ["frame 4", "depth 0", "row 1", "column 2"] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
}

#[test]
fn split_files_in_every_form() {
    for name in [
        "splits_v73.mat",
        "splits_v5.mat",
        "splits_v5_compressed.mat",
        "splits.txt",
    ] {
        let (train, val) = read_split_file(&fixture(name), 4).unwrap();
        assert_eq!((train, val), (vec![0, 2], vec![1, 3]), "{name}");
    }
    let dir = tempfile::tempdir().unwrap();
    let write = |text: &str| {
        let p = dir.path().join("split.txt");
        std::fs::write(&p, text).unwrap();
        p
    };
    let msg = data_error(read_split_file(&write("2\n5\n"), 4));
    assert!(msg.contains("split.txt") && msg.contains("1..=4"), "{msg}");
    let msg = data_error(read_split_file(&write("2\nx\n"), 4));
    assert!(msg.contains("line 2"), "{msg}");
    let msg = data_error(read_split_file(&write("2 2\n"), 4));
    assert!(msg.contains("twice"), "{msg}");
    let msg = data_error(read_split_file(&write("1 2 3 4"), 4));
    assert!(msg.contains("empty"), "{msg}");
    // The NYU split has 1449 frames; a 4-frame file's indices are fine there too.
    assert!(read_split_file(&fixture("splits_v5.mat"), 1449).is_ok());
}

fn nyu_config(extra: &str) -> Config {
    let text = format!(
        r#"[experiment]
name = "t"
[model]
arch = "imex"
task = "depth"
in_channels = 3
[data]
dataset = "nyu_mat"
path = "{}"
{extra}
"#,
        fixture("nyu_tiny_chunked.mat").display()
    );
    Config::parse(&text, "t.toml", &[]).unwrap()
}

#[test]
fn nyu_prepared_with_the_official_split_and_resizing() {
    let cfg = nyu_config(&format!(
        "split_file = \"{}\"\nheight = 6\nwidth = 8\n",
        fixture("splits_v5_compressed.mat").display()
    ));
    let data = Prepared::load(&cfg).unwrap();
    assert_eq!((data.train.len(), data.val.len()), (2, 2));
    assert_eq!(data.train.names, ["frame0001", "frame0003"]);
    assert_eq!(data.val.names, ["frame0002", "frame0004"]);
    assert_eq!(
        (data.train.height, data.train.width, data.train.channels),
        (6, 8, 3)
    );
    // Depth of the first validation pixel: the mean of a 2×2 block of frame 2.
    let device = Default::default();
    let (_, _, depths) = data
        .val
        .depth_batch::<burn::backend::Flex>(&[0], &[false], &device);
    let block: f64 = [(0, 0), (0, 1), (1, 0), (1, 1)]
        .iter()
        .map(|&(r, c)| expected_depth(1, r, c) as f64)
        .sum::<f64>()
        / 4.0;
    assert_eq!(depths[0], block as f32);
    // Flipped: the first pixel is the last column's.
    let (_, _, flipped) = data
        .val
        .depth_batch::<burn::backend::Flex>(&[0], &[true], &device);
    assert_eq!(flipped[0], depths[7]);
    // Statistics of the training split's frames (1 and 3 of the file) as
    // loaded, 2×2 area averages at 6×8, and of nothing else: the validation
    // frames' depths are 1 m further away, so a leak would move the mean of
    // ln(depth) by about 0.3. A depth may differ from the f64 block mean by
    // its f32 rounding (2⁻²⁴ relative), so its logarithm by 2⁻²⁴ absolute.
    let stats = data.depth.unwrap();
    let logs: Vec<f64> = [0usize, 2]
        .iter()
        .flat_map(|&f| (0..6).flat_map(move |r| (0..8).map(move |c| (f, r, c))))
        .map(|(f, r, c)| {
            let block = [(0, 0), (0, 1), (1, 0), (1, 1)]
                .iter()
                .map(|&(dr, dc)| expected_depth(f, 2 * r + dr, 2 * c + dc) as f64)
                .sum::<f64>()
                / 4.0;
            (block as f32 as f64).ln()
        })
        .collect();
    let mean = logs.iter().sum::<f64>() / logs.len() as f64;
    let std = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / logs.len() as f64).sqrt();
    let tolerance = 2f64.powi(-23);
    assert!(
        (stats.log_depth_mean - mean).abs() < tolerance,
        "{} vs {mean}",
        stats.log_depth_mean
    );
    assert!(
        (stats.log_depth_std - std).abs() < tolerance,
        "{} vs {std}",
        stats.log_depth_std
    );
    assert!(stats.rgb_std.iter().all(|s| *s > 0.0));
}

#[test]
fn nyu_seeded_split_and_crop() {
    let cfg = nyu_config(
        "train_size = 3\nval_size = 1\nsplit_seed = 5\ncrop_height = 8\ncrop_width = 8\n",
    );
    let data = Prepared::load(&cfg).unwrap();
    assert_eq!((data.train.len(), data.val.len()), (3, 1));
    assert_eq!((data.train.height, data.train.width), (8, 8));
    let mut all: Vec<String> = data
        .train
        .names
        .iter()
        .chain(&data.val.names)
        .cloned()
        .collect();
    all.sort();
    assert_eq!(all, ["frame0001", "frame0002", "frame0003", "frame0004"]);
    let msg = data_error(Prepared::load(&nyu_config(
        "crop_height = 20\ncrop_width = 8\n",
    )));
    assert!(msg.contains("crop_height"), "{msg}");
}

fn synthetic_pairs(dir: &Path, n: usize) -> PathBuf {
    let frames: Vec<(Frame, Role)> = synthetic_rgbd::generate(4, 0, n, 12, 16)
        .into_iter()
        .enumerate()
        .map(|(i, f)| (f, if i % 3 == 2 { Role::Val } else { Role::Train }))
        .collect();
    PngPairs::write(dir, &frames).unwrap()
}

fn png_config(csv: &Path) -> Config {
    let text = format!(
        "[experiment]\nname = \"t\"\n[model]\narch = \"resnet\"\ntask = \"depth\"\nin_channels = 3\n\
         [data]\ndataset = \"rgbd_png\"\npath = \"{}\"\n",
        csv.display()
    );
    Config::parse(&text, "t.toml", &[]).unwrap()
}

#[test]
fn png_pairs_round_trip_in_millimetres() {
    let dir = tempfile::tempdir().unwrap();
    let csv = synthetic_pairs(dir.path(), 6);
    let pairs = PngPairs::open(&csv).unwrap();
    let truth = synthetic_rgbd::generate(4, 0, 6, 12, 16);
    for (i, t) in truth.iter().enumerate() {
        let f = pairs.frame(i).unwrap();
        assert_eq!(f.rgb, t.rgb);
        for (a, b) in f.depth.iter().zip(&t.depth) {
            assert!((a - b).abs() <= 0.0005 + 1e-6, "{a} vs {b}");
        }
    }
    // The CSV's split column decides the split.
    let data = Prepared::load(&png_config(&csv)).unwrap();
    assert_eq!((data.train.len(), data.val.len()), (4, 2));
}

#[test]
fn png_pairs_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = synthetic_pairs(dir.path(), 3);
    let load = |csv: &Path| Prepared::load(&png_config(csv));
    // Missing depth map.
    std::fs::remove_file(dir.path().join("depth/000001.png")).unwrap();
    let msg = data_error(load(&csv));
    assert!(
        msg.contains("depth/000001.png") && msg.contains("line 3"),
        "{msg}"
    );
    // 8-bit depth.
    image::GrayImage::new(16, 12)
        .save(dir.path().join("depth/000001.png"))
        .unwrap();
    let msg = data_error(load(&csv));
    assert!(
        msg.contains("depth/000001.png") && msg.contains("16-bit"),
        "{msg}"
    );
    // Size mismatch.
    image::ImageBuffer::<image::Luma<u16>, _>::from_pixel(8, 12, image::Luma([1000u16]))
        .save(dir.path().join("depth/000001.png"))
        .unwrap();
    let msg = data_error(load(&csv));
    assert!(
        msg.contains("depth/000001.png") && msg.contains("rgb/000001.png"),
        "{msg}"
    );
    // A zero (missing) depth.
    let mut d =
        image::ImageBuffer::<image::Luma<u16>, _>::from_pixel(16, 12, image::Luma([1000u16]));
    d.put_pixel(3, 2, image::Luma([0]));
    d.save(dir.path().join("depth/000001.png")).unwrap();
    let msg = data_error(load(&csv));
    for part in ["depth/000001.png", "depth 0", "row 2", "column 3"] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    // A corrupt RGB image.
    d.put_pixel(3, 2, image::Luma([1000]));
    d.save(dir.path().join("depth/000001.png")).unwrap();
    std::fs::write(dir.path().join("rgb/000000.png"), b"not a png").unwrap();
    let msg = data_error(load(&csv));
    assert!(
        msg.contains("rgb/000000.png") && msg.contains("decode"),
        "{msg}"
    );
    // Bad CSVs.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "image,depth\na.png,b.png\n").unwrap();
    let msg = data_error(load(&bad));
    assert!(msg.contains("bad.csv") && msg.contains("`rgb`"), "{msg}");
    std::fs::write(&bad, "rgb,depth,split\na.png,b.png,holdout\n").unwrap();
    let msg = data_error(load(&bad));
    assert!(msg.contains("bad.csv") && msg.contains("line 2"), "{msg}");
    let msg = data_error(load(&dir.path().join("absent.csv")));
    assert!(msg.contains("absent.csv"), "{msg}");
}

#[test]
fn synthetic_prepared_has_the_configured_size() {
    let text = "[experiment]\nname = \"t\"\n[model]\narch = \"imex\"\ntask = \"depth\"\nin_channels = 3\n\
                [data]\ndataset = \"synthetic_rgbd\"\ntrain_size = 5\nval_size = 2\nheight = 24\nwidth = 32\n";
    let cfg = Config::parse(text, "t.toml", &[]).unwrap();
    let data = Prepared::load(&cfg).unwrap();
    assert_eq!((data.train.len(), data.val.len()), (5, 2));
    assert_eq!((data.train.height, data.train.width), (24, 32));
    let stats = data.depth.unwrap();
    assert!(stats.log_depth_std > 0.1, "{stats:?}");
}

/// The real file's read speed, for the README: run with
/// `IMEX_NYU_MAT=data/nyu/nyu_depth_v2_labeled.mat cargo test --release --test depth -- --ignored --nocapture`.
#[test]
#[ignore = "needs a large .mat file named by IMEX_NYU_MAT"]
fn nyu_mat_read_speed_of_a_real_file() {
    let path = std::env::var("IMEX_NYU_MAT").expect("set IMEX_NYU_MAT to a .mat file");
    let mat = NyuMat::open(Path::new(&path)).unwrap();
    let n = mat.len.min(32);
    let started = std::time::Instant::now();
    for i in 0..n {
        std::hint::black_box(mat.frame(i).unwrap());
    }
    let per_frame = started.elapsed().as_secs_f64() / n as f64;
    println!(
        "{path}: {n} frames of {}×{} in {:.3} s, {:.1} ms per frame",
        mat.height,
        mat.width,
        per_frame * n as f64,
        per_frame * 1e3
    );
}

#[test]
fn depth_losses_match_hand_computation() {
    use burn::tensor::{Tensor, TensorData};
    use imex_run::config::Loss;
    use imex_run::train::{depth_from_head, depth_loss};
    type B = burn::backend::Flex;
    let device = Default::default();
    let t = |v: Vec<f32>| Tensor::<B, 4>::from_data(TensorData::new(v, [2, 1, 1, 2]), &device);
    // Image 1: pred (1, 2) vs (2, 2); image 2: pred (3, 3) vs (3, 3).
    let (pred, truth) = (t(vec![1.0, 2.0, 3.0, 3.0]), t(vec![2.0, 2.0, 3.0, 3.0]));
    let value = |loss, lambda| {
        let (num, den) = depth_loss(pred.clone(), truth.clone(), loss, lambda);
        (num.into_scalar() as f64, den)
    };
    assert_eq!(value(Loss::L1, 0.5), (1.0, 4.0));
    assert_eq!(value(Loss::L2, 0.5), (1.0, 4.0));
    // Image 1: g = (ln ½, 0): mean g² = (ln 2)²/2, mean g = −(ln 2)/2 → (ln 2)²(½ − λ/4); image 2: 0.
    let ln2 = 2f64.ln();
    for lambda in [0.0, 0.5, 1.0] {
        let (num, den) = value(Loss::Silog, lambda);
        assert!(
            (num - ln2 * ln2 * (0.5 - lambda / 4.0)).abs() < 1e-6,
            "{lambda}: {num}"
        );
        assert_eq!(den, 2.0);
    }
    // The head: z = 0 is exp(μ); z = 1 is exp(μ + σ).
    let stats = imex_run::data::DepthStats {
        rgb_mean: [0.5; 3],
        rgb_std: [0.2; 3],
        log_depth_mean: 1.0,
        log_depth_std: 0.5,
    };
    let d = depth_from_head(t(vec![0.0, 1.0, -2.0, 0.0]), &stats)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let expected = [1f64.exp(), 1.5f64.exp(), 0f64.exp(), 1f64.exp()];
    for (a, b) in d.iter().zip(expected) {
        assert!((*a as f64 - b).abs() < 1e-5 * b, "{a} vs {b}");
    }
}
