//! `/metrics`: the gateway's counters and the machine's state in the
//! Prometheus text exposition format (version 0.0.4), written by hand: it
//! is a few lines of text, and no metrics crate is in the dependency tree.
//! Counters are kept per endpoint, model and status; latencies as a
//! histogram per endpoint and model. Model labels come only from requests
//! that reached a model (a caller cannot mint series by sending made-up
//! names), and the series are capped all the same.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

/// Upper bounds of the latency histogram's buckets, in seconds: from a
/// cached short answer to a long generation.
const BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Most distinct label sets kept; later ones are counted as model "other".
const MAX_SERIES: usize = 1000;

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (count, bound) in self.counts.iter_mut().zip(BUCKETS) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Series {
    /// (endpoint, model, status) → requests.
    requests: BTreeMap<(String, String, u16), u64>,
    /// (endpoint, model) → latency.
    latency: BTreeMap<(String, String), Histogram>,
    /// (model, "in" | "out") → tokens.
    tokens: BTreeMap<(String, &'static str), u64>,
}

/// The gateway's own metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<Series>,
    /// Requests being served now.
    pub in_flight: AtomicUsize,
}

/// One finished request, as the metrics see it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// `POST /api/chat`.
    pub endpoint: &'a str,
    /// The model's public name, "" when it never reached one.
    pub model: &'a str,
    /// HTTP status.
    pub status: u16,
    /// How long it took.
    pub duration: Duration,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Generated tokens.
    pub tokens_out: u64,
}

impl Metrics {
    /// Count a finished request.
    pub fn observe(&self, o: Observation<'_>) {
        let mut series = omnipanel_core::sync::lock(&self.series);
        let model = if series.latency.len() >= MAX_SERIES
            && !series
                .latency
                .contains_key(&(o.endpoint.to_owned(), o.model.to_owned()))
        {
            "other"
        } else {
            o.model
        };
        *series
            .requests
            .entry((o.endpoint.to_owned(), model.to_owned(), o.status))
            .or_default() += 1;
        series
            .latency
            .entry((o.endpoint.to_owned(), model.to_owned()))
            .or_default()
            .observe(o.duration.as_secs_f64());
        if o.tokens_in > 0 {
            *series.tokens.entry((model.to_owned(), "in")).or_default() += o.tokens_in;
        }
        if o.tokens_out > 0 {
            *series.tokens.entry((model.to_owned(), "out")).or_default() += o.tokens_out;
        }
    }

    /// The gateway's series in the text format.
    pub fn write(&self, out: &mut String, waiting: usize) {
        let series = omnipanel_core::sync::lock(&self.series);
        header(
            out,
            "omnipanel_gateway_requests_total",
            "counter",
            "Gateway requests by endpoint, model and HTTP status.",
        );
        for ((endpoint, model, status), count) in &series.requests {
            let _ = writeln!(
                out,
                "omnipanel_gateway_requests_total{{endpoint=\"{}\",model=\"{}\",status=\"{status}\"}} {count}",
                escape(endpoint),
                escape(model)
            );
        }
        header(
            out,
            "omnipanel_gateway_request_duration_seconds",
            "histogram",
            "Gateway request latency, to the end of the reply.",
        );
        for ((endpoint, model), histogram) in &series.latency {
            let labels = format!(
                "endpoint=\"{}\",model=\"{}\"",
                escape(endpoint),
                escape(model)
            );
            for (bound, count) in BUCKETS.iter().zip(&histogram.counts) {
                let _ = writeln!(
                    out,
                    "omnipanel_gateway_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "omnipanel_gateway_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "omnipanel_gateway_request_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "omnipanel_gateway_request_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }
        header(
            out,
            "omnipanel_gateway_tokens_total",
            "counter",
            "Tokens through the gateway by model and direction (in: prompt, out: generated).",
        );
        for ((model, direction), count) in &series.tokens {
            let _ = writeln!(
                out,
                "omnipanel_gateway_tokens_total{{model=\"{}\",direction=\"{direction}\"}} {count}",
                escape(model)
            );
        }
        drop(series);
        gauge(
            out,
            "omnipanel_gateway_requests_in_flight",
            "Gateway requests being served.",
            self.in_flight.load(Ordering::Acquire) as f64,
        );
        gauge(
            out,
            "omnipanel_gateway_requests_waiting",
            "Gateway requests waiting for Ollama to start or a model to load.",
            waiting as f64,
        );
    }
}

/// `# HELP` and `# TYPE` lines.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A gauge without labels.
pub fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A label value as the format wants it: backslash, quote and newline
/// escaped.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_with_a_histogram_of_their_latency() {
        let metrics = Metrics::default();
        for status in [200, 200, 404] {
            metrics.observe(Observation {
                endpoint: "POST /api/chat",
                model: "llama3.2:latest",
                status,
                duration: Duration::from_millis(300),
                tokens_in: 5,
                tokens_out: 7,
            });
        }
        let mut out = String::new();
        metrics.write(&mut out, 2);
        assert!(out.contains(
            "omnipanel_gateway_requests_total{endpoint=\"POST /api/chat\",model=\"llama3.2:latest\",status=\"200\"} 2\n"
        ), "{out}");
        assert!(out.contains("le=\"0.25\"} 0\n"), "{out}");
        assert!(out.contains("le=\"0.5\"} 3\n"), "{out}");
        assert!(out.contains("le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("direction=\"out\"} 21\n"), "{out}");
        assert!(
            out.contains("omnipanel_gateway_requests_waiting 2\n"),
            "{out}"
        );
        assert!(out.contains("# TYPE omnipanel_gateway_request_duration_seconds histogram\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
