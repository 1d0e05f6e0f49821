//! Deterministic generator of Q-tips, the synthetic segmentation set of the
//! IMEXnet paper (Haber, Lensink, Treister, Ruthotto 2019).
//!
//! Each image holds one grey bar (a "Q-tip") on a grey background, with a
//! `w`×`w` marker at each end; the colours of the two markers give the class:
//! both white (1, "WW"), one white one black (2, "BW"), both black (3, "BB").
//! Telling the classes apart needs information from both ends of the bar,
//! which is what the paper uses the set to show. The constants below are the
//! ones measured on the authors' data.
//!
//! The set is defined for 64×64 images: lengths and widths are not scaled
//! with [`QtipsSpec::size`], and nothing is clamped, so on much smaller
//! images a bar can leave the frame.
//!
//! Same seed ⇒ same bytes on every machine: the random stream is ChaCha8, all
//! integer draws go through fixed-width types, and the geometry uses only
//! `+ - * / sqrt floor` on `f64` (IEEE-exact), never `sin`/`cos`, whose
//! results differ between maths libraries.

use std::fs;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Failure;

/// Grey value of the background (class 0).
pub const BACKGROUND: u8 = 64;
/// Grey value of the bar between the end markers.
pub const BAR: u8 = 128;
/// Grey value of a white end marker.
pub const WHITE: u8 = 255;
/// Grey value of a black end marker (1, not 0, as in the authors' data).
pub const BLACK: u8 = 1;

/// Bar length in pixels, uniform over this range.
const LENGTHS: std::ops::RangeInclusive<u32> = 32..=59;
/// Bar width (and marker side) in pixels, uniform over this range.
const WIDTHS: std::ops::RangeInclusive<u32> = 4..=7;

/// Which part of the data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}

impl Split {
    /// Folder name in the authors' layout.
    pub fn name(&self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }

    /// ChaCha stream of this split: each split has its own, so the number
    /// of training images does not change the validation images.
    fn stream(self) -> u64 {
        match self {
            Split::Train => 0,
            Split::Val => 1,
        }
    }
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QtipsSpec {
    pub seed: u64,
    /// Number of training images.
    pub train: usize,
    /// Number of validation images.
    pub val: usize,
    /// Side of the square images in pixels (the set is defined for 64).
    pub size: usize,
}

impl Default for QtipsSpec {
    /// The paper's set: 1024 training and 64 validation images of 64×64.
    fn default() -> Self {
        QtipsSpec {
            seed: 0,
            train: 1024,
            val: 64,
            size: 64,
        }
    }
}

impl QtipsSpec {
    /// Number of images in `split`.
    pub fn count(&self, split: Split) -> usize {
        match split {
            Split::Train => self.train,
            Split::Val => self.val,
        }
    }
}

/// One image and its label map, row-major, size×size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub image: Vec<u8>,
    pub label: Vec<u8>,
}

/// The parameters of one drawn object; kept apart from rendering so tests
/// can render objects with chosen parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Object {
    /// 1 (WW), 2 (BW) or 3 (BB).
    class: u8,
    len: u32,
    width: u32,
    /// Centre (x = column, y = row) in pixel coordinates.
    centre: (f64, f64),
    /// Unit vector along the bar, from end A to end B.
    dir: (f64, f64),
    /// Grey values of the markers at end A and end B.
    ends: (u8, u8),
}

/// Uniform in [-1, 1): exact arithmetic on rand's 53-bit uniform.
fn symmetric(rng: &mut ChaCha8Rng) -> f64 {
    2.0 * rng.gen::<f64>() - 1.0
}

/// Draws one object, always in the same order (class, length, width, centre
/// offset x, y, direction, white end for class 2) so the stream is pinned.
fn draw_object(rng: &mut ChaCha8Rng, size: usize) -> Object {
    let class = rng.gen_range(1..=3u8);
    let len = rng.gen_range(LENGTHS);
    let width = rng.gen_range(WIDTHS);
    let mid = (size as f64 - 1.0) / 2.0;
    let centre = (mid + symmetric(rng), mid + symmetric(rng));
    // A point uniform in the unit disc has a direction uniform over the full
    // circle; normalising needs only sqrt, which IEEE rounds exactly.
    let dir = loop {
        let (a, b) = (symmetric(rng), symmetric(rng));
        let r2 = a * a + b * b;
        if r2 > 1e-6 && r2 <= 1.0 {
            let r = r2.sqrt();
            break (a / r, b / r);
        }
    };
    let ends = match class {
        1 => (WHITE, WHITE),
        2 if rng.gen::<bool>() => (WHITE, BLACK),
        2 => (BLACK, WHITE),
        _ => (BLACK, BLACK),
    };
    Object {
        class,
        len,
        width,
        centre,
        dir,
        ends,
    }
}

/// Renders an object by nearest-neighbour sampling: each pixel centre is
/// mapped into the bar's frame (u along, v across) and takes the grey value
/// of the part it falls in, so only the four grey values ever occur.
fn render(obj: &Object, size: usize) -> Sample {
    let mut image = vec![BACKGROUND; size * size];
    let mut label = vec![0u8; size * size];
    let (cx, cy) = obj.centre;
    let (dx, dy) = obj.dir;
    let (len, w) = (obj.len as f64, obj.width as f64);
    for y in 0..size {
        for x in 0..size {
            let (px, py) = (x as f64 - cx, y as f64 - cy);
            let u = px * dx + py * dy;
            let v = -px * dy + py * dx;
            if u < -len / 2.0 || u >= len / 2.0 || v < -w / 2.0 || v >= w / 2.0 {
                continue;
            }
            // `min` guards against u + len/2 rounding up to len.
            let iu = ((u + len / 2.0).floor() as u32).min(obj.len - 1);
            let grey = if iu < obj.width {
                obj.ends.0
            } else if iu >= obj.len - obj.width {
                obj.ends.1
            } else {
                BAR
            };
            image[y * size + x] = grey;
            label[y * size + x] = obj.class;
        }
    }
    Sample { image, label }
}

/// The random stream of one split: same seed, a different ChaCha stream.
fn split_rng(seed: u64, split: Split) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(split.stream());
    rng
}

/// The drawn objects of a split, in order.
fn objects(spec: &QtipsSpec, split: Split) -> Vec<Object> {
    let mut rng = split_rng(spec.seed, split);
    (0..spec.count(split))
        .map(|_| draw_object(&mut rng, spec.size))
        .collect()
}

/// Generates the images of `split`; the same spec gives the same bytes.
pub fn generate(spec: &QtipsSpec, split: Split) -> Vec<Sample> {
    objects(spec, split)
        .iter()
        .map(|obj| render(obj, spec.size))
        .collect()
}

/// Writes the authors' layout ROOT/{train,val}/{images,labels}/000000.png …
/// and ROOT/{train,val}/filenames.txt (one file name per line, e.g.
/// "000000.png"). Everything is written into a temporary sibling folder that
/// is renamed into place at the end, so an interrupted write leaves nothing
/// half-written. Refuses if ROOT exists and is not an empty folder.
pub fn write_dataset(root: &Path, spec: &QtipsSpec) -> anyhow::Result<()> {
    let occupied = match fs::read_dir(root) {
        Ok(mut entries) => entries.next().is_some(),
        Err(_) => root.exists(), // a file, or unreadable
    };
    if occupied {
        return Err(Failure::Data(format!(
            "refusing to write Q-tips into {}: it exists and is not an empty folder \
             (expected a new or empty folder)",
            root.display()
        ))
        .into());
    }
    let parent = match root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).map_err(|e| io_failure(parent, "create folder", e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".qtips-partial-")
        .tempdir_in(parent)
        .map_err(|e| io_failure(parent, "create a temporary folder in", e))?;
    for split in [Split::Train, Split::Val] {
        write_split(
            &tmp.path().join(split.name()),
            &generate(spec, split),
            spec.size,
        )?;
    }
    move_into_place(tmp, root)
}

/// Renames the finished temporary folder to ROOT. Two runs of a sweep that
/// start together may both find ROOT missing and both generate it; the
/// second to finish finds the first's complete dataset in place (a rename is
/// atomic) and discards its own, which holds the same bytes (one spec, one
/// seed).
fn move_into_place(tmp: tempfile::TempDir, root: &Path) -> anyhow::Result<()> {
    if root.exists() {
        // Empty when checked, unless a concurrent writer has filled it since
        // (then this fails, and the rename below finds its dataset).
        let _ = fs::remove_dir(root);
    }
    match fs::rename(tmp.path(), root) {
        Ok(()) => {
            let _ = tmp.keep(); // now at `root`: must not be deleted on drop
            Ok(())
        }
        Err(_) if holds_dataset(root) => Ok(()), // `tmp` is deleted on drop
        Err(e) => Err(io_failure(root, "move the data into", e)),
    }
}

/// Whether ROOT holds both splits' file lists, the last thing a split writes.
fn holds_dataset(root: &Path) -> bool {
    [Split::Train, Split::Val]
        .iter()
        .all(|split| root.join(split.name()).join("filenames.txt").is_file())
}

/// Writes one split's images, labels and filenames.txt into `dir`.
fn write_split(dir: &Path, samples: &[Sample], size: usize) -> anyhow::Result<()> {
    let mut list = String::new();
    for sub in ["images", "labels"] {
        let d = dir.join(sub);
        fs::create_dir_all(&d).map_err(|e| io_failure(&d, "create folder", e))?;
    }
    for (i, sample) in samples.iter().enumerate() {
        let name = format!("{i:06}.png");
        write_png(&dir.join("images").join(&name), &sample.image, size)?;
        write_png(&dir.join("labels").join(&name), &sample.label, size)?;
        list.push_str(&name);
        list.push('\n');
    }
    let path = dir.join("filenames.txt");
    fs::write(&path, list).map_err(|e| io_failure(&path, "write", e))?;
    Ok(())
}

/// Saves a size×size row-major buffer as an 8-bit greyscale PNG.
fn write_png(path: &Path, pixels: &[u8], size: usize) -> anyhow::Result<()> {
    let img = image::GrayImage::from_raw(size as u32, size as u32, pixels.to_vec())
        .expect("buffer holds size×size pixels");
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| Failure::Data(format!("cannot write {}: {e}", path.display())).into())
}

fn io_failure(path: &Path, what: &str, e: std::io::Error) -> anyhow::Error {
    Failure::Data(format!("cannot {what} {}: {e}", path.display())).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_train() -> (Vec<Object>, Vec<Sample>) {
        let spec = QtipsSpec::default();
        (objects(&spec, Split::Train), generate(&spec, Split::Train))
    }

    /// FNV-1a, 64 bit: a hash whose value is fixed by its definition.
    fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
        bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    #[test]
    fn only_four_grey_values_and_consistent_labels() {
        let (objs, samples) = default_train();
        for (obj, s) in objs.iter().zip(&samples) {
            for (&g, &l) in s.image.iter().zip(&s.label) {
                assert!([BLACK, BACKGROUND, BAR, WHITE].contains(&g), "grey {g}");
                assert!(l <= 3);
                assert_eq!(l > 0, g != BACKGROUND);
                assert!(l == 0 || l == obj.class);
            }
        }
    }

    #[test]
    fn deterministic_and_seeded() {
        let spec = QtipsSpec {
            train: 16,
            val: 8,
            ..QtipsSpec::default()
        };
        assert_eq!(generate(&spec, Split::Train), generate(&spec, Split::Train));
        let other = QtipsSpec {
            seed: 1,
            ..spec.clone()
        };
        assert_ne!(
            generate(&spec, Split::Train),
            generate(&other, Split::Train)
        );
        let more = QtipsSpec {
            train: 100,
            ..spec.clone()
        };
        assert_eq!(generate(&spec, Split::Val), generate(&more, Split::Val));
        assert_ne!(
            generate(&spec, Split::Val)[..8],
            generate(&spec, Split::Train)[..8]
        );
    }

    /// Pins the generator across machines and versions: the value was
    /// observed once; if it changes, the generated data set has changed.
    #[test]
    fn checksum_of_first_train_images() {
        let spec = QtipsSpec {
            train: 8,
            ..QtipsSpec::default()
        };
        let samples = generate(&spec, Split::Train);
        let hash = fnv1a(
            samples
                .iter()
                .flat_map(|s| s.image.iter().chain(&s.label).copied()),
        );
        assert_eq!(
            hash, 0x2c45_bd49_0254_0f41,
            "generator output changed: {hash:#018x}"
        );
    }

    #[test]
    fn frequencies_match_the_authors_data() {
        let (objs, samples) = default_train();
        let mut pixels = [0usize; 4];
        for s in &samples {
            for &l in &s.label {
                pixels[l as usize] += 1;
            }
        }
        let total = (samples.len() * 64 * 64) as f64;
        for (c, want) in [0.9385, 0.0190, 0.0212, 0.0213].into_iter().enumerate() {
            let got = pixels[c] as f64 / total;
            assert!((got - want).abs() <= 0.004, "class {c}: {got} vs {want}");
        }
        for c in 1..=3 {
            let got = objs.iter().filter(|o| o.class == c).count() as f64 / objs.len() as f64;
            assert!((got - 1.0 / 3.0).abs() <= 0.05, "class {c}: {got}");
        }
    }

    #[test]
    fn parameters_cover_their_ranges() {
        let (objs, samples) = default_train();
        let by_len: fn(&Object) -> u32 = |o| o.len;
        let by_width: fn(&Object) -> u32 = |o| o.width;
        for (range, pick) in [(LENGTHS, by_len), (WIDTHS, by_width)] {
            for v in range.clone() {
                assert!(objs.iter().any(|o| pick(o) == v), "value {v} never drawn");
            }
            assert!(objs.iter().all(|o| range.contains(&pick(o))));
        }
        for o in &objs {
            assert!((o.centre.0 - 31.5).abs() <= 1.0 && (o.centre.1 - 31.5).abs() <= 1.0);
            assert!((o.dir.0 * o.dir.0 + o.dir.1 * o.dir.1 - 1.0).abs() < 1e-12);
        }
        // Both orientations of class 2, and directions in all four quadrants.
        assert!(objs.iter().any(|o| o.ends == (WHITE, BLACK)));
        assert!(objs.iter().any(|o| o.ends == (BLACK, WHITE)));
        for (sx, sy) in [(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)] {
            assert!(objs
                .iter()
                .any(|o| o.dir.0 * sx > 0.0 && o.dir.1 * sy > 0.0));
        }
        // Rotated objects keep roughly their area (nearest neighbour).
        for (o, s) in objs.iter().zip(&samples) {
            let area = s.label.iter().filter(|&&l| l > 0).count() as i64;
            let want = (o.len * o.width) as i64;
            assert!(
                (area - want).abs() <= (o.len + o.width) as i64,
                "{area} vs {want}"
            );
        }
    }

    #[test]
    fn axis_aligned_objects_are_exact() {
        for len in LENGTHS {
            for width in WIDTHS {
                let obj = Object {
                    class: 2,
                    len,
                    width,
                    centre: (31.5, 31.5),
                    dir: (1.0, 0.0),
                    ends: (WHITE, BLACK),
                };
                let s = render(&obj, 64);
                let count = |g: u8| s.image.iter().filter(|&&p| p == g).count();
                assert_eq!(
                    s.label.iter().filter(|&&l| l == 2).count(),
                    (len * width) as usize
                );
                assert_eq!(count(WHITE), (width * width) as usize);
                assert_eq!(count(BLACK), (width * width) as usize);
                // Column of the first object pixel on the centre row.
                let row = &s.image[32 * 64..33 * 64];
                let first = row.iter().position(|&p| p != BACKGROUND).unwrap();
                let (w, l) = (width as usize, len as usize);
                assert!(row[first..first + w].iter().all(|&p| p == WHITE));
                assert!(row[first + w..first + l - w].iter().all(|&p| p == BAR));
                assert!(row[first + l - w..first + l].iter().all(|&p| p == BLACK));
                assert_eq!(row[first + l], BACKGROUND);
            }
        }
    }

    #[test]
    fn written_dataset_reads_back() {
        let spec = QtipsSpec {
            train: 5,
            val: 3,
            ..QtipsSpec::default()
        };
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("qtips");
        write_dataset(&root, &spec).unwrap();
        for split in [Split::Train, Split::Val] {
            let dir = root.join(split.name());
            let samples = generate(&spec, split);
            let list = fs::read_to_string(dir.join("filenames.txt")).unwrap();
            let names: Vec<&str> = list.lines().collect();
            assert_eq!(names.len(), samples.len());
            for (name, s) in names.iter().zip(&samples) {
                let read = |sub: &str| image::open(dir.join(sub).join(name)).unwrap();
                assert_eq!(read("images").as_luma8().unwrap().as_raw(), &s.image);
                assert_eq!(read("labels").as_luma8().unwrap().as_raw(), &s.label);
            }
        }
        // Only the data set is left: no temporary folder.
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
        // A non-empty root is refused; an empty one is filled.
        let err = write_dataset(&root, &spec).unwrap_err();
        assert!(
            err.to_string().contains(&root.display().to_string()),
            "{err}"
        );
        assert_eq!(crate::error::exit_code(&err), 3);
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        write_dataset(&empty, &spec).unwrap();
        assert!(empty.join("val/filenames.txt").is_file());
    }

    #[test]
    fn a_writer_that_finishes_second_keeps_the_first_dataset() {
        let spec = QtipsSpec {
            train: 2,
            val: 1,
            ..QtipsSpec::default()
        };
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("qtips");
        write_dataset(&root, &spec).unwrap();
        let before = fs::read(root.join("train/images/000000.png")).unwrap();
        // The loser of the race: its own copy finished after ROOT was filled.
        let late = tempfile::tempdir_in(parent.path()).unwrap();
        write_split(
            &late.path().join("train"),
            &generate(&spec, Split::Train),
            spec.size,
        )
        .unwrap();
        let late_path = late.path().to_path_buf();
        move_into_place(late, &root).unwrap();
        assert!(!late_path.exists(), "the late copy is discarded");
        assert_eq!(
            fs::read(root.join("train/images/000000.png")).unwrap(),
            before
        );
        // Anything else in the way is still an error naming ROOT.
        let blocked = parent.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("notes.txt"), "mine").unwrap();
        let other = tempfile::tempdir_in(parent.path()).unwrap();
        let err = move_into_place(other, &blocked).unwrap_err();
        assert!(err.to_string().contains("blocked"), "{err}");
        assert_eq!(
            fs::read_to_string(blocked.join("notes.txt")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn concurrent_writers_all_succeed_with_one_dataset() {
        let spec = QtipsSpec {
            train: 3,
            val: 2,
            ..QtipsSpec::default()
        };
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("qtips");
        std::thread::scope(|scope| {
            let writers: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| write_dataset(&root, &spec)))
                .collect();
            for writer in writers {
                // A writer that starts after another has finished is refused
                // (the folder is not empty); none may fail otherwise.
                if let Err(e) = writer.join().unwrap() {
                    assert!(e.to_string().contains("refusing"), "{e}");
                }
            }
        });
        assert!(holds_dataset(&root));
        // Only the data set is left: no temporary folder.
        assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 1);
    }
}
