//! Running an operation over numeric feature columns block by block, on every core.
//!
//! Scoring several columns needs them as row-major rows. Building the whole matrix first, on one
//! thread, then scoring it cost as much as the scoring (1 M rows × 64 columns: 256 MB written, then read
//! again). Here each thread transposes one block of rows into a small reused buffer and scores it while
//! it is still in cache. The blocks are the core's ([`autoenc::blocks::in_blocks`]: cut at multiples of
//! [`CHUNK_ROWS`] from row 0), so every number is bit-identical to scoring the whole matrix, whatever
//! the thread count.

use std::cell::RefCell;

use autoenc::blocks::{CHUNK_ROWS, in_blocks};
use ndarray::ArrayView2;
use polars::prelude::*;

use crate::features::DenseColumns;

thread_local! {
    /// One block of rows (at most `CHUNK_ROWS × width` values), reused by the thread's next block.
    static BLOCK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `work` on every block of `columns`' rows, in row order, on up to `threads` threads.
pub fn blocked<T: Send>(
    columns: &DenseColumns<'_>,
    threads: usize,
    work: impl Fn(ArrayView2<f32>) -> PolarsResult<T> + Sync,
) -> PolarsResult<Vec<T>> {
    let (rows, width) = (columns.rows(), columns.width());
    let run = |at: usize| {
        BLOCK.with(|cell| {
            let mut buffer = cell.borrow_mut();
            let n = CHUNK_ROWS.min(rows - at);
            buffer.resize(n * width, 0.0);
            columns.gather(at, &mut buffer[..n * width]);
            let block = ArrayView2::from_shape((n, width), &buffer[..n * width])
                .map_err(|e| polars_err!(ComputeError: "feature block: {e}"))?;
            work(block)
        })
    };
    in_blocks(rows, threads, run)
        .ok_or_else(|| polars_err!(ComputeError: "a scoring thread panicked"))?
        .into_iter()
        .collect()
}
