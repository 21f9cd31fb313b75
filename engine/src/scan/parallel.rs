//! A small work pool on scoped threads: maps a slice in parallel, each thread pulling the next
//! index from a shared counter (so a few slow jobs do not hold up a fixed share of the others),
//! and stopping early after an error.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Applies `f` to every element of `jobs` on up to `threads` threads and returns the results in
/// the order of `jobs`, or an error one of the calls returned (the one with the lowest index among
/// those that ran; after a failure, threads stop taking new jobs). Each thread gets its own scratch
/// value from `init` (a read buffer, say). With one thread or one job, everything runs on the
/// caller's thread.
pub(crate) fn try_map<T, R, E, S>(
    jobs: &[T],
    threads: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let threads = threads.clamp(1, jobs.len().max(1));
    if threads == 1 {
        let mut scratch = init();
        return jobs.iter().map(|job| f(&mut scratch, job)).collect();
    }
    let next = AtomicUsize::new(0);
    // Set by the first failing job; other threads check it before taking another job.
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<(usize, E)>> = Mutex::new(None);
    let done: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut scratch = init();
                    let mut out = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(index) else { break };
                        match f(&mut scratch, job) {
                            Ok(result) => out.push((index, result)),
                            Err(error) => {
                                failed.store(true, Ordering::Relaxed);
                                let mut slot = first_error
                                    .lock()
                                    .unwrap_or_else(|poison| poison.into_inner());
                                if slot.as_ref().is_none_or(|(at, _)| index < *at) {
                                    *slot = Some((index, error));
                                }
                                break;
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let first_error = first_error
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner());
    if let Some((_, error)) = first_error {
        return Err(error);
    }
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(jobs.len()).collect();
    for (index, result) in done.into_iter().flatten() {
        slots[index] = Some(result);
    }
    // Without an error every index was taken exactly once, so every slot is filled.
    Ok(slots.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_order_of_the_jobs() {
        let jobs: Vec<u32> = (0..1000).collect();
        for threads in [0, 1, 2, 8] {
            let out: Result<Vec<u32>, ()> = try_map(&jobs, threads, || (), |_, n| Ok(n * 2));
            assert_eq!(out.unwrap(), jobs.iter().map(|n| n * 2).collect::<Vec<_>>());
        }
    }

    #[test]
    fn reports_an_error() {
        let jobs: Vec<u32> = (0..1000).collect();
        let out = try_map(
            &jobs,
            4,
            || (),
            |_, n| if *n == 500 { Err(*n) } else { Ok(*n) },
        );
        assert_eq!(out, Err(500));
    }

    #[test]
    fn empty_is_empty() {
        let out: Result<Vec<u32>, ()> = try_map(&[] as &[u32], 4, || (), |_, n| Ok(*n));
        assert!(out.unwrap().is_empty());
    }
}
