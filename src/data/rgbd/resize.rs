//! Centre crop and resize of a frame: exact area averages where the sizes
//! divide, bilinear interpolation (pixel centres aligned) otherwise.

use crate::data::frame::Frame;
use crate::error::data_error;

/// Centre crop to crop (0 = none), then resize to size (0 = none).
pub fn preprocess(
    frame: Frame,
    crop: (usize, usize),
    size: (usize, usize),
    what: &str,
) -> anyhow::Result<Frame> {
    let frame = if crop.0 > 0 {
        if crop.0 > frame.height || crop.1 > frame.width {
            return Err(data_error(format!(
                "{what} is {}×{} (rows×columns), smaller than data.crop_height × data.crop_width \
                 = {}×{}",
                frame.height, frame.width, crop.0, crop.1
            )));
        }
        centre_crop(&frame, crop.0, crop.1)
    } else {
        frame
    };
    if size.0 == 0 || (size.0, size.1) == (frame.height, frame.width) {
        return Ok(frame);
    }
    Ok(resize(&frame, size.0, size.1))
}

fn centre_crop(f: &Frame, h: usize, w: usize) -> Frame {
    let (top, left) = ((f.height - h) / 2, (f.width - w) / 2);
    let mut rgb = Vec::with_capacity(h * w * 3);
    let mut depth = Vec::with_capacity(h * w);
    for r in top..top + h {
        let row = r * f.width;
        rgb.extend_from_slice(&f.rgb[3 * (row + left)..3 * (row + left + w)]);
        depth.extend_from_slice(&f.depth[row + left..row + left + w]);
    }
    Frame {
        rgb,
        depth,
        height: h,
        width: w,
    }
}

/// Area average when the sizes divide exactly, bilinear otherwise.
pub fn resize(f: &Frame, h: usize, w: usize) -> Frame {
    let (fh, fw) = (f.height, f.width);
    let mut rgb = Vec::with_capacity(h * w * 3);
    let mut depth = Vec::with_capacity(h * w);
    if fh % h == 0 && fw % w == 0 {
        let (sy, sx) = (fh / h, fw / w);
        let n = (sy * sx) as f64;
        for r in 0..h {
            for c in 0..w {
                let (mut acc, mut d) = ([0u32; 3], 0f64);
                for y in r * sy..(r + 1) * sy {
                    for x in c * sx..(c + 1) * sx {
                        let i = y * fw + x;
                        for (a, &v) in acc.iter_mut().zip(&f.rgb[3 * i..3 * i + 3]) {
                            *a += v as u32;
                        }
                        d += f.depth[i] as f64;
                    }
                }
                let m = (sy * sx) as u32;
                rgb.extend(acc.map(|a| ((a + m / 2) / m) as u8));
                depth.push((d / n) as f32);
            }
        }
    } else {
        // Pixel centres aligned: source coordinate (dst + 0.5)·scale − 0.5, clamped.
        let coord = |dst: usize, src_len: usize, dst_len: usize| {
            let s = ((dst as f64 + 0.5) * src_len as f64 / dst_len as f64 - 0.5)
                .clamp(0.0, (src_len - 1) as f64);
            let i0 = s.floor() as usize;
            let i1 = (i0 + 1).min(src_len - 1);
            (i0, i1, s - i0 as f64)
        };
        for r in 0..h {
            let (y0, y1, ty) = coord(r, fh, h);
            for c in 0..w {
                let (x0, x1, tx) = coord(c, fw, w);
                let at = |y: usize, x: usize| y * fw + x;
                let weights = [
                    (at(y0, x0), (1.0 - ty) * (1.0 - tx)),
                    (at(y0, x1), (1.0 - ty) * tx),
                    (at(y1, x0), ty * (1.0 - tx)),
                    (at(y1, x1), ty * tx),
                ];
                for k in 0..3 {
                    let v: f64 = weights
                        .iter()
                        .map(|&(i, wt)| f.rgb[3 * i + k] as f64 * wt)
                        .sum();
                    rgb.push(v.round().clamp(0.0, 255.0) as u8);
                }
                let d: f64 = weights.iter().map(|&(i, wt)| f.depth[i] as f64 * wt).sum();
                depth.push(d as f32);
            }
        }
    }
    Frame {
        rgb,
        depth,
        height: h,
        width: w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(h: usize, w: usize) -> Frame {
        Frame {
            rgb: (0..h * w * 3).map(|i| (i % 251) as u8).collect(),
            depth: (0..h * w).map(|i| 1.0 + i as f32).collect(),
            height: h,
            width: w,
        }
    }

    #[test]
    fn area_resize_averages_blocks() {
        let f = frame(4, 6);
        let r = resize(&f, 2, 3);
        // Output (0, 0) averages source rows 0-1, columns 0-1.
        let d = (f.depth[0] + f.depth[1] + f.depth[6] + f.depth[7]) / 4.0;
        assert_eq!(r.depth[0], d);
        let red = (f.rgb[0] as u32 + f.rgb[3] as u32 + f.rgb[18] as u32 + f.rgb[21] as u32 + 2) / 4;
        assert_eq!(r.rgb[0] as u32, red);
        assert_eq!(
            (r.height, r.width, r.rgb.len(), r.depth.len()),
            (2, 3, 18, 6)
        );
    }

    #[test]
    fn bilinear_resize_keeps_constants_and_linear_ramps() {
        let mut f = frame(5, 7);
        for (i, d) in f.depth.iter_mut().enumerate() {
            *d = 2.0 + (i % 7) as f32; // linear in the column
        }
        let r = resize(&f, 3, 4);
        for row in 0..3 {
            for c in 0..4 {
                let s = ((c as f64 + 0.5) * 7.0 / 4.0 - 0.5).clamp(0.0, 6.0);
                assert!((r.depth[row * 4 + c] as f64 - (2.0 + s)).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn crop_takes_the_centre() {
        let f = frame(6, 8);
        let c = preprocess(f.clone(), (2, 4), (0, 0), "x").unwrap();
        assert_eq!(
            c.depth,
            [
                f.depth[2 * 8 + 2..2 * 8 + 6].to_vec(),
                f.depth[3 * 8 + 2..3 * 8 + 6].to_vec()
            ]
            .concat()
        );
        let err = preprocess(f, (7, 4), (0, 0), "frame x").unwrap_err();
        assert!(err.to_string().contains("frame x"));
    }

    #[test]
    fn flip_mirrors_rgb_and_depth() {
        let f = frame(2, 3);
        let g = f.flipped();
        assert_eq!(g.depth, vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
        assert_eq!(&g.rgb[..3], &f.rgb[6..9]);
        assert_eq!(g.flipped(), f);
    }
}
