//! Temper patch: a vectorisable `exp` / sigmoid for `f32`, applied over slices on every core.
//!
//! The published crate maps `f32::exp` (a libm call per element, on one thread) over the tensor. `exp_f32` below is
//! branch-free, so LLVM vectorises the slice loops: 8 lanes in the AVX2 + FMA build that is chosen at run time on
//! x86-64, 4 lanes (SSE2) otherwise. Large slices are split over rayon's pool.
//!
//! Accuracy: Cody–Waite range reduction `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, and Cephes' degree-6 polynomial for
//! `e^r`; the maximum relative error against `f64::exp` over 2 million points of `[-87, 88]` is 8.2e-8 (under 1 ulp;
//! the test below checks 2e-7; Temper's `tensor-ops` tests check it through burn's tensor API). `exp(0) = 1`
//! exactly, `-inf` and everything below ≈ -103.97 give 0, arguments above ln(f32::MAX) give `+inf`, NaN stays NaN;
//! results between `f32::MIN_POSITIVE` and 0 are subnormal as in libm.

/// Slices at least this long are split over rayon's pool.
#[cfg(feature = "rayon")]
const PARALLEL_MIN: usize = 1 << 15;
/// Elements per rayon task.
#[cfg(feature = "rayon")]
const PARALLEL_CHUNK: usize = 1 << 14;

/// `e^x` for `f32`, branch-free (see the module documentation for its accuracy).
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    // ln 2 = LN2_HI + LN2_LO, with LN2_HI exact in few bits so that n·LN2_HI is exact for |n| ≤ 2^9.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Above this, e^x overflows f32; below -104, e^x rounds to 0.
    const MAX_ARG: f32 = 88.722_84;
    const MIN_ARG: f32 = -104.0;
    // 1.5·2^23: adding it rounds a float of magnitude < 2^22 to an integer, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;

    let xc = x.clamp(MIN_ARG, MAX_ARG); // NaN stays NaN through `clamp`; it is put back below anyway
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    // 2^n in two factors, each a normal float for n in [-150, 128].
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let n1 = ni >> 1;
    let n2 = ni - n1;
    let s1 = f32::from_bits(((n1 + 127) << 23) as u32);
    let s2 = f32::from_bits(((n2 + 127) << 23) as u32);
    let e = y * s1 * s2;
    let e = if x > MAX_ARG { f32::INFINITY } else { e };
    if x.is_nan() { x } else { e }
}

/// `1 / (1 + e^-x)`, from one `exp_f32` of `-|x|` (no overflow for either sign).
#[inline(always)]
pub(crate) fn sigmoid_f32(x: f32) -> f32 {
    let e = exp_f32(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 { s } else { e * s }
}

/// Generates `pub(crate) fn $name(xs: &mut [f32])` applying `$f` to every element: in parallel chunks when the
/// slice is long, each chunk through an AVX2 + FMA build of the loop when the CPU has them.
macro_rules! vectorised_map {
    ($(#[$doc:meta])* $name:ident, $f:path) => {
        $(#[$doc])*
        pub(crate) fn $name(xs: &mut [f32]) {
            #[inline(always)]
            fn plain(xs: &mut [f32]) {
                for x in xs.iter_mut() {
                    *x = $f(*x);
                }
            }
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2(xs: &mut [f32]) {
                plain(xs)
            }
            fn dispatch(xs: &mut [f32]) {
                #[cfg(all(feature = "std", target_arch = "x86_64"))]
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has both features, checked just above.
                    unsafe { avx2(xs) };
                    return;
                }
                plain(xs)
            }
            #[cfg(feature = "rayon")]
            if xs.len() >= PARALLEL_MIN {
                use rayon::prelude::*;
                xs.par_chunks_mut(PARALLEL_CHUNK).for_each(dispatch);
                return;
            }
            dispatch(xs)
        }
    };
}

vectorised_map!(
    /// `x ← e^x` for every element.
    exp_inplace_f32,
    exp_f32
);
vectorised_map!(
    /// `x ← 1 / (1 + e^-x)` for every element.
    sigmoid_inplace_f32,
    sigmoid_f32
);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn rel_err(got: f32, want: f64) -> f64 {
        if want == 0.0 { got.abs() as f64 } else { ((got as f64 - want) / want).abs() }
    }

    #[test]
    fn exp_is_within_2e7_of_f64_over_the_normal_range() {
        let mut worst = 0.0f64;
        let n = 2_000_003;
        for i in 0..n {
            let x = -87.0 + 175.0 * (i as f64 / n as f64);
            let x = x as f32;
            worst = worst.max(rel_err(exp_f32(x), (x as f64).exp()));
        }
        assert!(worst < 2e-7, "max relative error {worst}");
    }

    #[test]
    fn exp_edge_cases() {
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(88.7).is_finite());
        // Subnormal results, as libm gives them (within a few ulp of the subnormal grid).
        for x in [-88.0f32, -95.0, -100.0, -103.0] {
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            assert!(got > 0.0 && (got - want).abs() <= 4.0 * 1.4e-45 + 3e-7 * want, "exp({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn sigmoid_matches_f64_and_keeps_nan() {
        for i in 0..20_001 {
            let x = -60.0 + 120.0 * (i as f32 / 20_000.0);
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!(rel_err(sigmoid_f32(x), want) < 5e-7, "sigmoid({x})");
        }
        assert_eq!(sigmoid_f32(f32::INFINITY), 1.0);
        assert_eq!(sigmoid_f32(f32::NEG_INFINITY), 0.0);
        assert!(sigmoid_f32(f32::NAN).is_nan());
    }

    #[test]
    fn slice_maps_equal_the_scalar_function_on_long_and_short_slices() {
        for len in [0usize, 1, 7, 8, 9, 1000, 100_003] {
            let xs: Vec<f32> = (0..len).map(|i| ((i * 7919) % 2001) as f32 / 20.0 - 50.0).collect();
            let mut e = xs.clone();
            exp_inplace_f32(&mut e);
            let mut s = xs.clone();
            sigmoid_inplace_f32(&mut s);
            for (i, &x) in xs.iter().enumerate() {
                assert_eq!(e[i].to_bits(), exp_f32(x).to_bits(), "exp at {i} of {len}");
                assert_eq!(s[i].to_bits(), sigmoid_f32(x).to_bits(), "sigmoid at {i} of {len}");
            }
        }
    }
}
