//! The soak's results: one row per checked behaviour (what was expected,
//! written before the run; what was observed, in figures; whether it held),
//! the samples behind them, and the machine and build they come from. The
//! same report is printed as Markdown rows for docs/QUALITY.md and written
//! as JSON.

use std::{path::Path, time::SystemTime};

use omnipanel_tests::{TestResult, measure::machine};
use serde_json::{Value, json};

/// One checked behaviour.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub expected: String,
    pub observed: String,
    pub passed: bool,
}

/// Everything one `soak` run found.
#[derive(Debug)]
pub struct Report {
    kind: String,
    minutes: u64,
    started: SystemTime,
    rows: Vec<Row>,
    samples: serde_json::Map<String, Value>,
}

impl Report {
    pub fn new(kind: &str, minutes: u64) -> Self {
        Self {
            kind: kind.to_owned(),
            minutes,
            started: SystemTime::now(),
            rows: Vec::new(),
            samples: serde_json::Map::new(),
        }
    }

    /// Say what a scenario expects before it runs, so a run that dies in
    /// the middle still shows what it was checking.
    pub fn expect(&self, scenario: &str, expected: &str) {
        eprintln!("[soak] {scenario}: expecting {expected}");
    }

    /// Record a checked behaviour.
    pub fn row(&mut self, scenario: &str, expected: &str, observed: String, passed: bool) {
        eprintln!(
            "[soak] {scenario}: {} — {observed}",
            if passed { "PASS" } else { "FAIL" }
        );
        self.rows.push(Row {
            scenario: scenario.to_owned(),
            expected: expected.to_owned(),
            observed,
            passed,
        });
    }

    /// Keep the raw figures behind the rows (per-minute samples...).
    pub fn samples(&mut self, name: &str, value: Value) {
        self.samples.insert(name.to_owned(), value);
    }

    pub fn all_passed(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|row| row.passed)
    }

    fn date(&self) -> String {
        let secs = self
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        omnipanel_client::display::timestamp(ms)
    }

    /// The heading line and the table rows.
    pub fn markdown(&self) -> String {
        let mut text = format!(
            "\n{} — {} ({}, {} min)\n\n| scenario | expected | observed | result |\n|---|---|---|---|\n",
            self.date(),
            machine(),
            self.kind,
            self.minutes
        );
        for row in &self.rows {
            text.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                row.scenario,
                row.expected,
                row.observed,
                if row.passed { "pass" } else { "**FAIL**" }
            ));
        }
        text
    }

    pub fn write_json(&self, path: &Path) -> TestResult {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                json!({
                    "scenario": row.scenario,
                    "expected": row.expected,
                    "observed": row.observed,
                    "passed": row.passed,
                })
            })
            .collect();
        let value = json!({
            "kind": self.kind,
            "minutes": self.minutes,
            "date": self.date(),
            "machine": machine(),
            "passed": self.all_passed(),
            "rows": rows,
            "samples": self.samples,
        });
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&value)?)?;
        Ok(())
    }
}
