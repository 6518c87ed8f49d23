//! The service's metrics, in Prometheus' text exposition format.
//!
//! A handful of counters and histograms with small, closed label sets:
//! route templates (never raw paths), status codes, platform names, sync
//! outcomes. Nothing that names a tenant, a project, a key or a repository,
//! so cardinality stays bounded whatever the traffic. Written here rather
//! than pulled in: the whole of it is a few maps behind a mutex.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sigsentry_ports::{SyncOutcome, Telemetry};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A histogram of durations.
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations at or below each bucket bound (not cumulative here).
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// What a store's connection pool looks like now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolGauge {
    /// Connections open.
    pub size: usize,
    /// Of those, idle.
    pub available: usize,
    /// The most it may open.
    pub max: usize,
}

/// Reads a pool's state at scrape time.
type PoolReader = Box<dyn Fn() -> PoolGauge + Send + Sync>;

#[derive(Debug, Default)]
struct Registry {
    /// (method, route template, status) -> latency.
    requests: BTreeMap<(String, String, u16), Histogram>,
    /// outcome -> duration.
    sync_jobs: BTreeMap<&'static str, Histogram>,
    /// (platform, status) -> latency; status 0 when no answer came.
    platform_calls: BTreeMap<(&'static str, u16), Histogram>,
    /// platform -> (waits, seconds waited).
    rate_limit_waits: BTreeMap<&'static str, (u64, f64)>,
}

/// The metrics of one process. Cheap to clone: clones share one registry.
#[derive(Clone, Default)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    pool: Arc<Mutex<Option<PoolReader>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the pool's state at each scrape from `gauge`.
    pub fn watch_pool(&self, gauge: impl Fn() -> PoolGauge + Send + Sync + 'static) {
        *self.pool.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(gauge));
    }

    /// One HTTP request: `route` is the matched template (`/v1/config/repos/{id}`),
    /// `unmatched` for an unknown path.
    pub fn http_request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        registry
            .requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default()
            .observe(latency.as_secs_f64());
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        out.push_str(
            "# HELP sigsentry_http_request_duration_seconds HTTP requests by method, route template and status.\n",
        );
        out.push_str("# TYPE sigsentry_http_request_duration_seconds histogram\n");
        for ((method, route, status), histogram) in &registry.requests {
            let labels = format!("method=\"{method}\",route=\"{}\",status=\"{status}\"", escape(route));
            histogram.render(&mut out, "sigsentry_http_request_duration_seconds", &labels);
        }
        out.push_str("# HELP sigsentry_sync_job_duration_seconds Repository syncs by outcome.\n");
        out.push_str("# TYPE sigsentry_sync_job_duration_seconds histogram\n");
        for (outcome, histogram) in &registry.sync_jobs {
            histogram.render(&mut out, "sigsentry_sync_job_duration_seconds", &format!("outcome=\"{outcome}\""));
        }
        out.push_str("# HELP sigsentry_platform_request_duration_seconds Calls to the platforms by platform and status (0: no answer).\n");
        out.push_str("# TYPE sigsentry_platform_request_duration_seconds histogram\n");
        for ((platform, status), histogram) in &registry.platform_calls {
            let labels = format!("platform=\"{platform}\",status=\"{status}\"");
            histogram.render(&mut out, "sigsentry_platform_request_duration_seconds", &labels);
        }
        out.push_str("# HELP sigsentry_platform_rate_limit_waits_total Syncs put off by a platform's rate limit.\n");
        out.push_str("# TYPE sigsentry_platform_rate_limit_waits_total counter\n");
        out.push_str(
            "# HELP sigsentry_platform_rate_limit_wait_seconds_total Time syncs were put off by rate limits.\n",
        );
        out.push_str("# TYPE sigsentry_platform_rate_limit_wait_seconds_total counter\n");
        for (platform, (waits, seconds)) in &registry.rate_limit_waits {
            let _ = writeln!(out, "sigsentry_platform_rate_limit_waits_total{{platform=\"{platform}\"}} {waits}");
            let _ =
                writeln!(out, "sigsentry_platform_rate_limit_wait_seconds_total{{platform=\"{platform}\"}} {seconds}");
        }
        drop(registry);
        if let Some(gauge) = self.pool.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            let pool = gauge();
            out.push_str("# HELP sigsentry_db_pool_connections Database connections by state.\n");
            out.push_str("# TYPE sigsentry_db_pool_connections gauge\n");
            let _ = writeln!(out, "sigsentry_db_pool_connections{{state=\"open\"}} {}", pool.size);
            let _ = writeln!(out, "sigsentry_db_pool_connections{{state=\"idle\"}} {}", pool.available);
            let _ = writeln!(out, "sigsentry_db_pool_connections{{state=\"max\"}} {}", pool.max);
        }
        out
    }
}

impl Telemetry for Metrics {
    fn sync_job(&self, outcome: SyncOutcome, duration: Duration) {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        registry.sync_jobs.entry(outcome.as_str()).or_default().observe(duration.as_secs_f64());
    }

    fn platform_call(&self, platform: &'static str, status: Option<u16>, latency: Duration) {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        registry.platform_calls.entry((platform, status.unwrap_or(0))).or_default().observe(latency.as_secs_f64());
    }

    fn rate_limit_wait(&self, platform: &'static str, wait: Duration) {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = registry.rate_limit_waits.entry(platform).or_default();
        entry.0 += 1;
        entry.1 += wait.as_secs_f64();
    }
}

/// A label value in the exposition format.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets_with_closed_labels() {
        let metrics = Metrics::new();
        metrics.http_request("GET", "/v1/config/repos/{id}", 200, Duration::from_millis(3));
        metrics.http_request("GET", "/v1/config/repos/{id}", 200, Duration::from_millis(30));
        metrics.sync_job(SyncOutcome::Ready, Duration::from_secs(2));
        metrics.platform_call("GitHub", Some(200), Duration::from_millis(80));
        metrics.platform_call("GitHub", None, Duration::from_secs(10));
        metrics.rate_limit_wait("GitLab", Duration::from_secs(60));
        metrics.watch_pool(|| PoolGauge { size: 3, available: 2, max: 8 });
        let text = metrics.render();
        let route = r#"method="GET",route="/v1/config/repos/{id}",status="200""#;
        assert!(
            text.contains(&format!("sigsentry_http_request_duration_seconds_bucket{{{route},le=\"0.005\"}} 1")),
            "{text}"
        );
        assert!(text.contains(&format!("sigsentry_http_request_duration_seconds_bucket{{{route},le=\"0.05\"}} 2")));
        assert!(text.contains(&format!("sigsentry_http_request_duration_seconds_count{{{route}}} 2")));
        assert!(text.contains(r#"sigsentry_sync_job_duration_seconds_count{outcome="ready"} 1"#));
        assert!(text.contains(r#"sigsentry_platform_request_duration_seconds_count{platform="GitHub",status="0"} 1"#));
        assert!(text.contains(r#"sigsentry_platform_rate_limit_wait_seconds_total{platform="GitLab"} 60"#));
        assert!(text.contains(r#"sigsentry_db_pool_connections{state="idle"} 2"#));
    }
}
