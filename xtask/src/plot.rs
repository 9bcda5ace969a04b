//! `cargo xtask plot`: line charts of `metrics.jsonl` keys as self-contained SVG (no plotting dependency).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// One series: `(step, value)` points of `key`.
fn series(lines: &str, key: &str) -> Vec<(f64, f64)> {
    lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v.get("step")?.as_f64()?, v.get(key)?.as_f64()?)))
        .collect()
}

const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

/// Renders one chart with every key on a shared step axis (each key min-max scaled to its own range is
/// misleading, so all share one y-axis).
pub fn render(title: &str, data: &[(String, Vec<(f64, f64)>)]) -> Result<String> {
    let all: Vec<(f64, f64)> = data.iter().flat_map(|(_, s)| s.iter().copied()).collect();
    if all.is_empty() {
        bail!("no data points for {}", data.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", "));
    }
    let (w, h, ml, mr, mt, mb) = (640.0, 360.0, 60.0, 150.0, 40.0, 45.0);
    let xmin = all.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let xmax = all.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max).max(xmin + 1.0);
    let mut ymin = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let mut ymax = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if (ymax - ymin).abs() < 1e-12 {
        ymin -= 0.5;
        ymax += 0.5;
    }
    let pad = (ymax - ymin) * 0.05;
    let (ymin, ymax) = (ymin - pad, ymax + pad);
    let x = |v: f64| ml + (v - xmin) / (xmax - xmin) * (w - ml - mr);
    let y = |v: f64| h - mb - (v - ymin) / (ymax - ymin) * (h - mt - mb);
    let mut s = String::new();
    writeln!(s, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#)?;
    writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#)?;
    writeln!(s, r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{title}</text>"#, (w - mr + ml) / 2.0)?;
    for i in 0..=5 {
        let v = ymin + (ymax - ymin) * f64::from(i) / 5.0;
        let yy = y(v);
        writeln!(s, r##"<line x1="{ml}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/>"##, w - mr)?;
        writeln!(s, r#"<text x="{}" y="{:.1}" text-anchor="end">{v:.3}</text>"#, ml - 6.0, yy + 4.0)?;
    }
    for i in 0..=5 {
        let v = xmin + (xmax - xmin) * f64::from(i) / 5.0;
        writeln!(s, r#"<text x="{:.1}" y="{}" text-anchor="middle">{v:.0}</text>"#, x(v), h - mb + 18.0)?;
    }
    writeln!(s, r#"<text x="{}" y="{}" text-anchor="middle">step</text>"#, (w - mr + ml) / 2.0, h - 8.0)?;
    for (i, (key, pts)) in data.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts.iter().map(|(a, b)| format!("{:.1},{:.1}", x(*a), y(*b))).collect();
        writeln!(s, r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#, path.join(" "))?;
        for (a, b) in pts {
            writeln!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{c}"/>"#, x(*a), y(*b))?;
        }
        let ly = mt + 18.0 * i as f64;
        writeln!(s, r#"<rect x="{}" y="{}" width="12" height="3" fill="{c}"/>"#, w - mr + 10.0, ly)?;
        writeln!(s, r#"<text x="{}" y="{}">{key}</text>"#, w - mr + 28.0, ly + 5.0)?;
    }
    writeln!(s, "</svg>")?;
    Ok(s)
}

/// `cargo xtask plot METRICS.jsonl --keys a,b --title T --out FILE.svg`.
pub fn run(args: &[String]) -> Result<()> {
    let get = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let file = args.first().filter(|a| !a.starts_with("--")).context("usage: cargo xtask plot METRICS.jsonl --keys a,b --out FILE.svg [--title T]")?;
    let keys = get("--keys").context("--keys a,b")?;
    let out = get("--out").context("--out FILE.svg")?;
    let title = get("--title").unwrap_or_else(|| file.clone());
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let data: Vec<(String, Vec<(f64, f64)>)> = keys.split(',').map(|k| (k.to_string(), series(&text, k))).collect();
    for (k, s) in &data {
        if s.is_empty() {
            bail!("{file}: no `{k}` values");
        }
    }
    let svg = render(&title, &data)?;
    if let Some(parent) = Path::new(&out).parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, svg).with_context(|| format!("writing {out}"))?;
    println!("wrote {out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_every_point_of_every_series() {
        let lines = "{\"step\":1,\"reward\":0.1}\n{\"step\":2,\"reward\":0.3}\n{\"step\":2,\"eval/accuracy\":0.5}\n";
        let data = vec![
            ("reward".to_string(), super::series(lines, "reward")),
            ("eval/accuracy".to_string(), super::series(lines, "eval/accuracy")),
        ];
        assert_eq!(data[0].1, vec![(1.0, 0.1), (2.0, 0.3)]);
        let svg = super::render("t", &data).expect("svg");
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("eval/accuracy") && svg.starts_with("<svg"));
    }
}
