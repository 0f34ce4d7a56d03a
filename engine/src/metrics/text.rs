//! Prometheus' text exposition format (version 0.0.4), written by hand: a few families of
//! counters, gauges and histograms need nothing more.

use std::fmt::Write;

use super::histogram::Histogram;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Metric names are written with the prefix given to `new` (`prefix_name`).
pub struct Exposition {
    prefix: &'static str,
    out: String,
}

impl Exposition {
    pub fn new(prefix: &'static str) -> Self {
        Self { prefix, out: String::new() }
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. Its samples must follow.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let prefix = self.prefix;
        let _ = writeln!(self.out, "# HELP {prefix}_{name} {}", help.replace('\\', r"\\").replace('\n', r"\n"));
        let _ = writeln!(self.out, "# TYPE {prefix}_{name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.out, "{}_{name}", self.prefix);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// A whole family with one label: a sample per `(label value, value)`.
    pub fn by_label<'a>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        label: &str,
        samples: impl IntoIterator<Item = (&'a str, f64)>,
    ) {
        self.family(name, kind, help);
        for (value_of_label, value) in samples {
            self.sample(name, &[(label, value_of_label)], value);
        }
    }

    /// A histogram's `_bucket`, `_sum` and `_count` samples.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        for (bound, n) in h.cumulative() {
            let _ = write!(self.out, "{}_{name}_bucket", self.prefix);
            self.labels(labels, Some(bound));
            let _ = writeln!(self.out, " {n}");
        }
        self.sample(&format!("{name}_sum"), labels, h.sum());
        self.sample(&format!("{name}_count"), labels, h.count() as f64);
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<f64>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        for (i, (name, value)) in labels.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{name}=\"{}\"", escape(value));
        }
        if let Some(le) = le {
            if !labels.is_empty() {
                self.out.push(',');
            }
            let _ = write!(self.out, "le=\"{}\"", number(le));
        }
        self.out.push('}');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value as the format quotes it.
fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

fn number(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escaping() {
        let mut e = Exposition::new("f");
        e.family("x_total", "counter", "Things.\nMore");
        e.sample("x_total", &[("a", "q\"b\\c\nd"), ("s", "200")], 3.0);
        e.sample("y", &[], 0.25);
        let mut h = Histogram::new(&[0.5]);
        h.observe(0.2);
        e.histogram("h_seconds", &[("p", "openai")], &h);
        e.by_label("g", "gauge", "G.", "k", [("a", 1.0), ("b", 2.0)]);
        assert_eq!(
            e.finish(),
            "# HELP f_x_total Things.\\nMore\n# TYPE f_x_total counter\n\
             f_x_total{a=\"q\\\"b\\\\c\\nd\",s=\"200\"} 3\nf_y 0.25\n\
             f_h_seconds_bucket{p=\"openai\",le=\"0.5\"} 1\nf_h_seconds_bucket{p=\"openai\",le=\"+Inf\"} 1\n\
             f_h_seconds_sum{p=\"openai\"} 0.2\nf_h_seconds_count{p=\"openai\"} 1\n\
             # HELP f_g G.\n# TYPE f_g gauge\nf_g{k=\"a\"} 1\nf_g{k=\"b\"} 2\n"
        );
    }
}
