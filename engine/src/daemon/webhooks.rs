//! Webhooks: when a run ends `succeeded` or `failed`, each of its pipeline's `notify` URLs that
//! asked for that outcome is POSTed a JSON summary of the run. Every delivery is a background
//! task of its own, retried with exponential backoff on connection errors, timeouts, 5xx, 408
//! and 429; a dead or slow receiver delays nothing but its own deliveries. The outcome of each
//! delivery is an event of the run (`webhook.delivered` or `webhook.failed`).
//!
//! A delivery is kept in the store (table `webhooks`) from the moment its run is created until it
//! is over, with the attempts begun and the time the next may begin, written before each attempt:
//! a daemon that stops or is killed goes on with it when it starts again, with the next attempt
//! number and the same backoff, and never makes one attempt twice.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dsl::model::Notify;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio_util::task::TaskTracker;

use crate::lifecycle::Event;
use crate::store::{now_ms, DeliveryRecord, RunRecord, RunStatus, Store, StoreError, TaskStatus};

/// How deliveries are attempted.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Attempts per delivery, the first included.
    pub attempts: u32,
    /// The wait before the first retry; doubled before each next one, up to a minute.
    pub backoff: Duration,
    /// How long one attempt may take, from connecting to the end of the response.
    pub timeout: Duration,
    /// The daemon's address as receivers reach it, for the links in the body.
    pub base_url: String,
}

impl Default for WebhookSettings {
    fn default() -> WebhookSettings {
        WebhookSettings {
            attempts: 6,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            base_url: "http://127.0.0.1:7878".to_string(),
        }
    }
}

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A delivery's key in the store: (run, the hook's place among the pipeline's `notify` lines).
type Key = (u64, u32);

/// Delivers the daemon's webhooks.
pub struct Webhooks {
    client: HttpsClient,
    settings: WebhookSettings,
    store: Arc<Store>,
    deliveries: TaskTracker,
    /// The deliveries a task is on: a run's end and the look at start-up never both take one.
    taken: Mutex<HashSet<Key>>,
}

impl Webhooks {
    pub fn new(store: Arc<Store>, settings: WebhookSettings) -> Webhooks {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_native_roots() {
            Ok(builder) => builder,
            Err(error) => {
                tracing::warn!(%error, "no CA certificates found: https:// webhooks will fail");
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(empty_tls_config())
            }
        };
        let connector = builder.https_or_http().enable_http1().build();
        Webhooks {
            client: Client::builder(TokioExecutor::new()).build(connector),
            settings,
            store,
            deliveries: TaskTracker::new(),
            taken: Mutex::default(),
        }
    }

    /// Keeps the deliveries `run` may owe the receivers in `hooks`, before it executes: a daemon
    /// killed once the run has ended still makes them when it starts again.
    pub fn expect(&self, hooks: &[Notify], run: u64) -> Result<(), StoreError> {
        if hooks.is_empty() {
            return Ok(());
        }
        self.store.write(|tx| {
            for (hook, notify) in (0..).zip(hooks) {
                let delivery = DeliveryRecord {
                    url: notify.url.clone(),
                    on_success: notify.on_success,
                    on_failure: notify.on_failure,
                    attempts: 0,
                    next_ms: 0,
                    last_problem: None,
                };
                tx.put_delivery((run, hook), &delivery)?;
            }
            Ok(())
        })
    }

    /// Tells the receivers that `run` ended, in the background: those that asked for its outcome
    /// are sent it; a cancelled or interrupted run is told to none.
    pub fn run_ended(self: &Arc<Self>, run: u64) {
        self.settle(Some(run));
    }

    /// At start-up: goes on with the deliveries of the runs that ended, from where they were.
    pub fn resume(self: &Arc<Self>) {
        self.settle(None);
    }

    /// Starts the deliveries owed by the ended runs among `run` (every run if `None`) that no
    /// task is on yet, and forgets those their run's outcome does not call for.
    fn settle(self: &Arc<Self>, run: Option<u64>) {
        let this = self.clone();
        self.deliveries.spawn(async move {
            let store = this.store.clone();
            let base = this.settings.base_url.clone();
            let owed = tokio::task::spawn_blocking(move || owed(&store, run, &base)).await;
            let owed = match owed {
                Ok(Ok(owed)) => owed,
                Ok(Err(error)) => {
                    tracing::error!(run, %error, "cannot read the run for its webhooks");
                    return;
                }
                Err(_) => return,
            };
            for (key, delivery, body) in owed {
                if !this.taken.lock().expect("webhooks lock").insert(key) {
                    continue;
                }
                let this = this.clone();
                this.deliveries.clone().spawn(async move {
                    this.deliver(key, delivery, body).await;
                    this.taken.lock().expect("webhooks lock").remove(&key);
                });
            }
        });
    }

    /// POSTs `body` to the delivery's URL until it is taken or the attempts run out, keeping
    /// the delivery's progress in the store; records the outcome.
    async fn deliver(&self, key: Key, mut delivery: DeliveryRecord, body: Bytes) {
        let (run, _) = key;
        // Webhook URLs often carry a secret in their path or query: logs and events name the
        // receiver by its scheme and host only.
        let shown = shown(&delivery.url);
        let url = shown.as_str();
        let attempts = self.settings.attempts.max(1);
        while delivery.attempts < attempts {
            let wait = delivery.next_ms.saturating_sub(now_ms());
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            delivery.attempts += 1;
            let attempt = delivery.attempts;
            let backoff = backoff(self.settings.backoff, attempt);
            delivery.next_ms = now_ms() + backoff.as_millis() as u64;
            // Kept before the attempt: an attempt cut short is not made again.
            if !self.keep(key, &delivery).await {
                return;
            }
            let problem = match self.post(&delivery.url, key, attempt, body.clone()).await {
                Ok(status) if status.is_success() => {
                    tracing::info!(
                        run,
                        url,
                        attempt,
                        status = status.as_u16(),
                        "webhook delivered"
                    );
                    let detail = format!("{url}: HTTP {status}, attempt {attempt}");
                    self.finish(key, Event::WebhookDelivered { detail }).await;
                    return;
                }
                Ok(status) => {
                    let retryable = status.is_server_error()
                        || status == StatusCode::REQUEST_TIMEOUT
                        || status == StatusCode::TOO_MANY_REQUESTS;
                    if !retryable {
                        delivery.last_problem = Some(format!("HTTP {status}"));
                        break;
                    }
                    format!("HTTP {status}")
                }
                Err(problem) => problem,
            };
            delivery.last_problem = Some(problem.clone());
            if attempt < attempts {
                tracing::warn!(run, url, attempt, %problem, retry_in_ms = backoff.as_millis() as u64, "webhook not delivered; retrying");
                if !self.keep(key, &delivery).await {
                    return;
                }
            }
        }
        let problem = delivery
            .last_problem
            .unwrap_or_else(|| "the daemon stopped during the last attempt".to_string());
        tracing::error!(run, url, %problem, "webhook not delivered; giving up");
        let detail = format!("{url}: {problem}");
        self.finish(key, Event::WebhookFailed { detail }).await;
    }

    /// Writes the delivery's progress; whether it was written (the delivery stops if not).
    async fn keep(&self, key: Key, delivery: &DeliveryRecord) -> bool {
        let store = self.store.clone();
        let delivery = delivery.clone();
        let kept =
            tokio::task::spawn_blocking(move || store.write(|tx| tx.put_delivery(key, &delivery)))
                .await;
        match kept {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::error!(run = key.0, %error, "cannot keep the webhook's progress; it stops");
                false
            }
            Err(_) => false,
        }
    }

    /// Forgets the delivery and records its outcome, in one transaction.
    async fn finish(&self, key: Key, event: Event) {
        let store = self.store.clone();
        let finished = tokio::task::spawn_blocking(move || {
            store.write(|tx| {
                tx.remove_delivery(key)?;
                tx.note(Some(key.0), &event)
            })
        })
        .await;
        if let Ok(Err(error)) = finished {
            tracing::error!(run = key.0, %error, "cannot record the webhook's outcome");
        }
    }

    /// One attempt: the response's status, or what went wrong.
    async fn post(
        &self,
        url: &str,
        (run, hook): Key,
        attempt: u32,
        body: Bytes,
    ) -> Result<StatusCode, String> {
        let request = Request::post(url)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            // What a receiver needs to take each delivery once: the same delivery keeps its id
            // through retries and restarts, and each attempt has a number of its own.
            .header("x-engine-delivery", format!("{run}-{hook}"))
            .header("x-engine-attempt", attempt.to_string())
            .header(
                hyper::header::USER_AGENT,
                concat!("engine/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .map_err(|error| format!("bad request: {error}"))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|error| {
                let mut text = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    text = format!("{text}: {cause}");
                    source = cause.source();
                }
                text
            })?;
            let status = response.status();
            // Read the body so the connection can be reused; its content does not matter.
            let _ = response.into_body().collect().await;
            Ok(status)
        };
        tokio::time::timeout(self.settings.timeout, exchange)
            .await
            .map_err(|_| format!("no response within {:?}", self.settings.timeout))?
    }

    /// Waits up to `limit` for the deliveries under way (at shutdown).
    pub async fn wait(&self, limit: Duration) {
        self.deliveries.close();
        if tokio::time::timeout(limit, self.deliveries.wait())
            .await
            .is_err()
        {
            tracing::warn!("stopping with webhooks undelivered");
        }
    }
}

/// The deliveries owed by the ended runs among `run` (every run if `None`), with the body each
/// is sent; deliveries the run's outcome does not call for, or whose run is gone, are forgotten.
fn owed(
    store: &Store,
    run: Option<u64>,
    base_url: &str,
) -> Result<Vec<(Key, DeliveryRecord, Bytes)>, StoreError> {
    let mut by_run: BTreeMap<u64, Vec<(Key, DeliveryRecord)>> = BTreeMap::new();
    for (key, delivery) in store.deliveries(run)? {
        by_run.entry(key.0).or_default().push((key, delivery));
    }
    let mut owed = Vec::new();
    for (run, deliveries) in by_run {
        let record = match store.run(run) {
            Ok(record) => Some(record),
            Err(StoreError::NoRun(_)) => None,
            Err(error) => return Err(error),
        };
        // A run still going (one the API started while the daemon started) is told at its end.
        if record.as_ref().is_some_and(|r| !r.status.is_finished()) {
            continue;
        }
        let body = match &record {
            Some(record) => Bytes::from(summary(store, record, base_url)?.to_string()),
            None => Bytes::new(),
        };
        let status = record.map(|r| r.status);
        let mut unwanted = Vec::new();
        for (key, delivery) in deliveries {
            let wanted = match status {
                Some(RunStatus::Succeeded) => delivery.on_success,
                Some(RunStatus::Failed) => delivery.on_failure,
                _ => false,
            };
            if wanted {
                owed.push((key, delivery, body.clone()));
            } else {
                unwanted.push(key);
            }
        }
        if !unwanted.is_empty() {
            store.write(|tx| unwanted.iter().try_for_each(|&key| tx.remove_delivery(key)))?;
        }
    }
    Ok(owed)
}

/// The wait after attempt `attempt` failed: `first`, doubled after each attempt, up to a minute.
fn backoff(first: Duration, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    first
        .checked_mul(2u32.pow(doublings))
        .map_or(MAX_BACKOFF, |wait| wait.min(MAX_BACKOFF))
}

/// The body a run's webhooks are sent.
fn summary(store: &Store, record: &RunRecord, base_url: &str) -> Result<Value, StoreError> {
    let run = record.id;
    let base = base_url.trim_end_matches('/');
    let mut failed = Vec::new();
    for task in store.tasks_of(run)? {
        if task.status != TaskStatus::Failed {
            continue;
        }
        let last = store
            .attempts_of(task.id)?
            .into_iter()
            .max_by_key(|a| a.number);
        failed.push(json!({
            "task": task.id,
            "step": task.step,
            "group": task.group,
            "attempts": task.attempts,
            "exit_code": last.as_ref().and_then(|a| a.exit_code),
            "error": last.as_ref().and_then(|a| a.error.clone()),
            "logs": format!("{base}/runs/{run}/tasks/{}/logs", task.id),
        }));
    }
    let body = json!({
        "pipeline": record.pipeline,
        "run": record.id,
        "status": record.status.as_str(),
        "trigger": record.trigger,
        "created_ms": record.created_ms,
        "finished_ms": record.finished_ms,
        "failed_tasks": failed,
        "link": format!("{base}/runs/{run}"),
    });
    Ok(body)
}

/// `url` without what may be secret: its user, path and query (`https://hooks.example.org/…`).
fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let more = if end < rest.len() && &rest[end..] != "/" {
        "/…"
    } else {
        ""
    };
    format!("{scheme}://{host}{more}")
}

/// A TLS configuration that trusts nobody: https:// deliveries fail, and say why.
fn empty_tls_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{backoff, shown};

    #[test]
    fn the_backoff_doubles_after_each_attempt_up_to_a_minute() {
        let waits: Vec<u64> = (1..=8)
            .map(|attempt| backoff(Duration::from_secs(1), attempt).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(Duration::MAX, 3), Duration::from_secs(60));
        assert_eq!(
            backoff(Duration::from_secs(1), u32::MAX),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn logs_name_the_receiver_without_its_secrets() {
        assert_eq!(
            shown("https://hooks.example.org/services/T0/B0/s3cr3t"),
            "https://hooks.example.org/…"
        );
        assert_eq!(
            shown("http://user:pw@10.0.0.1:9000?token=x"),
            "http://10.0.0.1:9000/…"
        );
        assert_eq!(shown("http://127.0.0.1:9000/"), "http://127.0.0.1:9000");
        assert_eq!(shown("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
    }
}
