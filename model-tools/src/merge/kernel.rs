//! The arithmetic of a merge: low-rank deltas added to blocks of `f32` rows.
//!
//! Every LoRA delta is written as `coeff · basis`, with `coeff` `[rows, r]` (the scale folded
//! in) and `basis` `[r, cols]`, in the base tensor's own row order, so one loop serves all
//! layouts (PEFT's `LoraLayer.get_delta_weight`, `peft/tuners/lora/layer.py`):
//! - `nn.Linear` (W `[out, in]`): ΔW = s·B·A, so coeff = s·B, basis = A;
//! - fan_in_fan_out Conv1D (W `[in, out]`) and `nn.Embedding` (W `[vocab, hidden]`,
//!   A `[r, vocab]`, B `[hidden, r]`): ΔW = s·(B·A)ᵀ, so coeff = s·Aᵀ, basis = Bᵀ.

/// One adapter's delta for one base tensor.
#[derive(Debug)]
pub(crate) struct LowRank {
    rows: usize,
    cols: usize,
    rank: usize,
    coeff: Vec<f32>,
    basis: Vec<f32>,
}

impl LowRank {
    /// ΔW = scale·B·A for W `[out, in]`; `a` is `[rank, in]`, `b` is `[out, rank]`.
    pub fn linear(a: &[f32], b: &[f32], rank: usize, out: usize, inp: usize, scale: f64) -> Self {
        debug_assert_eq!(a.len(), rank * inp);
        debug_assert_eq!(b.len(), out * rank);
        LowRank {
            rows: out,
            cols: inp,
            rank,
            coeff: b.iter().map(|v| (f64::from(*v) * scale) as f32).collect(),
            basis: a.to_vec(),
        }
    }

    /// ΔW = scale·(B·A)ᵀ for W `[in, out]`; `a` is `[rank, in]`, `b` is `[out, rank]`.
    pub fn transposed(
        a: &[f32],
        b: &[f32],
        rank: usize,
        out: usize,
        inp: usize,
        scale: f64,
    ) -> Self {
        debug_assert_eq!(a.len(), rank * inp);
        debug_assert_eq!(b.len(), out * rank);
        let mut coeff = vec![0f32; inp * rank];
        for k in 0..rank {
            for j in 0..inp {
                coeff[j * rank + k] = (f64::from(a[k * inp + j]) * scale) as f32;
            }
        }
        let mut basis = vec![0f32; rank * out];
        for i in 0..out {
            for k in 0..rank {
                basis[k * out + i] = b[i * rank + k];
            }
        }
        LowRank {
            rows: inp,
            cols: out,
            rank,
            coeff,
            basis,
        }
    }

    /// The `[rows, cols]` shape of the delta.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Adds the delta's rows `first_row..` to `block` (whole rows of `cols` values).
    pub fn add_to_rows(&self, first_row: usize, block: &mut [f32]) {
        let cols = self.cols;
        for (i, row) in block.chunks_exact_mut(cols).enumerate() {
            let coeff = &self.coeff[(first_row + i) * self.rank..][..self.rank];
            let basis = |k: usize| &self.basis[k * cols..][..cols];
            // Four ranks per pass over the row: a quarter of the row loads and stores.
            let mut k = 0;
            while k + 4 <= self.rank {
                let c = [coeff[k], coeff[k + 1], coeff[k + 2], coeff[k + 3]];
                let (m0, m1, m2, m3) = (basis(k), basis(k + 1), basis(k + 2), basis(k + 3));
                for ((((y, a), b), d), e) in row.iter_mut().zip(m0).zip(m1).zip(m2).zip(m3) {
                    *y += c[0] * *a + c[1] * *b + c[2] * *d + c[3] * *e;
                }
                k += 4;
            }
            for (k, c) in coeff.iter().enumerate().skip(k) {
                axpy(*c, basis(k), row);
            }
        }
    }
}

/// `y += a·x`, written so the compiler vectorises it.
#[inline]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * *x;
    }
}

/// How many values in `values` are NaN or infinite.
pub(crate) fn non_finite(values: &[f32]) -> usize {
    values.iter().filter(|v| !v.is_finite()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: dense f64 product.
    fn dense(a: &[f32], b: &[f32], rank: usize, out: usize, inp: usize) -> Vec<f64> {
        let mut d = vec![0f64; out * inp];
        for i in 0..out {
            for j in 0..inp {
                for k in 0..rank {
                    d[i * inp + j] += f64::from(b[i * rank + k]) * f64::from(a[k * inp + j]);
                }
            }
        }
        d
    }

    #[test]
    fn linear_and_transposed_deltas_match_the_dense_product() {
        let (rank, out, inp) = (5, 5, 4); // one four-rank pass and one single-rank pass
        let a: Vec<f32> = (0..rank * inp).map(|i| i as f32 * 0.25 - 1.0).collect();
        let b: Vec<f32> = (0..out * rank).map(|i| 0.5 - i as f32 * 0.125).collect();
        let d = dense(&a, &b, rank, out, inp);

        let lin = LowRank::linear(&a, &b, rank, out, inp, 2.0);
        assert_eq!(lin.shape(), (out, inp));
        let mut rows = vec![1f32; 2 * inp];
        lin.add_to_rows(3, &mut rows);
        for r in 0..2 {
            for j in 0..inp {
                assert_eq!(
                    f64::from(rows[r * inp + j]),
                    1.0 + 2.0 * d[(3 + r) * inp + j]
                );
            }
        }

        let tr = LowRank::transposed(&a, &b, rank, out, inp, 0.5);
        assert_eq!(tr.shape(), (inp, out));
        let mut all = vec![0f32; inp * out];
        tr.add_to_rows(0, &mut all);
        for j in 0..inp {
            for i in 0..out {
                assert_eq!(f64::from(all[j * out + i]), 0.5 * d[i * inp + j]);
            }
        }
        assert_eq!(non_finite(&[1.0, f32::NAN, f32::INFINITY]), 2);
    }
}
