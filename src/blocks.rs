//! Row blocks: where a large input is cut, and how its blocks run on several threads.
//!
//! Every door scores large inputs block by block. Blocks are always cut at the same rows (multiples of
//! [`CHUNK_ROWS`] from the first row), so a row's numbers never depend on how many threads ran or which
//! door called; and scratch memory stays bounded (a few MB) whatever the input size.

/// Inputs are processed in blocks of this many rows.
pub const CHUNK_ROWS: usize = 8192;

/// Runs `work(start)` for the block starting at each multiple of [`CHUNK_ROWS`] below `rows`, on up to
/// `threads` threads (thread t takes blocks t, t + threads, ...), and returns the results in row order.
/// `None` when a worker thread panicked: the caller turns that into its own error. With one thread (or one
/// block) `work` runs on the caller's thread, and a panic there is the caller's, as in any other call.
pub fn in_blocks<T: Send>(rows: usize, threads: usize, work: impl Fn(usize) -> T + Sync) -> Option<Vec<T>> {
    let starts: Vec<usize> = (0..rows).step_by(CHUNK_ROWS).collect();
    let threads = threads.clamp(1, starts.len().max(1));
    if threads == 1 {
        return Some(starts.into_iter().map(work).collect());
    }
    let mut results: Vec<Option<T>> = (0..starts.len()).map(|_| None).collect();
    let mut panicked = false;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (starts, work) = (&starts, &work);
                scope.spawn(move || {
                    starts.iter().enumerate().skip(t).step_by(threads).map(|(i, &at)| (i, work(at))).collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(done) => done.into_iter().for_each(|(i, r)| results[i] = Some(r)),
                Err(_) => panicked = true,
            }
        }
    });
    if panicked { None } else { results.into_iter().collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_come_back_in_row_order_whatever_the_thread_count() {
        let rows = 5 * CHUNK_ROWS + 17;
        for threads in [1, 2, 3, 8] {
            let starts = in_blocks(rows, threads, |at| at).expect("no panic");
            assert_eq!(starts, (0..rows).step_by(CHUNK_ROWS).collect::<Vec<_>>(), "{threads} threads");
        }
        assert_eq!(in_blocks(0, 4, |at| at), Some(vec![]));
    }

    #[test]
    fn a_panicking_block_is_reported_not_propagated() {
        let result = in_blocks(3 * CHUNK_ROWS, 2, |at| if at == CHUNK_ROWS { panic!("boom") } else { at });
        assert!(result.is_none());
    }
}
