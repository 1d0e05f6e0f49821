//! Every numerical piece against an independent truth: a dense linear solve,
//! an independent periodic convolution, finite differences, the adjoint
//! identity, and the peer reference's float64 fixtures
//! (`tests/fixtures/make_fixtures.py`).
//!
//! Tolerances are argued from float32: a dot product of n terms of size O(1)
//! carries a relative error of about n·2⁻²⁴ ≈ n·6e-8 in the worst case and
//! √n·6e-8 typically; the transforms here sum ≤ 2·64 terms twice, so a
//! relative 1e-4 leaves an order of magnitude to spare.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{backend::Backend, Distribution, Tensor, TensorData};
use imex_run::check::{
    compare_step_with_cpu, compare_with_peer, peer_fixture, rel_err, values, StepInput, Verdict,
};
use imex_run::config::{Arch, Config, ModelSection};
use imex_run::model::checkpoint::read_safetensors;
use imex_run::model::explicit::{conv3x3, conv3x3_adjoint, project_zero_mean};
use imex_run::model::implicit::FourierBasis;
use imex_run::model::network::LAPLACIAN_STENCIL;
use imex_run::model::ParamCounts;
use std::path::Path;

type B = Flex;
type AD = Autodiff<Flex>;

fn random<Bk: Backend, const D: usize>(shape: [usize; D], seed: u64) -> Tensor<Bk, D> {
    Bk::seed(&Default::default(), seed);
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

/// Independent periodic depthwise cross-correlation, f64, x [C][H][W], k [C][9].
fn periodic_correlate(
    x: &[f64],
    k: &[f64],
    c: usize,
    h: usize,
    w: usize,
    adjoint: bool,
) -> Vec<f64> {
    let mut y = vec![0.0; c * h * w];
    for ch in 0..c {
        for i in 0..h {
            for j in 0..w {
                for a in 0..3 {
                    for b in 0..3 {
                        let ii = (i + h + a - 1) % h;
                        let jj = (j + w + b - 1) % w;
                        let tap = k[ch * 9 + a * 3 + b];
                        if adjoint {
                            y[(ch * h + ii) * w + jj] += tap * x[(ch * h + i) * w + j];
                        } else {
                            y[(ch * h + i) * w + j] += tap * x[(ch * h + ii) * w + jj];
                        }
                    }
                }
            }
        }
    }
    y
}

/// (I + s CᵀC) x with the independent correlation.
fn apply_operator(x: &[f64], k: &[f64], c: usize, h: usize, w: usize, s: f64) -> Vec<f64> {
    let cx = periodic_correlate(x, k, c, h, w, false);
    let ctcx = periodic_correlate(&cx, k, c, h, w, true);
    x.iter().zip(ctcx).map(|(a, b)| a + s * b).collect()
}

/// Dense Gaussian elimination with partial pivoting (f64).
fn dense_solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap();
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row][col] / a[col][col];
            let pivot_row = a[col].clone();
            for (entry, p) in a[row].iter_mut().zip(&pivot_row).skip(col) {
                *entry -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x
}

#[test]
fn implicit_solve_equals_dense_solve() {
    let (c, h, w, s) = (2, 5, 7, 0.8);
    let rhs = random::<B, 4>([1, c, h, w], 1);
    let kernel = random::<B, 4>([c, 1, 3, 3], 2);
    let basis = FourierBasis::<B>::new(h, w, &Default::default());
    let lambda = basis.symbol_of_normal_operator(kernel.clone());
    let y = values(basis.solve(rhs.clone(), lambda, s));
    let (rhs, k) = (values(rhs), values(kernel));
    let n = h * w;
    for ch in 0..c {
        // Column j of A = A e_j, one channel at a time.
        let columns: Vec<Vec<f64>> = (0..n)
            .map(|j| {
                let mut e = vec![0.0; n];
                e[j] = 1.0;
                apply_operator(&e, &k[ch * 9..ch * 9 + 9], 1, h, w, s)
            })
            .collect();
        let a: Vec<Vec<f64>> = (0..n)
            .map(|i| (0..n).map(|j| columns[j][i]).collect())
            .collect();
        let exact = dense_solve(a, rhs[ch * n..(ch + 1) * n].to_vec());
        let err = rel_err(&y[ch * n..(ch + 1) * n], &exact);
        assert!(err < 1e-4, "channel {ch}: relative error {err:e}");
    }
}

#[test]
fn implicit_solve_residual_for_square_nonsquare_and_odd_sizes() {
    for (h, w) in [(8, 8), (6, 10), (7, 5), (64, 64), (48, 80)] {
        let (c, s) = (3, 1.3);
        let rhs = random::<B, 4>([2, c, h, w], 3);
        let kernel = random::<B, 4>([c, 1, 3, 3], 4);
        let basis = FourierBasis::<B>::new(h, w, &Default::default());
        let y = values(basis.solve(
            rhs.clone(),
            basis.symbol_of_normal_operator(kernel.clone()),
            s,
        ));
        let (rhs, k) = (values(rhs), values(kernel));
        let per_image = c * h * w;
        for img in 0..2 {
            let yi = &y[img * per_image..(img + 1) * per_image];
            let back = apply_operator(yi, &k, c, h, w, s);
            let err = rel_err(&back, &rhs[img * per_image..(img + 1) * per_image]);
            assert!(err < 2e-4, "{h}×{w}: residual {err:e}");
        }
    }
}

#[test]
fn laplacian_and_identity_operators() {
    let (h, w) = (9, 6);
    let rhs = random::<B, 4>([1, 2, h, w], 5);
    let basis = FourierBasis::<B>::new(h, w, &Default::default());
    let stencil = Tensor::<B, 2>::from_data(
        TensorData::new(LAPLACIAN_STENCIL.to_vec(), [3, 3]),
        &Default::default(),
    );
    let s = 50.0; // the stencil carries 1e-2: make it matter
    let y = values(basis.solve(rhs.clone(), basis.symbol_of_stencil(stencil), s));
    // L applied directly: Σ stencil[a,b] y(i+a−1, j+b−1), periodic (the stencil is symmetric).
    let stencil64: Vec<f64> = LAPLACIAN_STENCIL.iter().map(|&v| v as f64).collect();
    let both: Vec<f64> = [stencil64.clone(), stencil64].concat();
    let ly = periodic_correlate(&y, &both, 2, h, w, false);
    let back: Vec<f64> = y.iter().zip(&ly).map(|(a, b)| a + s * b).collect();
    assert!(rel_err(&back, &values(rhs.clone())) < 1e-4);
    // The identity symbol: (1 + s) y = rhs.
    let ones = Tensor::<B, 3>::ones([1, h, w], &Default::default());
    let y = values(basis.solve(rhs.clone(), ones, s));
    let scaled: Vec<f64> = y.iter().map(|v| v * (1.0 + s)).collect();
    assert!(rel_err(&scaled, &values(rhs)) < 1e-5);
}

/// d/dε ⟨solve(B + εdB, C + εdC), G⟩ by central differences against autodiff.
#[test]
fn implicit_solve_gradients_match_finite_differences() {
    let (n, c, h, w, s) = (2, 2, 6, 5, 0.9);
    let device = Default::default();
    let basis = FourierBasis::<AD>::new(h, w, &device);
    let (rhs, kernel, probe) = (
        random::<AD, 4>([n, c, h, w], 6),
        random::<AD, 4>([c, 1, 3, 3], 7),
        random::<AD, 4>([n, c, h, w], 8),
    );
    let (d_rhs, d_kernel) = (
        random::<AD, 4>([n, c, h, w], 9),
        random::<AD, 4>([c, 1, 3, 3], 10),
    );
    let objective = |b: Tensor<AD, 4>, k: Tensor<AD, 4>| {
        (basis.solve(b, basis.symbol_of_normal_operator(k), s) * probe.clone()).sum()
    };
    let (b, k) = (rhs.clone().require_grad(), kernel.clone().require_grad());
    let grads = objective(b.clone(), k.clone()).backward();
    let dot = |g: Tensor<B, 4>, d: Tensor<AD, 4>| values((g * d.inner()).sum())[0];
    let analytic_b = dot(b.grad(&grads).unwrap(), d_rhs.clone());
    let analytic_k = dot(k.grad(&grads).unwrap(), d_kernel.clone());
    let eval = |b: Tensor<AD, 4>, k: Tensor<AD, 4>| values(objective(b, k))[0];
    // Linear in B: a unit step is exact up to rounding.
    let fd_b = (eval(rhs.clone() + d_rhs.clone(), kernel.clone())
        - eval(rhs.clone() - d_rhs, kernel.clone()))
        / 2.0;
    // Nonlinear in C: ε = 1e-2 balances the O(ε²) truncation against float32 rounding (~1e-7·|f|/ε).
    let eps = 1e-2;
    let fd_k = (eval(
        rhs.clone(),
        kernel.clone() + d_kernel.clone().mul_scalar(eps),
    ) - eval(rhs, kernel - d_kernel.mul_scalar(eps)))
        / (2.0 * eps);
    assert!(
        (analytic_b - fd_b).abs() <= 1e-4 * analytic_b.abs().max(1.0),
        "{analytic_b} vs {fd_b}"
    );
    assert!(
        (analytic_k - fd_k).abs() <= 3e-3 * analytic_k.abs().max(1.0),
        "{analytic_k} vs {fd_k}"
    );
}

#[test]
fn explicit_step_adjoint_identity() {
    let x = random::<B, 4>([2, 3, 9, 7], 11);
    let y = random::<B, 4>([2, 5, 9, 7], 12);
    let k = random::<B, 4>([5, 3, 3, 3], 13);
    let lhs = values((conv3x3(x.clone(), k.clone()) * y.clone()).sum())[0];
    let rhs = values((x * conv3x3_adjoint(y, k)).sum())[0];
    assert!(
        (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
        "⟨Kx,y⟩ = {lhs}, ⟨x,Kᵀy⟩ = {rhs}"
    );
}

#[test]
fn projection_gives_zero_mean_kernels() {
    let k = values(project_zero_mean(random::<B, 4>([4, 3, 3, 3], 14)));
    for kernel in k.chunks(9) {
        assert!(kernel.iter().sum::<f64>().abs() < 1e-5);
    }
}

fn model_spec(toml_model: &str) -> ModelSection {
    let text = format!("[experiment]\nname = \"t\"\n[model]\n{toml_model}\n");
    Config::parse(&text, "test", &[]).unwrap().model
}

#[test]
fn parameter_counts_of_the_paper_geometry() {
    let imex = ParamCounts::of(&model_spec("arch = \"imex\""));
    let resnet = ParamCounts::of(&model_spec("arch = \"resnet\""));
    assert_eq!(
        (resnet.paper_counting, imex.paper_counting),
        (2_691_648, 2_701_440)
    );
    assert_eq!((resnet.total, imex.total), (2_692_672, 2_704_768));
    assert_eq!(
        (imex.kernels, imex.operator, imex.classifier),
        (2_691_648, 12_096, 1_024)
    );
}

/// The whole network, loss and gradients against the peer reference, with
/// the comparison `imex-run check` runs on a device (`src/check.rs`), here
/// from the fixture file rather than the copy embedded in the binary.
fn check_against_peer(arch: Arch) {
    let name = if arch == Arch::Imex { "imex" } else { "resnet" };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/peer_{name}.safetensors"));
    let (fixture, _) = read_safetensors(&path).unwrap();
    assert_eq!(
        fixture,
        peer_fixture(arch).unwrap(),
        "embedded fixture is stale"
    );
    let rows = compare_with_peer::<AD>(arch, &fixture, &Default::default(), false).unwrap();
    for row in &rows {
        assert_eq!(row.verdict, Verdict::Pass, "{name}: {row:?}");
    }
    let count = |q: &str| {
        rows.iter()
            .find(|r| r.quantity == q)
            .map_or(0, |r| r.tensors)
    };
    // 4 layers: K everywhere, L on the two same-width layers of IMEX; W; x.
    assert_eq!(count("grad K"), 4);
    assert_eq!(count("grad L"), if arch == Arch::Imex { 2 } else { 0 });
    assert_eq!((count("grad W"), count("grad x")), (1, 1));
    // The state after each of the 4 layers, not only the last.
    assert_eq!(count("layer states"), 4);
    assert_eq!(rows.len(), if arch == Arch::Imex { 8 } else { 7 });
}

/// The step comparison run on the CPU compares `Autodiff<Flex>` with itself:
/// it shows that a training step is deterministic and that the comparison
/// reports exactly zero then (and says so in its rows), not that the step is
/// right, which the peer fixtures above check.
#[test]
fn the_step_comparison_on_one_backend_is_deterministic() {
    let input = StepInput::random(2, 12, 5);
    for arch in [Arch::Imex, Arch::Resnet] {
        let rows = compare_step_with_cpu::<AD>(
            arch,
            "narrow",
            &[4, 8],
            &input,
            1,
            &Default::default(),
            false,
        );
        assert!(
            rows.iter()
                .all(|r| r.verdict == Verdict::Pass && r.error == 0.0),
            "{rows:?}"
        );
        assert!(
            rows.iter().all(|r| r.check.contains("determinism only")),
            "{rows:?}"
        );
    }
}

/// A perturbed result is caught: NaN and an O(1) error fail, float32 noise passes.
#[test]
fn check_rows_judge_errors() {
    let b = vec![1.0, -2.0, 0.5];
    assert_eq!(rel_err(&b, &b), 0.0);
    assert!(rel_err(&[1.0, f64::NAN, 0.5], &b).is_nan());
    let noisy: Vec<f64> = b.iter().map(|v| v * (1.0 + 1e-7)).collect();
    assert!(rel_err(&noisy, &b) < 1e-6);
    assert!((rel_err(&[1.0, -1.0, 0.5], &b) - 0.5).abs() < 1e-12);
}

#[test]
fn imex_network_matches_peer_reference() {
    check_against_peer(Arch::Imex);
}

#[test]
fn resnet_network_matches_peer_reference() {
    check_against_peer(Arch::Resnet);
}
