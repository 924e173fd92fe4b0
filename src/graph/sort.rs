//! Builders for sorting and permutations of u32 rows: `argsort`, `inverse_permutation` and
//! `gather_rows` (one op family, `Op::Sort`). Reformer's LSH attention sorts the positions of
//! each head by bucket, gathers the vectors into that order and scatters the results back.
//!
//! Rows are the last dimension: keys [N] are one row, [B, N] are B independent rows.
//!
//! ```
//! use webformer::{DType, Graph};
//! let mut g = Graph::new();
//! let keys = g.input("keys", &[8, 1000], DType::U32).unwrap();   // 8 rows of 1000 keys
//! let perm = g.argsort(keys).unwrap();                            // u32 [8, 1000]
//! let back = g.inverse_permutation(perm).unwrap();                // un-sorts
//! let x = g.input("x", &[8, 1000, 64], DType::F32).unwrap();
//! let sorted = g.gather_rows(x, perm).unwrap();                   // [8, 1000, 64]
//! assert_eq!(g.node(back).shape, vec![8, 1000]);
//! assert_eq!(g.node(sorted).shape, vec![8, 1000, 64]);
//! ```

use serde::Serialize;

use super::{shape_err, Graph, NodeId, NodeKind, Op};
use crate::error::{Error, Result};
use crate::tensor::DType;

/// The ops of the sort family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum SortOp {
    /// Stable argsort of each row of u32 keys by their low `key_bits` bits (1..=32), ascending.
    Argsort { key_bits: u8 },
    /// The inverse of each row's permutation.
    Inverse,
    /// Rows of x [B, N, D] picked by u32 indices [B, M].
    Gather,
}

impl SortOp {
    /// The op's name in dumps and timing tables.
    pub fn name(&self) -> &'static str {
        match self {
            SortOp::Argsort { .. } => "argsort",
            SortOp::Inverse => "inverse_permutation",
            SortOp::Gather => "gather_rows",
        }
    }
}

impl Graph {
    /// The stable ascending argsort of each row of u32 keys [..., N] -> u32 [..., N]:
    /// `perm[b][i]` is the column of the i-th smallest key of row b, equal keys in ascending
    /// column order, so the result is fully determined. Rows are independent.
    ///
    /// On the GPU this is a radix sort of several passes over scratch buffers (see
    /// `kernels::sort`); `argsort_bits` skips the passes over high bits known to be zero.
    ///
    /// ```
    /// use webformer::{DType, Graph};
    /// let mut g = Graph::new();
    /// let keys = g.input("keys", &[2, 5], DType::U32).unwrap();
    /// let perm = g.argsort(keys).unwrap();
    /// g.output(perm).unwrap();
    /// // keys [[3, 1, 3, 0, 2], [9, 9, 9, 9, 9]] sort to [[3, 1, 4, 0, 2], [0, 1, 2, 3, 4]].
    /// let mut cpu = webformer::CpuExecutor::new(&g);
    /// cpu.set_input("keys", &webformer::HostData::U32(vec![3, 1, 3, 0, 2, 9, 9, 9, 9, 9])).unwrap();
    /// cpu.run().unwrap();
    /// assert_eq!(cpu.value(perm).unwrap(), &webformer::HostData::U32(vec![3, 1, 4, 0, 2, 0, 1, 2, 3, 4]));
    /// ```
    pub fn argsort(&mut self, keys: NodeId) -> Result<NodeId> {
        self.argsort_bits(keys, 32)
    }

    /// `argsort` of keys known to be below 2^`key_bits` (1..=32): the order is by the low
    /// `key_bits` bits of each key (higher bits are ignored, not an error), and the GPU runs
    /// ceil(key_bits / 4) radix passes instead of 8. Reformer's keys bucket·(rounds·L) +
    /// round·L + position need about log2(buckets · rounds · L) bits.
    pub fn argsort_bits(&mut self, keys: NodeId, key_bits: u32) -> Result<NodeId> {
        let name = "argsort";
        if !(1..=32).contains(&key_bits) {
            return Err(shape_err(name, format!("key_bits must be in 1..=32, got {key_bits}")));
        }
        let shape = self.u32_rows(name, keys, "keys")?;
        let op = Op::Sort(SortOp::Argsort { key_bits: key_bits as u8 });
        Ok(self.push(NodeKind::Op(op), vec![keys], shape, DType::U32))
    }

    /// The inverse of each row's permutation, u32 [..., N] -> u32 [..., N]:
    /// `inv[b][perm[b][i]] = i`, so gathering by `perm` and then by `inv` restores the order.
    /// For rows that are not permutations the result is still defined: `inv[b][j]` is the
    /// smallest i with `perm[b][i] == j`, or N when no entry names j (entries >= N name
    /// nothing).
    pub fn inverse_permutation(&mut self, perm: NodeId) -> Result<NodeId> {
        let shape = self.u32_rows("inverse_permutation", perm, "perm")?;
        Ok(self.push(NodeKind::Op(Op::Sort(SortOp::Inverse)), vec![perm], shape, DType::U32))
    }

    /// Rows of x picked per batch: x f32 [B, N, D], idx u32 [B, M] -> [B, M, D] with
    /// `out[b, m, :] = x[b, idx[b, m], :]`; x [N, D] with idx [M] is the batch of one. An
    /// index of N or more gives a row of zeros (the GPU cannot report it, so it is defined
    /// rather than an error).
    pub fn gather_rows(&mut self, x: NodeId, idx: NodeId) -> Result<NodeId> {
        let name = "gather_rows";
        let sx = self.f32_input(name, x)?.shape.clone();
        let si = self.u32_rows(name, idx, "idx")?;
        let batched = sx.len() == 3 && si.len() == 2 && sx[0] == si[0];
        if !(batched || sx.len() == 2 && si.len() == 1) {
            return Err(shape_err(
                name,
                format!("needs x [B, N, D] with idx [B, M] (or x [N, D] with idx [M]), got {sx:?} and {si:?}"),
            ));
        }
        let mut out = si;
        out.push(sx[sx.len() - 1]);
        Ok(self.push(NodeKind::Op(Op::Sort(SortOp::Gather)), vec![x, idx], out, DType::F32))
    }

    /// The shape of a u32 node of rows ([N] or [B, N]), or an error naming what is wrong.
    fn u32_rows(&self, op: &str, id: NodeId, what: &str) -> Result<Vec<usize>> {
        let n = self.get(op, id)?;
        if n.dtype != DType::U32 {
            return Err(Error::DType {
                what: format!("{op}: {what} #{} ({})", id.0, n.label()),
                expected: "u32".into(),
                got: n.dtype.to_string(),
            });
        }
        if n.shape.len() > 2 {
            return Err(shape_err(op, format!("{what} must be rows [N] or [B, N], got {:?}", n.shape)));
        }
        Ok(n.shape.clone())
    }
}
