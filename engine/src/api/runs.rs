//! `GET /runs` (the history, filtered and paged, newest first) and `GET /runs/{id}` (a run with
//! its tasks and their attempts, as `engine show RUN --json` prints it).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use strum::VariantNames;

use super::error::ApiError;
use super::request::{QueryParams, RunId};
use super::response::{json, Response};
use super::state::ApiState;
use crate::inspect::run_detail;
use crate::store::{RunRecord, RunStatus};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

/// Which runs a listing wants.
#[derive(Debug, Default, PartialEq)]
struct Filter {
    pipeline: Option<String>,
    /// Any of these statuses (`status=failed,cancelled`); all when empty.
    statuses: Vec<RunStatus>,
    /// The run's trigger (`manual`, `cron`, `rerun of 3`, ...).
    label: Option<String>,
    /// Created at or after (ms since the epoch).
    since: Option<u64>,
    /// Created before (ms since the epoch).
    until: Option<u64>,
}

/// Which page of the matching runs.
#[derive(Debug, PartialEq)]
struct Page {
    limit: usize,
    offset: usize,
    /// A cursor: only runs with a smaller id (the `next_before` of the previous page).
    before: Option<u64>,
}

#[derive(Serialize)]
struct Listing {
    runs: Vec<RunRecord>,
    /// How many runs match the filters, on every page.
    total: usize,
    limit: usize,
    offset: usize,
    /// Pass as `before` for the next page; `null` on the last.
    next_before: Option<u64>,
}

pub async fn list(
    State(state): State<Arc<ApiState>>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let filter = filter(&query)?;
    let page = page(&query)?;
    if filter == Filter::default() && page.before.is_none() {
        // The plain newest-first page: read only that page (and one more, to know whether
        // another page follows), not the whole history.
        let (offset, limit) = (page.offset, page.limit);
        let (total, mut runs) = state
            .blocking(move |state| Ok(state.store.newest_runs(offset, limit + 1)?))
            .await?;
        let next_before = (runs.len() > limit).then(|| runs[limit - 1].id);
        runs.truncate(limit);
        return Ok(json(
            StatusCode::OK,
            &Listing {
                runs,
                total,
                limit,
                offset,
                next_before,
            },
        ));
    }
    // A pipeline's runs come from its index; other filters read the whole history.
    let pipeline = filter.pipeline.clone();
    let runs = state
        .blocking(move |state| {
            Ok(match pipeline {
                Some(name) => state.store.runs_of(&name, None, usize::MAX)?,
                None => state.store.runs()?,
            })
        })
        .await?;
    Ok(json(StatusCode::OK, &listing(runs, &filter, &page)))
}

pub async fn get(
    State(state): State<Arc<ApiState>>,
    RunId(id): RunId,
) -> Result<Response, ApiError> {
    let detail = state
        .blocking(move |state| Ok(run_detail(&state.store, id)?))
        .await?;
    Ok(json(StatusCode::OK, &detail))
}

fn filter(query: &QueryParams) -> Result<Filter, ApiError> {
    let mut statuses = Vec::new();
    for name in query.get("status").unwrap_or("").split(',') {
        if name.is_empty() {
            continue;
        }
        let status = name.parse::<RunStatus>().map_err(|_| {
            ApiError::BadRequest(format!(
                "query parameter `status`: no status `{name}` (one of {})",
                RunStatus::VARIANTS.join(", ")
            ))
        })?;
        statuses.push(status);
    }
    Ok(Filter {
        pipeline: query.get("pipeline").map(str::to_string),
        statuses,
        label: query.get("label").map(str::to_string),
        since: query.int64("since")?,
        until: query.int64("until")?,
    })
}

fn page(query: &QueryParams) -> Result<Page, ApiError> {
    let limit = query.number("limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "query parameter `limit`: {limit} is not between 1 and {MAX_LIMIT}"
        )));
    }
    Ok(Page {
        limit,
        offset: query.int64("offset")?.map_or(0, |offset| offset as usize),
        before: query.int64("before")?,
    })
}

/// The page of `runs` (newest first) that match `filter`.
fn listing(runs: Vec<RunRecord>, filter: &Filter, page: &Page) -> Listing {
    let matching: Vec<RunRecord> = runs.into_iter().filter(|r| filter.accepts(r)).collect();
    let total = matching.len();
    let mut rest = matching
        .into_iter()
        .filter(|r| page.before.is_none_or(|before| r.id < before))
        .skip(page.offset);
    let runs: Vec<RunRecord> = rest.by_ref().take(page.limit).collect();
    let next_before = match rest.next() {
        Some(_) => runs.last().map(|r| r.id),
        None => None,
    };
    Listing {
        runs,
        total,
        limit: page.limit,
        offset: page.offset,
        next_before,
    }
}

impl Filter {
    fn accepts(&self, run: &RunRecord) -> bool {
        self.pipeline.as_ref().is_none_or(|p| &run.pipeline == p)
            && (self.statuses.is_empty() || self.statuses.contains(&run.status))
            && self.label.as_ref().is_none_or(|l| &run.trigger == l)
            && self.since.is_none_or(|since| run.created_ms >= since)
            && self.until.is_none_or(|until| run.created_ms < until)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn run(id: u64, pipeline: &str, status: RunStatus, trigger: &str) -> RunRecord {
        RunRecord {
            id,
            pipeline: pipeline.into(),
            file: "/w/p.pipe".into(),
            trigger: trigger.into(),
            params: BTreeMap::new(),
            definition_hash: String::new(),
            status,
            created_ms: id * 1000,
            finished_ms: None,
            owner_pid: None,
            cancel_requested: false,
            parent: None,
        }
    }

    fn history() -> Vec<RunRecord> {
        (1..=10)
            .rev()
            .map(|id| {
                let status = if id % 2 == 0 {
                    RunStatus::Failed
                } else {
                    RunStatus::Succeeded
                };
                let pipeline = if id <= 5 { "a" } else { "b" };
                run(
                    id,
                    pipeline,
                    status,
                    if id == 7 { "cron" } else { "manual" },
                )
            })
            .collect()
    }

    /// The query of `/runs?TEXT`.
    fn query_of(text: &str) -> QueryParams {
        QueryParams::from_uri(&format!("/runs?{text}").parse().unwrap()).unwrap()
    }

    fn ids(listing: &Listing) -> Vec<u64> {
        listing.runs.iter().map(|r| r.id).collect()
    }

    #[test]
    fn filters_combine_and_total_counts_every_page() {
        let query = query_of("pipeline=b&status=succeeded,failed&limit=2");
        let listing = listing(history(), &filter(&query).unwrap(), &page(&query).unwrap());
        assert_eq!(ids(&listing), [10, 9]);
        assert_eq!((listing.total, listing.next_before), (5, Some(9)));
        let query = query_of("label=cron");
        let listing = listing_of(&query);
        assert_eq!(ids(&listing), [7]);
        let query = query_of("since=3000&until=5000&status=failed");
        assert_eq!(ids(&listing_of(&query)), [4]);
    }

    fn listing_of(query: &QueryParams) -> Listing {
        listing(history(), &filter(query).unwrap(), &page(query).unwrap())
    }

    #[test]
    fn pages_by_offset_or_by_cursor() {
        let first = listing_of(&query_of("limit=4"));
        assert_eq!(ids(&first), [10, 9, 8, 7]);
        assert_eq!(first.next_before, Some(7));
        let second = listing_of(&query_of("limit=4&before=7"));
        assert_eq!(ids(&second), [6, 5, 4, 3]);
        let by_offset = listing_of(&query_of("limit=4&offset=4"));
        assert_eq!(ids(&by_offset), ids(&second));
        let last = listing_of(&query_of("limit=4&before=3"));
        assert_eq!((ids(&last), last.next_before), (vec![2, 1], None));
        assert_eq!(last.total, 10);
    }

    #[test]
    fn bad_filters_and_limits_are_400() {
        for text in [
            "status=done",
            "limit=0",
            "limit=501",
            "since=yesterday",
            "offset=-1",
        ] {
            let query = query_of(text);
            let error = filter(&query).and_then(|_| page(&query)).unwrap_err();
            assert_eq!(error.status().as_u16(), 400, "{error}");
        }
        let error = filter(&query_of("status=done")).unwrap_err();
        assert!(
            error.to_string().contains("one of queued, running"),
            "{error}"
        );
        assert_eq!(page(&query_of("")).unwrap().limit, DEFAULT_LIMIT);
    }
}
