//! Webhooks: when a run ends `succeeded` or `failed`, each of its pipeline's `notify` URLs that
//! asked for that outcome is POSTed a JSON summary of the run. Every delivery is a background
//! task of its own, retried with exponential backoff on connection errors, timeouts, 5xx, 408
//! and 429; a dead or slow receiver delays nothing but its own deliveries. The outcome of each
//! delivery is an event of the run (`webhook.delivered` or `webhook.failed`).

use std::sync::Arc;
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
use crate::store::{RunStatus, Store, TaskStatus};

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

/// Delivers the daemon's webhooks.
pub struct Webhooks {
    client: HttpsClient,
    settings: WebhookSettings,
    store: Arc<Store>,
    deliveries: TaskTracker,
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
        }
    }

    /// Tells the receivers in `hooks` that `run` ended, in the background. Runs that were
    /// cancelled are told to none.
    pub fn run_ended(self: &Arc<Self>, hooks: &[Notify], run: u64) {
        if hooks.is_empty() {
            return;
        }
        let this = self.clone();
        let hooks = hooks.to_vec();
        self.deliveries.spawn(async move {
            let store = this.store.clone();
            let base = this.settings.base_url.clone();
            let summary = tokio::task::spawn_blocking(move || summary(&store, run, &base)).await;
            let (status, body) = match summary {
                Ok(Ok(summary)) => summary,
                Ok(Err(error)) => {
                    tracing::error!(run, %error, "cannot read the run for its webhooks");
                    return;
                }
                Err(_) => return,
            };
            let body = Bytes::from(body.to_string());
            for hook in hooks {
                let wanted = match status {
                    RunStatus::Succeeded => hook.on_success,
                    RunStatus::Failed => hook.on_failure,
                    _ => false,
                };
                if wanted {
                    let this = this.clone();
                    let body = body.clone();
                    this.deliveries
                        .clone()
                        .spawn(async move { this.deliver(&hook.url, body, run).await });
                }
            }
        });
    }

    /// POSTs `body` to `url` until it is taken or the attempts run out; records the outcome.
    async fn deliver(&self, target: &str, body: Bytes, run: u64) {
        // Webhook URLs often carry a secret in their path or query: logs and events name the
        // receiver by its scheme and host only.
        let shown = shown(target);
        let url = shown.as_str();
        let mut backoff = self.settings.backoff;
        let attempts = self.settings.attempts.max(1);
        let mut last_problem = String::new();
        for attempt in 1..=attempts {
            match self.post(target, body.clone()).await {
                Ok(status) if status.is_success() => {
                    tracing::info!(
                        run,
                        url,
                        attempt,
                        status = status.as_u16(),
                        "webhook delivered"
                    );
                    self.record(
                        run,
                        Event::WebhookDelivered {
                            detail: format!("{url}: HTTP {status}, attempt {attempt}"),
                        },
                    );
                    return;
                }
                Ok(status) => {
                    last_problem = format!("HTTP {status}");
                    let retryable = status.is_server_error()
                        || status == StatusCode::REQUEST_TIMEOUT
                        || status == StatusCode::TOO_MANY_REQUESTS;
                    if !retryable {
                        break;
                    }
                }
                Err(problem) => last_problem = problem,
            }
            if attempt < attempts {
                tracing::warn!(run, url, attempt, problem = %last_problem, retry_in_ms = backoff.as_millis() as u64, "webhook not delivered; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        tracing::error!(run, url, problem = %last_problem, "webhook not delivered; giving up");
        self.record(
            run,
            Event::WebhookFailed {
                detail: format!("{url}: {last_problem}"),
            },
        );
    }

    /// One attempt: the response's status, or what went wrong.
    async fn post(&self, url: &str, body: Bytes) -> Result<StatusCode, String> {
        let request = Request::post(url)
            .header(hyper::header::CONTENT_TYPE, "application/json")
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

    fn record(&self, run: u64, event: Event) {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(error) = store.write(|tx| tx.note(Some(run), &event)) {
                tracing::error!(run, %error, "cannot record the webhook's outcome");
            }
        });
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

/// The run's outcome and the body its webhooks are sent.
fn summary(store: &Store, run: u64, base_url: &str) -> Result<(RunStatus, Value), String> {
    let record = store.run(run).map_err(|e| e.to_string())?;
    let base = base_url.trim_end_matches('/');
    let mut failed = Vec::new();
    for task in store.tasks_of(run).map_err(|e| e.to_string())? {
        if task.status != TaskStatus::Failed {
            continue;
        }
        let last = store
            .attempts_of(task.id)
            .map_err(|e| e.to_string())?
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
    Ok((record.status, body))
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
    use super::shown;

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
