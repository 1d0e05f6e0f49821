//! Just enough of the MATLAB 5 MAT-file format (the default before v7.3) to
//! read NYU's `splits.mat`: real numeric arrays, compressed or not, little
//! endian. Everything else in a file (cells, structs, text, sparse) is skipped.
//! Reference: MathWorks, "MAT-File Format", version 5 data elements.

use std::io::Read;

const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// (name, values in column-major order) of every real numeric array.
pub fn read_numeric(bytes: &[u8]) -> Result<Vec<(String, Vec<f64>)>, String> {
    if bytes.len() < 128 || !bytes.starts_with(b"MATLAB 5.0 MAT-file") {
        return Err("not a MATLAB 5 MAT-file (no \"MATLAB 5.0 MAT-file\" header)".into());
    }
    if &bytes[126..128] != b"IM" {
        return Err("a big-endian MAT-file, not supported".into());
    }
    let mut out = Vec::new();
    let mut pos = 128;
    while pos + 8 <= bytes.len() {
        let (ty, n) = (u32_at(bytes, pos), u32_at(bytes, pos + 4) as usize);
        let body = bytes
            .get(pos + 8..pos + 8 + n)
            .ok_or("truncated data element")?;
        match ty {
            MI_COMPRESSED => {
                let mut inflated = Vec::new();
                flate2::read::ZlibDecoder::new(body)
                    .read_to_end(&mut inflated)
                    .map_err(|e| format!("corrupt compressed element: {e}"))?;
                if inflated.len() >= 8 && u32_at(&inflated, 0) == MI_MATRIX {
                    let m = u32_at(&inflated, 4) as usize;
                    let inner = inflated.get(8..8 + m).ok_or("truncated matrix")?;
                    out.extend(matrix(inner)?);
                }
                pos += 8 + n;
            }
            MI_MATRIX => {
                out.extend(matrix(body)?);
                pos += 8 + padded(n);
            }
            _ => pos += 8 + padded(n),
        }
    }
    Ok(out)
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

fn padded(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// The sub-elements of a matrix: (type, data), small elements unpacked.
fn elements(b: &[u8]) -> Result<Vec<(u32, &[u8])>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= b.len() {
        let first = u32_at(b, pos);
        if first >> 16 != 0 {
            // Small data element: type and size in one word, data in the next.
            let (ty, n) = (first & 0xffff, (first >> 16) as usize);
            out.push((ty, b.get(pos + 4..pos + 4 + n).ok_or("truncated element")?));
            pos += 8;
        } else {
            let n = u32_at(b, pos + 4) as usize;
            out.push((
                first,
                b.get(pos + 8..pos + 8 + n).ok_or("truncated element")?,
            ));
            pos += 8 + padded(n);
        }
    }
    Ok(out)
}

/// A real numeric matrix's (name, values), or None for anything else.
fn matrix(b: &[u8]) -> Result<Option<(String, Vec<f64>)>, String> {
    let parts = elements(b)?;
    let [flags, _dims, name, real, ..] = parts.as_slice() else {
        return Ok(None);
    };
    let class = flags.1.first().copied().unwrap_or(0);
    let complex = flags.1.get(1).is_some_and(|f| f & 0x08 != 0);
    // Classes 6..=15: double, single, int8 … uint64.
    if !(6..=15).contains(&class) || complex {
        return Ok(None);
    }
    let name = String::from_utf8_lossy(name.1).into_owned();
    let (ty, data) = *real;
    let values: Vec<f64> = match ty {
        1 => data.iter().map(|&v| v as i8 as f64).collect(),
        2 => data.iter().map(|&v| v as f64).collect(),
        3 => data
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as f64)
            .collect(),
        4 => data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as f64)
            .collect(),
        5 => data
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().expect("4")) as f64)
            .collect(),
        6 => data
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4")) as f64)
            .collect(),
        7 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4")) as f64)
            .collect(),
        9 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8")))
            .collect(),
        12 => data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8")) as f64)
            .collect(),
        13 => data
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8")) as f64)
            .collect(),
        other => {
            return Err(format!(
                "array `{name}` has data type {other}, not supported"
            ))
        }
    };
    Ok(Some((name, values)))
}
