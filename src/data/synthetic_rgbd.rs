//! A synthetic RGB-D set: rendered rooms with exact depth, so that the depth
//! pipeline runs on a CPU in minutes, and in the tests, without NYU's 2.8 GB.
//!
//! Each frame is a box-shaped room (floor, ceiling, four walls) holding one to
//! four boxes standing on the floor, seen through a pinhole camera from a
//! random point and direction. Every surface has its own texture (a checker
//! or stripes of two random colours with a random period, in metres on the
//! surface) and a shading that depends only on its orientation, plus a little
//! pixel noise: colour says which surface a pixel is on, not how far it is,
//! so depth has to come from geometry (perspective, the floor's texture
//! shrinking with distance, occlusion, where walls meet).
//!
//! Depth is the z-depth in metres (distance along the optical axis, as the
//! Kinect and NYU report it), exact up to f64 → f32 rounding.
//!
//! Same seed ⇒ same bytes on every machine: ChaCha8 as in `qtips.rs`, and the
//! geometry uses only `+ − × ÷ sqrt floor` on f64 (IEEE-exact), never a maths
//! library function whose last bit may differ between platforms.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use super::frame::Frame;

/// Focal length in pixels, as a fraction of the image width (≈ 64° field of
/// view across, close to the Kinect's 58°).
const FOCAL_PER_WIDTH: f64 = 0.8;

type V3 = [f64; 3];

fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn normalise(a: V3) -> V3 {
    let n = dot(a, a).sqrt();
    [a[0] / n, a[1] / n, a[2] / n]
}

/// How a surface is painted.
#[derive(Debug, Clone, Copy)]
struct Paint {
    a: V3,
    b: V3,
    /// Period of the pattern in metres.
    period: f64,
    /// 0 checker, 1 stripes along u, 2 stripes along v.
    pattern: u32,
}

impl Paint {
    fn random(rng: &mut ChaCha8Rng) -> Self {
        let mut colour = || {
            [
                rng.gen_range(20.0..235.0),
                rng.gen_range(20.0..235.0),
                rng.gen_range(20.0..235.0),
            ]
        };
        let (a, b) = (colour(), colour());
        Self {
            a,
            b,
            period: rng.gen_range(0.15..0.8),
            pattern: rng.gen_range(0..3),
        }
    }

    /// Colour at surface coordinates (u, v), in metres.
    fn at(&self, u: f64, v: f64) -> V3 {
        let (i, j) = ((u / self.period).floor(), (v / self.period).floor());
        let odd = match self.pattern {
            0 => (i + j).rem_euclid(2.0) == 1.0,
            1 => i.rem_euclid(2.0) == 1.0,
            _ => j.rem_euclid(2.0) == 1.0,
        };
        if odd {
            self.b
        } else {
            self.a
        }
    }
}

/// An axis-aligned box standing on the floor.
#[derive(Debug, Clone, Copy)]
struct Block {
    min: V3,
    max: V3,
    paint: Paint,
}

/// A room and a camera in it.
struct Scene {
    /// Room extent: x in [0, size.0], y (up) in [0, size.1], z in [0, size.2].
    size: V3,
    /// Floor, ceiling, wall x=0, wall x=max, wall z=0, wall z=max.
    walls: [Paint; 6],
    blocks: Vec<Block>,
    eye: V3,
    right: V3,
    up: V3,
    forward: V3,
    /// Shading by the normal's axis (x, y, z): light from a fixed direction.
    shade: V3,
}

impl Scene {
    fn random(rng: &mut ChaCha8Rng) -> Self {
        let size = [
            rng.gen_range(3.0..6.0),
            rng.gen_range(2.4..3.2),
            rng.gen_range(4.0..8.0),
        ];
        let walls = std::array::from_fn(|_| Paint::random(rng));
        let eye = [
            rng.gen_range(size[0] * 0.3..size[0] * 0.7),
            rng.gen_range(1.0..1.8),
            rng.gen_range(0.3..1.0),
        ];
        let n_blocks = rng.gen_range(1..=4);
        let blocks = (0..n_blocks)
            .map(|_| {
                let (w, h, d) = (
                    rng.gen_range(0.3..1.5),
                    rng.gen_range(0.3..1.6),
                    rng.gen_range(0.3..1.5),
                );
                let x = rng.gen_range(0.0..size[0] - w);
                let z = rng.gen_range(eye[2] + 1.0..size[2] - d);
                Block {
                    min: [x, 0.0, z],
                    max: [x + w, h, z + d],
                    paint: Paint::random(rng),
                }
            })
            .collect();
        // Looking roughly along +z, a little sideways and mostly down: a
        // direction, not an angle, so no sin/cos is needed.
        let forward = normalise([rng.gen_range(-0.4..0.4), rng.gen_range(-0.3..0.1), 1.0]);
        let right = normalise(cross([0.0, 1.0, 0.0], forward));
        let up = cross(forward, right);
        let shade = [
            rng.gen_range(0.55..0.9),
            rng.gen_range(0.8..1.0),
            rng.gen_range(0.6..0.95),
        ];
        Self {
            size,
            walls,
            blocks,
            eye,
            right,
            up,
            forward,
            shade,
        }
    }

    /// Nearest hit of the ray eye + t·dir (t > 0): (t, colour).
    fn trace(&self, dir: V3) -> (f64, V3) {
        let o = self.eye;
        // The room: the camera is inside a convex box, so the ray leaves it
        // through the plane with the smallest positive t.
        let mut best = (f64::INFINITY, [0.0; 3]);
        for axis in 0..3 {
            if dir[axis] == 0.0 {
                continue;
            }
            let (bound, wall) = if dir[axis] < 0.0 {
                (0.0, 2 * axis)
            } else {
                (self.size[axis], 2 * axis + 1)
            };
            let t = (bound - o[axis]) / dir[axis];
            if t > 0.0 && t < best.0 {
                best = (t, self.surface_colour(&self.walls[wall], axis, o, dir, t));
            }
        }
        for block in &self.blocks {
            if let Some((t, axis)) = slab(o, dir, block.min, block.max) {
                if t < best.0 {
                    best = (t, self.surface_colour(&block.paint, axis, o, dir, t));
                }
            }
        }
        best
    }

    fn surface_colour(&self, paint: &Paint, axis: usize, o: V3, dir: V3, t: f64) -> V3 {
        let p = [o[0] + t * dir[0], o[1] + t * dir[1], o[2] + t * dir[2]];
        let (u, v) = match axis {
            0 => (p[2], p[1]),
            1 => (p[0], p[2]),
            _ => (p[0], p[1]),
        };
        let c = paint.at(u, v);
        let s = self.shade[axis];
        [c[0] * s, c[1] * s, c[2] * s]
    }
}

/// Ray / axis-aligned box intersection (slab method): entry t > 0 and the
/// axis of the face hit, if the ray enters the box in front of the origin.
fn slab(o: V3, dir: V3, min: V3, max: V3) -> Option<(f64, usize)> {
    let (mut t_near, mut t_far, mut axis_near) = (f64::NEG_INFINITY, f64::INFINITY, 0);
    for axis in 0..3 {
        if dir[axis] == 0.0 {
            if o[axis] < min[axis] || o[axis] > max[axis] {
                return None;
            }
            continue;
        }
        let t1 = (min[axis] - o[axis]) / dir[axis];
        let t2 = (max[axis] - o[axis]) / dir[axis];
        let (a, b) = if t1 < t2 { (t1, t2) } else { (t2, t1) };
        if a > t_near {
            (t_near, axis_near) = (a, axis);
        }
        t_far = t_far.min(b);
    }
    (t_near <= t_far && t_near > 0.0).then_some((t_near, axis_near))
}

impl Scene {
    /// The ray through the centre of pixel (row, col) of a height×width
    /// pinhole image with focal length `FOCAL_PER_WIDTH · width` pixels:
    /// forward + x·right + y·up. Its component along `forward` is 1, so the
    /// t of a hit eye + t·ray is the hit's z-depth.
    fn pixel_ray(&self, row: usize, col: usize, height: usize, width: usize) -> V3 {
        let focal = FOCAL_PER_WIDTH * width as f64;
        let x = (col as f64 + 0.5 - width as f64 / 2.0) / focal;
        let y = (height as f64 / 2.0 - row as f64 - 0.5) / focal;
        [
            self.forward[0] + x * self.right[0] + y * self.up[0],
            self.forward[1] + x * self.right[1] + y * self.up[1],
            self.forward[2] + x * self.right[2] + y * self.up[2],
        ]
    }

    /// Every pixel's z-depth and colour, row by row, with pixel noise from `rng`.
    fn render(&self, rng: &mut ChaCha8Rng, height: usize, width: usize) -> Frame {
        let mut rgb = Vec::with_capacity(height * width * 3);
        let mut depth = Vec::with_capacity(height * width);
        for row in 0..height {
            for col in 0..width {
                let dir = self.pixel_ray(row, col, height, width);
                debug_assert!((dot(sub(dir, self.forward), self.forward)).abs() < 1e-9);
                let (t, colour) = self.trace(dir);
                depth.push(t as f32);
                for c in colour {
                    let noisy = c + rng.gen_range(-6.0..6.0);
                    rgb.push(noisy.round().clamp(0.0, 255.0) as u8);
                }
            }
        }
        Frame {
            rgb,
            depth,
            height,
            width,
        }
    }
}

/// Frame `index` of the stream `stream` (0 = train, 1 = validation) of the
/// set seeded by `seed`, rendered at height×width. Each frame has its own
/// ChaCha stream position, so frames do not depend on how many are made.
pub fn render(seed: u64, stream: u64, index: usize, height: usize, width: usize) -> Frame {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    // 2^40 words per frame: far more than a frame draws.
    rng.set_word_pos((index as u128) << 40);
    let scene = Scene::random(&mut rng);
    scene.render(&mut rng, height, width)
}

/// `n` frames of one stream.
pub fn generate(seed: u64, stream: u64, n: usize, height: usize, width: usize) -> Vec<Frame> {
    (0..n)
        .map(|i| render(seed, stream, i, height, width))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_independent_of_count() {
        let a = generate(7, 0, 3, 24, 32);
        let b = generate(7, 0, 5, 24, 32);
        assert_eq!(a[..], b[..3]);
        assert_ne!(a[0], a[1]);
        assert_ne!(render(7, 1, 0, 24, 32), a[0]);
        assert_ne!(render(8, 0, 0, 24, 32), a[0]);
    }

    #[test]
    fn checksum_is_pinned() {
        // FNV-1a over the bytes of 4 frames: any change in the generator shows.
        let mut hash: u64 = 0xcbf29ce484222325;
        for f in generate(0, 0, 4, 48, 64) {
            let bytes = f
                .rgb
                .iter()
                .copied()
                .chain(f.depth.iter().flat_map(|d| d.to_le_bytes()));
            for b in bytes {
                hash = (hash ^ b as u64).wrapping_mul(0x100000001b3);
            }
        }
        assert_eq!(hash, CHECKSUM, "generator output changed: {hash:#x}");
    }

    const CHECKSUM: u64 = 0xc2569f401e9282bb;

    #[test]
    fn depth_is_positive_bounded_and_varied() {
        for f in generate(1, 0, 8, 48, 64) {
            assert_eq!(f.rgb.len(), 48 * 64 * 3);
            let (lo, hi) = f
                .depth
                .iter()
                .fold((f32::MAX, 0f32), |(l, h), &d| (l.min(d), h.max(d)));
            assert!(lo > 0.05 && hi < 12.0, "{lo} {hi}");
            assert!(hi / lo > 1.5, "too flat: {lo} {hi}");
            // Colour does not follow depth: several colours at similar depths.
            let distinct: std::collections::HashSet<_> = f.rgb.chunks(3).collect();
            assert!(distinct.len() > 50);
        }
    }

    #[test]
    fn rendered_depths_follow_the_pinhole_model() {
        // A room of 4 × 3 × 8 m with one box, the camera 1.5 m up looking
        // straight along +z: every depth below is the analytic intersection,
        // reached through the camera mapping the frames are rendered with.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let paint = Paint::random(&mut rng);
        let scene = Scene {
            size: [4.0, 3.0, 8.0],
            walls: [paint; 6],
            blocks: vec![Block {
                min: [0.0, 0.0, 3.0],
                max: [1.0, 1.0, 4.0],
                paint,
            }],
            eye: [2.0, 1.5, 0.5],
            right: [1.0, 0.0, 0.0],
            up: [0.0, 1.0, 0.0],
            forward: [0.0, 0.0, 1.0],
            shade: [1.0; 3],
        };
        let (h, w) = (24, 32);
        let frame = scene.render(&mut rng, h, w);
        let depth = |row: usize, col: usize| f64::from(frame.depth[row * w + col]);
        // Pixel (row, col) looks along (x, y, 1), x and y in pixels / focal.
        let focal = FOCAL_PER_WIDTH * w as f64;
        let x = |col: usize| (col as f64 + 0.5 - w as f64 / 2.0) / focal;
        let y = |row: usize| (h as f64 / 2.0 - row as f64 - 0.5) / focal;
        let close = |got: f64, want: f64| {
            // f32 storage: within an ulp (2^-23 relative) of the exact value.
            assert!(
                (got - want).abs() <= want * 2f64.powi(-23),
                "{got} != {want}"
            );
        };
        // Bottom row, centre: the floor, 1.5 m below the eye.
        close(depth(h - 1, w / 2), 1.5 / -y(h - 1));
        // Top row, centre: the ceiling, 1.5 m above.
        close(depth(0, w / 2), 1.5 / y(0));
        // The pixel just right of the centre: the far wall, 7.5 m ahead.
        close(depth(h / 2, w / 2), 7.5);
        // Left and below: the box's front face at z = 3.
        let (row, col) = (h / 2 + 7, 2);
        let hit = [2.0 + 2.5 * x(col), 1.5 + 2.5 * y(row)];
        assert!(
            (0.0..1.0).contains(&hit[0]) && (0.0..1.0).contains(&hit[1]),
            "{hit:?}"
        );
        close(depth(row, col), 2.5);
    }

    #[test]
    fn slab_hits_and_misses() {
        let (min, max) = ([1.0, 0.0, 2.0], [2.0, 1.0, 3.0]);
        assert_eq!(
            slab([1.5, 0.5, 0.0], [0.0, 0.0, 1.0], min, max),
            Some((2.0, 2))
        );
        assert_eq!(slab([1.5, 0.5, 0.0], [0.0, 0.0, -1.0], min, max), None);
        assert_eq!(slab([3.5, 0.5, 0.0], [0.0, 0.0, 1.0], min, max), None);
        assert_eq!(
            slab([0.0, 0.5, 2.5], [1.0, 0.0, 0.0], min, max),
            Some((1.0, 0))
        );
    }
}
