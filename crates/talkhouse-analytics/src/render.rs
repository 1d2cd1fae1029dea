//! Rendering the report: terminal table and a self-contained HTML page with inline SVG charts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::{DayCount, Report};

/// Seconds as a short human duration (`45 s`, `3 min 05 s`, `2 h 10 min`).
pub fn human_seconds(s: f64) -> String {
    if !s.is_finite() {
        return "–".into();
    }
    #[allow(clippy::cast_possible_truncation)]
    let total = s.round() as i64;
    match total {
        t if t < 60 => format!("{s:.1} s"),
        t if t < 3600 => format!("{} min {:02} s", t / 60, t % 60),
        t => format!("{} h {:02} min", t / 3600, (t % 3600) / 60),
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |v| format!("{:.1} %", v * 100.0))
}

fn num(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |v| format!("{v:.2}"))
}

fn secs(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), human_seconds)
}

fn join_counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "–".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn join_means(m: &BTreeMap<String, f64>) -> String {
    if m.is_empty() {
        return "–".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v:+.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    /// The report as plain text for a terminal.
    pub fn to_table(&self) -> String {
        let mut o = String::new();
        let since = self
            .since
            .as_deref()
            .map(|s| format!(", since {s}"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "talkhouse report (generated {}{since})",
            self.generated_at
        );
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{:<20} {:>14} {:>12}",
            "source", "conversations", "messages"
        );
        for (source, c) in &self.sources {
            let _ = writeln!(o, "{source:<20} {:>14} {:>12}", c.conversations, c.messages);
        }
        let _ = writeln!(
            o,
            "{:<20} {:>14} {:>12}",
            "total", self.conversations.total, self.messages.total
        );
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Conversations by channel   {}",
            join_counts(&self.conversations.by_channel)
        );
        let _ = writeln!(
            o,
            "Messages by channel        {}",
            join_counts(&self.messages.by_channel)
        );
        let _ = writeln!(
            o,
            "Messages by sender role    {}",
            join_counts(&self.messages.by_role)
        );
        let days: std::collections::BTreeSet<&str> = self
            .conversations
            .by_day
            .iter()
            .map(|d| d.day.as_str())
            .collect();
        if let (Some(first), Some(last)) = (days.first(), days.last()) {
            let _ = writeln!(
                o,
                "Days with conversations    {} ({first} … {last})",
                days.len()
            );
        }
        let pc = &self.messages.per_conversation;
        let _ = writeln!(
            o,
            "Messages per conversation  mean {}  median {}  p90 {}",
            num(pc.mean),
            num(pc.median),
            num(pc.p90)
        );
        let ps = &self.messages.per_session;
        let _ = writeln!(
            o,
            "Messages per chat session  mean {}  median {}  p90 {}  ({} sessions)",
            num(ps.mean),
            num(ps.median),
            num(ps.p90),
            ps.sessions
        );
        let fr = &self.first_response_seconds;
        let _ = writeln!(
            o,
            "First response             median {}  p90 {}  ({} of {} conversations answered)",
            secs(fr.median),
            secs(fr.p90),
            fr.responded,
            fr.conversations
        );
        let _ = writeln!(
            o,
            "First agent response       median {}  p90 {}  ({} conversations)",
            secs(fr.agent_median),
            secs(fr.agent_p90),
            fr.agent_responded
        );
        let s = &self.sentiment;
        let _ = writeln!(
            o,
            "Customer sentiment         mean {}  positive {}  neutral {}  negative {}  ({} scored)",
            s.customer
                .mean
                .map_or_else(|| "–".into(), |v| format!("{v:+.3}")),
            pct(s.customer.positive),
            pct(s.customer.neutral),
            pct(s.customer.negative),
            s.customer.scored
        );
        let _ = writeln!(
            o,
            "  by channel               {}",
            join_means(&s.by_channel)
        );
        let _ = writeln!(o, "  by source                {}", join_means(&s.by_source));
        let e = &self.escalation;
        let _ = writeln!(
            o,
            "Escalation rate            {}   bot handled {}   CSAT responses {}",
            pct(e.escalation_rate),
            pct(e.bot_handled_rate),
            e.csat_responses
        );
        for (source, so) in &e.by_source {
            let _ = writeln!(
                o,
                "  {source:<24} escalated {}  bot handled {}  CSAT {} ({})",
                pct(so.escalation_rate),
                pct(so.bot_handled_rate),
                num(so.csat_mean),
                so.csat_responses
            );
        }
        if self.ada.present {
            let a = &self.ada;
            // Escalation is on the source's line above; Ada adds engagement.
            let _ = writeln!(
                o,
                "Ada                        {} conversations  engaged {} (Ada's definition)",
                a.conversations,
                pct(a.engaged_rate)
            );
        }
        if self.gladly.present {
            self.gladly_lines(&mut o);
        }
        if self.ultimate.present {
            let u = &self.ultimate;
            // Bot handled and escalation are on the source's line above (by Ultimate's own
            // definitions); these are the rest of its "popular metrics".
            let _ = writeln!(
                o,
                "Ultimate                   {} conversations  deflection {} (Ultimate's definitions)",
                u.total_conversations,
                pct(u.deflection_rate)
            );
            let _ = writeln!(
                o,
                "                           failed escalation {}  informed {}  automation {}  understood {}",
                pct(u.failed_escalation_rate),
                pct(u.informed_rate),
                pct(u.automation_rate),
                pct(u.messages_understood_rate)
            );
            for i in u.by_first_meaningful_intent.iter().take(5) {
                let _ = writeln!(
                    o,
                    "  {:<24} {:>6} conversations  bot handled {}",
                    i.intent,
                    i.total_conversations,
                    pct(i.bot_handled_rate)
                );
            }
        }
        let notes = self.notes();
        if !notes.is_empty() {
            let _ = writeln!(o);
            for n in notes {
                let _ = writeln!(o, "Note: {n}");
            }
        }
        o
    }

    /// Gladly's contacts, handle time and agent work, for the table.
    fn gladly_lines(&self, o: &mut String) {
        let g = &self.gladly;
        let h = &g.handle_seconds;
        let _ = writeln!(
            o,
            "Gladly                     {} contacts  handle time median {}  p90 {}  ({} timed; agents' time plus after-contact work)",
            g.contacts,
            secs(h.median),
            secs(h.p90),
            h.contacts
        );
        for (channel, h) in &g.handle_seconds_by_channel {
            let _ = writeln!(
                o,
                "  {channel:<24} handle time median {}  p90 {}  ({} contacts)",
                secs(h.median),
                secs(h.p90),
                h.contacts
            );
        }
        let fr = &g.contact_first_response_seconds;
        let _ = writeln!(
            o,
            "  first response per contact median {}  p90 {}  ({} of {} answered; agents median {})",
            secs(fr.median),
            secs(fr.p90),
            fr.responded,
            fr.contacts,
            secs(fr.agent_median)
        );
        for (label, list) in [("top agents", &g.top_agents), ("top teams", &g.top_teams)] {
            let _ = writeln!(o, "  {label}");
            if list.is_empty() {
                let _ = writeln!(o, "    –");
            }
            for w in list.iter().take(5) {
                let _ = writeln!(
                    o,
                    "    {:<22} {:>6} contacts  handle time median {}",
                    w.name.as_deref().unwrap_or(&w.id),
                    w.contacts,
                    secs(w.handle_seconds_median)
                );
            }
        }
    }

    /// What a reader must know to read the figures right (test traffic left out, days not final
    /// yet), one sentence each; the text and HTML forms show them, JSON carries the fields.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let left_out: u64 = self.test_conversations_left_out.values().sum();
        if left_out > 0 {
            notes.push(format!(
                "{left_out} test conversations are left out of every figure ({}); set `include_test = true` in a source's section to count them",
                join_counts(&self.test_conversations_left_out)
            ));
        }
        if let Some(day) = &self.ultimate.first_incomplete_day {
            notes.push(format!(
                "Ultimate's figures from {day} on are not final ({} days): a day's conversations can end in the next day's export, which has not been read yet",
                self.ultimate.incomplete_days
            ));
        }
        notes
    }

    /// The report as one self-contained HTML page (inline CSS and SVG, no external assets).
    pub fn to_html(&self) -> String {
        let mut body = String::new();
        let fr = &self.first_response_seconds;
        let mut tiles = vec![
            ("Conversations", self.conversations.total.to_string()),
            ("Messages", self.messages.total.to_string()),
            (
                "Msgs / conversation (median)",
                num(self.messages.per_conversation.median),
            ),
            ("First response (median)", secs(fr.median)),
            ("First response (p90)", secs(fr.p90)),
            ("Escalation rate", pct(self.escalation.escalation_rate)),
            (
                "Customer sentiment",
                self.sentiment
                    .customer
                    .mean
                    .map_or_else(|| "–".into(), |v| format!("{v:+.2}")),
            ),
        ];
        if self.gladly.present {
            tiles.push((
                "Handle time (median)",
                secs(self.gladly.handle_seconds.median),
            ));
        }
        for n in self.notes() {
            let _ = write!(body, "<p class=\"note\">{}</p>", esc(&n));
        }
        body.push_str("<div class=\"tiles\">");
        for (label, value) in tiles {
            let _ = write!(
                body,
                "<div class=\"tile\"><div class=\"v\">{}</div><div class=\"l\">{}</div></div>",
                esc(&value),
                esc(label)
            );
        }
        body.push_str("</div>");

        section(
            &mut body,
            "volume",
            "Conversations per day and source",
            &volume_chart(&self.conversations.by_day),
        );
        let bars: Vec<(String, f64, String)> = fr
            .histogram
            .iter()
            .map(|b| (b.label.clone(), b.count as f64, b.count.to_string()))
            .collect();
        section(
            &mut body,
            "first-response",
            &format!(
                "First response time ({} of {} conversations answered; median {}, p90 {})",
                fr.responded,
                fr.conversations,
                secs(fr.median),
                secs(fr.p90)
            ),
            &column_chart(&bars),
        );
        let sentiment: Vec<(String, f64)> = self
            .sentiment
            .by_channel
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        section(
            &mut body,
            "sentiment",
            "Customer sentiment by channel (mean VADER compound, −1 … 1)",
            &diverging_chart(&sentiment),
        );
        if self.gladly.present {
            let bars: Vec<(String, f64, String)> = self
                .gladly
                .handle_seconds_by_channel
                .iter()
                .filter_map(|(k, h)| Some((k.clone(), h.median?, secs(h.median))))
                .collect();
            section(
                &mut body,
                "handle-time",
                &format!(
                    "Gladly handle time per contact by channel (median; {} contacts, p90 {})",
                    self.gladly.contacts,
                    secs(self.gladly.handle_seconds.p90)
                ),
                &column_chart(&bars),
            );
        }
        let mut rates: Vec<(String, f64, String)> = Vec::new();
        let mut push = |label: String, v: Option<f64>| {
            if let Some(v) = v {
                rates.push((label, v, pct(Some(v))));
            }
        };
        for (source, o) in &self.escalation.by_source {
            push(format!("{source}: escalated"), o.escalation_rate);
            push(format!("{source}: bot handled"), o.bot_handled_rate);
        }
        if self.ultimate.present {
            push("Ultimate: deflection".into(), self.ultimate.deflection_rate);
            push("Ultimate: automation".into(), self.ultimate.automation_rate);
        }
        if self.ada.present {
            push("Ada: engaged".into(), self.ada.engaged_rate);
        }
        section(
            &mut body,
            "deflection",
            "Bot deflection and escalation",
            &rate_chart(&rates),
        );

        let mut table = String::from("<pre>");
        table.push_str(&esc(&self.to_table()));
        table.push_str("</pre>");
        section(&mut body, "details", "All figures", &table);

        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>talkhouse report</title><style>{CSS}</style></head><body>\
<h1>talkhouse report</h1><p class=\"sub\">Generated {}{}</p>{body}</body></html>\n",
            esc(&self.generated_at),
            self.since
                .as_deref()
                .map(|s| format!(", since {}", esc(s)))
                .unwrap_or_default()
        )
    }
}

const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1f2933;background:#fff}\
h1{margin:0 0 4px}h2{font-size:16px;margin:0 0 8px}.sub{color:#616e7c;margin:0 0 16px}\
.tiles{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:16px}\
.tile{border:1px solid #e4e7eb;border-radius:8px;padding:10px 14px;min-width:140px}\
.tile .v{font-size:22px;font-weight:600}.tile .l{font-size:12px;color:#616e7c}\
section{border:1px solid #e4e7eb;border-radius:8px;padding:12px 16px;margin-bottom:16px}\
svg text{font-size:11px;fill:#3e4c59}.empty{color:#9aa5b1;font-style:italic}\
pre{font-size:12px;overflow-x:auto}\
.note{background:#fffbeb;border:1px solid #fcd34d;border-radius:8px;padding:8px 12px;margin:0 0 12px}";

const PALETTE: [&str; 8] = [
    "#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#db2777", "#65a30d", "#b45309",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn section(body: &mut String, id: &str, title: &str, content: &str) {
    let _ = write!(
        body,
        "<section id=\"{id}\"><h2>{}</h2>{content}</section>",
        esc(title)
    );
}

fn empty() -> String {
    "<p class=\"empty\">No data.</p>".into()
}

/// Lines per source over days.
fn volume_chart(by_day: &[DayCount]) -> String {
    let days: Vec<&str> = {
        let set: std::collections::BTreeSet<&str> = by_day.iter().map(|d| d.day.as_str()).collect();
        set.into_iter().collect()
    };
    if days.is_empty() {
        return empty();
    }
    let mut series: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for d in by_day {
        *series
            .entry(d.source.as_str())
            .or_default()
            .entry(d.day.as_str())
            .or_default() += d.count;
    }
    let max = by_day.iter().map(|d| d.count).max().unwrap_or(1).max(1) as f64;
    let (w, h, left, bottom, top) = (760.0, 260.0, 48.0, 40.0, 10.0);
    let plot_w = w - left - 130.0;
    let plot_h = h - bottom - top;
    let x = |i: usize| {
        if days.len() == 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (days.len() - 1) as f64
        }
    };
    let y = |v: f64| top + plot_h - plot_h * v / max;
    let mut svg = format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">"
    );
    axes(&mut svg, left, top, plot_w, plot_h, max);
    // At most about seven date labels, as `MM-DD` when the days are ISO dates.
    let step = days.len().div_ceil(7).max(1);
    for (i, day) in days.iter().enumerate().step_by(step) {
        let day = if day.len() == 10 {
            day.get(5..).unwrap_or(day)
        } else {
            day
        };
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x(i),
            h - bottom + 16.0,
            esc(day)
        );
    }
    for (k, (source, points)) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let pts: Vec<String> = days
            .iter()
            .enumerate()
            .map(|(i, d)| {
                format!(
                    "{:.1},{:.1}",
                    x(i),
                    y(points.get(d).copied().unwrap_or(0) as f64)
                )
            })
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"series\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
        if days.len() == 1 {
            let _ = write!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{color}\"/>",
                x(0),
                y(points.get(days[0]).copied().unwrap_or(0) as f64)
            );
        }
        let ly = top + 14.0 + 18.0 * k as f64;
        let lx = left + plot_w + 16.0;
        let _ = write!(
            svg,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{ly:.1}\">{}</text>",
            ly - 10.0,
            lx + 18.0,
            esc(source)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn axes(svg: &mut String, left: f64, top: f64, plot_w: f64, plot_h: f64, max: f64) {
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{b}\" stroke=\"#9aa5b1\"/>\
<line x1=\"{left}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#9aa5b1\"/>\
<text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{max}</text><text x=\"{tx}\" y=\"{b}\" text-anchor=\"end\">0</text>",
        b = top + plot_h,
        r = left + plot_w,
        tx = left - 6.0,
        ty = top + 8.0,
    );
}

/// Vertical bars with labels under them.
fn column_chart(bars: &[(String, f64, String)]) -> String {
    if bars.iter().all(|(_, v, _)| *v <= 0.0) {
        return empty();
    }
    let max = bars.iter().map(|(_, v, _)| *v).fold(0.0, f64::max).max(1.0);
    let (w, h, left, bottom, top) = (760.0, 240.0, 48.0, 40.0, 16.0);
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - top;
    let slot = plot_w / bars.len() as f64;
    let mut svg = format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">"
    );
    axes(&mut svg, left, top, plot_w, plot_h, max);
    for (i, (label, v, text)) in bars.iter().enumerate() {
        let bh = plot_h * v / max;
        let x = left + slot * i as f64 + slot * 0.15;
        let y = top + plot_h - bh;
        let _ = write!(
            svg,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            slot * 0.7,
            PALETTE[0],
            x + slot * 0.35,
            y - 3.0,
            esc(text),
            x + slot * 0.35,
            top + plot_h + 16.0,
            esc(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars around zero for values in [-1, 1].
fn diverging_chart(values: &[(String, f64)]) -> String {
    if values.is_empty() {
        return empty();
    }
    let (w, row, left) = (760.0, 26.0, 140.0);
    let h = row * values.len() as f64 + 24.0;
    let half = (w - left - 60.0) / 2.0;
    let zero = left + half;
    let mut svg = format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">"
    );
    for (i, (label, v)) in values.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let len = half * v.clamp(-1.0, 1.0).abs();
        let (x, color) = if *v >= 0.0 {
            (zero, "#16a34a")
        } else {
            (zero - len, "#dc2626")
        };
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"/>\
<text x=\"{:.1}\" y=\"{:.1}\">{v:+.3}</text>",
            left - 8.0,
            y + 14.0,
            esc(label),
            len.max(1.0),
            row - 8.0,
            if *v >= 0.0 {
                zero + len + 4.0
            } else {
                zero + 4.0
            },
            y + 14.0,
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{zero}\" y1=\"0\" x2=\"{zero}\" y2=\"{:.1}\" stroke=\"#3e4c59\"/>\
<text x=\"{left}\" y=\"{:.1}\">−1</text><text x=\"{zero}\" y=\"{:.1}\" text-anchor=\"middle\">0</text>\
<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">+1</text>",
        h - 18.0,
        h - 4.0,
        h - 4.0,
        zero + half,
        h - 4.0
    );
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars for rates in [0, 1].
fn rate_chart(rates: &[(String, f64, String)]) -> String {
    if rates.is_empty() {
        return empty();
    }
    let (w, row, left) = (760.0, 26.0, 220.0);
    let h = row * rates.len() as f64 + 8.0;
    let full = w - left - 70.0;
    let mut svg = format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">"
    );
    for (i, (label, v, text)) in rates.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let color = if label.contains("escalat") {
            "#ea580c"
        } else {
            "#2563eb"
        };
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
<rect x=\"{left}\" y=\"{y:.1}\" width=\"{full:.1}\" height=\"{:.1}\" fill=\"#f1f5f9\"/>\
<rect class=\"bar\" x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"/>\
<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            left - 8.0,
            y + 14.0,
            esc(label),
            row - 8.0,
            (full * v.clamp(0.0, 1.0)).max(1.0),
            row - 8.0,
            left + full + 6.0,
            y + 14.0,
            esc(text)
        );
    }
    svg.push_str("</svg>");
    svg
}
