//! How results are shown: the latency table, the JSON record of a run and the SVG plot of
//! latency distributions.

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::client_load::Outcome;

/// One labelled result, as it appears in a table, a JSON file and a plot.
pub struct Row<'a> {
    pub label: String,
    pub outcome: &'a Outcome,
    pub loadavg: f64,
}

pub fn table_header() -> String {
    format!(
        "{:<22} {:>10} {:>7} {:>7} {:>7} {:>8} {:>8} {:>10} {:>10} {:>6}  errors",
        "workload",
        "req/s",
        "p50 us",
        "p90 us",
        "p99 us",
        "p99.9 us",
        "max us",
        "client CPU",
        "server CPU",
        "load"
    )
}

fn pct(cpu: Option<f64>, o: &Outcome) -> String {
    cpu.map_or("-".into(), |c| {
        format!("{:.0}%", 100.0 * c / o.elapsed.as_secs_f64())
    })
}

pub fn table_row(r: &Row) -> String {
    let o = r.outcome;
    let h = &o.latency_us;
    let errors = if o.errors.is_empty() {
        "0".to_string()
    } else {
        o.errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{:<22} {:>10.0} {:>7} {:>7} {:>7} {:>8} {:>8} {:>10} {:>10} {:>6.2}  {}",
        r.label,
        o.qps(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
        pct(Some(o.client_cpu), o),
        pct(o.server_cpu, o),
        r.loadavg,
        errors
    )
}

pub fn json_row(r: &Row) -> Value {
    let o = r.outcome;
    let h = &o.latency_us;
    let secs = o.elapsed.as_secs_f64();
    json!({
        "label": r.label,
        "secs": secs,
        "requests": o.requests,
        "qps": o.qps().round(),
        "latency_us": {
            "p50": h.value_at_quantile(0.5), "p90": h.value_at_quantile(0.9),
            "p99": h.value_at_quantile(0.99), "p999": h.value_at_quantile(0.999),
            "max": h.max(), "mean": h.mean(),
        },
        "errors": o.errors,
        "client_cpu_util": o.client_cpu / secs,
        "client_idle_polling_s": o.client_polled,
        "client_req_per_cpu_s": (o.client_cpu > 0.0).then(|| (o.requests as f64 / o.client_cpu).round()),
        "server_cpu_util": o.server_cpu.map(|c| c / secs),
        "server_req_per_cpu_s": o.server_cpu.filter(|c| *c > 0.0).map(|c| (o.requests as f64 / c).round()),
        "loadavg": r.loadavg,
    })
}

const COLOURS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// A latency-by-percentile plot (x: percentile on a "nines" scale, y: microseconds, log scale),
/// one line per histogram, as a standalone SVG document.
pub fn svg(title: &str, lines: &[(String, &Histogram<u64>)]) -> String {
    let (w, h) = (900.0, 520.0);
    let (left, right, top, bottom) = (70.0, 220.0, 40.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let max_nines = 5.0; // up to p99.999
    let max_us = lines
        .iter()
        .map(|(_, h)| h.max())
        .max()
        .unwrap_or(1)
        .max(10) as f64;
    let min_us = lines.iter().map(|(_, h)| h.min()).min().unwrap_or(1).max(1) as f64;
    let (ly0, ly1) = (min_us.log10().floor(), max_us.log10().ceil());
    let x = |nines: f64| left + pw * nines / max_nines;
    let y = |us: f64| top + ph * (1.0 - (us.max(1.0).log10() - ly0) / (ly1 - ly0).max(1.0));
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" font-size=\"16\" text-anchor=\"middle\">{}</text>\n",
        left + pw / 2.0,
        escape(title)
    );
    for (i, label) in ["p0", "p90", "p99", "p99.9", "p99.99", "p99.999"]
        .iter()
        .enumerate()
    {
        let xi = x(i as f64);
        s += &format!(
            "<line x1=\"{xi:.1}\" y1=\"{top}\" x2=\"{xi:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{xi:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>\n",
            top + ph,
            top + ph + 18.0
        );
    }
    let mut e = ly0;
    while e <= ly1 {
        let us = 10f64.powf(e);
        let yi = y(us);
        s += &format!(
            "<line x1=\"{left}\" y1=\"{yi:.1}\" x2=\"{:.1}\" y2=\"{yi:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            left + pw,
            left - 6.0,
            yi + 4.0,
            if us >= 1000.0 {
                format!("{} ms", us / 1000.0)
            } else {
                format!("{us} us")
            }
        );
        e += 1.0;
    }
    s += &format!(
        "<rect x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"black\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">percentile</text>\n",
        left + pw / 2.0,
        h - 10.0
    );
    for (i, (label, hist)) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points = Vec::new();
        let mut nines = 0.0;
        while nines <= max_nines + 1e-9 {
            let q = 1.0 - 10f64.powf(-nines);
            if !hist.is_empty() {
                let v = hist.value_at_quantile(q.min(1.0)) as f64;
                points.push(format!("{:.1},{:.1}", x(nines), y(v)));
            }
            nines += 0.05;
        }
        s += &format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n\
             <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"3\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            points.join(" "),
            left + pw + 12.0,
            top + 10.0 + 20.0 * i as f64,
            left + pw + 32.0,
            top + 10.0 + 20.0 * i as f64,
            left + pw + 38.0,
            top + 14.0 + 20.0 * i as f64,
            escape(label)
        );
    }
    s + "</svg>\n"
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
