//! Running an operation over numeric feature columns block by block, on every core.
//!
//! Scoring several columns needs them as row-major rows. Building the whole matrix first, on one
//! thread, then scoring it cost as much as the scoring (1 M rows × 64 columns: 256 MB written, then read
//! again). Here each thread transposes one block of rows into a small reused buffer and scores it while
//! it is still in cache. Blocks are cut where the core cuts them ([`autoenc::CHUNK_ROWS`], from row 0),
//! so every number is bit-identical to scoring the whole matrix, whatever the thread count.

use autoenc::CHUNK_ROWS;
use ndarray::ArrayView2;
use polars::prelude::*;

use crate::features::DenseColumns;

/// `work` on every block of `columns`' rows, in row order, on up to `threads` threads.
pub fn blocked<T: Send>(
    columns: &DenseColumns<'_>,
    threads: usize,
    work: impl Fn(ArrayView2<f32>) -> PolarsResult<T> + Sync,
) -> PolarsResult<Vec<T>> {
    let (rows, width) = (columns.rows(), columns.width());
    let starts: Vec<usize> = (0..rows).step_by(CHUNK_ROWS).collect();
    let run = |buffer: &mut Vec<f32>, at: usize| {
        let n = CHUNK_ROWS.min(rows - at);
        buffer.resize(n * width, 0.0);
        columns.gather(at, &mut buffer[..n * width]);
        let block = ArrayView2::from_shape((n, width), &buffer[..n * width])
            .map_err(|e| polars_err!(ComputeError: "feature block: {e}"))?;
        work(block)
    };
    let threads = threads.clamp(1, starts.len().max(1));
    if threads == 1 {
        let mut buffer = Vec::new();
        return starts.iter().map(|&at| run(&mut buffer, at)).collect();
    }
    // Thread t takes blocks t, t + threads, ...; the results are put back in row order.
    let mut results: Vec<Option<PolarsResult<T>>> = (0..starts.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (starts, run) = (&starts, &run);
                scope.spawn(move || {
                    let mut buffer = Vec::new();
                    starts
                        .iter()
                        .enumerate()
                        .skip(t)
                        .step_by(threads)
                        .map(|(i, &at)| (i, run(&mut buffer, at)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(done) => done.into_iter().for_each(|(i, r)| results[i] = Some(r)),
                Err(_) => results.push(Some(Err(polars_err!(ComputeError: "a scoring thread panicked")))),
            }
        }
    });
    results.into_iter().map(|r| r.unwrap_or_else(|| Err(polars_err!(ComputeError: "a block was not scored")))).collect()
}
