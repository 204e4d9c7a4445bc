//! `GET /runbook`: the runbook (docs/runbook.md, built in) as one HTML page whose sections are
//! the anchors the bundled alert rules link to, so every page's link works against the version
//! that is running. Renders only what the runbook uses: headings, paragraphs, lists, `code`,
//! **bold** and fenced code blocks.

use axum::http::header;
use axum::response::IntoResponse;

const RUNBOOK: &str = include_str!("../../docs/runbook.md");

/// The runbook page.
pub(crate) async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        render(RUNBOOK),
    )
}

/// `markdown` as an HTML page.
pub(crate) fn render(markdown: &str) -> String {
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>breakerd runbook</title><style>body{font:16px/1.5 system-ui,sans-serif;\
         max-width:48rem;margin:2rem auto;padding:0 1rem;color:#1d2330}code,pre{background:\
         #f3f5f8;border-radius:3px}pre{padding:.6rem;overflow-x:auto}h2{margin-top:2rem;\
         border-top:1px solid #dde2ea;padding-top:1rem}</style></head><body>\n",
    );
    let mut lines = markdown.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with("```") {
            html.push_str("<pre><code>");
            for code in lines.by_ref() {
                if code.starts_with("```") {
                    break;
                }
                html.push_str(&escape(code));
                html.push('\n');
            }
            html.push_str("</code></pre>\n");
            continue;
        }
        if let Some(title) = line.strip_prefix("# ") {
            html.push_str(&format!("<h1>{}</h1>\n", inline(title)));
            continue;
        }
        if let Some(anchor) = line.strip_prefix("## ") {
            let anchor = escape(anchor.trim());
            html.push_str(&format!(
                "<h2 id=\"{anchor}\"><a href=\"#{anchor}\">{anchor}</a></h2>\n"
            ));
            continue;
        }
        // A block: this line and the ones up to the next blank line or heading.
        let mut block = vec![line];
        while let Some(next) = lines.peek() {
            if next.trim().is_empty() || next.starts_with('#') || next.starts_with("```") {
                break;
            }
            block.push(next);
            lines.next();
        }
        html.push_str(&render_block(&block));
    }
    html.push_str("</body></html>\n");
    html
}

/// A paragraph, or a list when its first line starts one (`1. ` or `- `); continuation lines
/// (indented) belong to the item above them.
fn render_block(block: &[&str]) -> String {
    let item_start = |line: &str| -> Option<(bool, usize)> {
        if let Some(rest) = line.strip_prefix("- ") {
            return Some((false, line.len() - rest.len()));
        }
        let digits = line.chars().take_while(char::is_ascii_digit).count();
        (digits > 0 && line[digits..].starts_with(". ")).then_some((true, digits + 2))
    };
    let Some((ordered, _)) = item_start(block[0]) else {
        return format!("<p>{}</p>\n", inline(&block.join(" ")));
    };
    let mut items: Vec<String> = Vec::new();
    for line in block {
        match item_start(line) {
            Some((_, skip)) => items.push(line[skip..].to_string()),
            None => {
                if let Some(last) = items.last_mut() {
                    last.push(' ');
                    last.push_str(line.trim());
                }
            }
        }
    }
    let tag = if ordered { "ol" } else { "ul" };
    let body: String = items
        .iter()
        .map(|item| format!("<li>{}</li>", inline(item)))
        .collect();
    format!("<{tag}>{body}</{tag}>\n")
}

/// Escapes the text, then turns `code` and **bold** spans into tags.
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (index, piece) in text.split('`').enumerate() {
        if index % 2 == 1 {
            out.push_str(&format!("<code>{}</code>", escape(piece)));
            continue;
        }
        for (part, bold) in piece.split("**").enumerate() {
            if part % 2 == 1 {
                out.push_str(&format!("<strong>{}</strong>", escape(bold)));
            } else {
                out.push_str(&escape(bold));
            }
        }
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_lists_code_and_bold_become_html() {
        let html = render(
            "# Title\n\nIntro `a<b>` and **Bold**.\n\n## breaker-open\n\n1. first\n   continued\n2. `x`\n\n- dot\n\n```\nraw <tag>\n```\n",
        );
        assert!(html.contains("<h1>Title</h1>"));
        assert!(html.contains("<p>Intro <code>a&lt;b&gt;</code> and <strong>Bold</strong>.</p>"));
        assert!(html.contains("<h2 id=\"breaker-open\">"));
        assert!(html.contains("<ol><li>first continued</li><li><code>x</code></li></ol>"));
        assert!(html.contains("<ul><li>dot</li></ul>"));
        assert!(html.contains("<pre><code>raw &lt;tag&gt;\n</code></pre>"));
    }

    #[test]
    fn the_built_in_runbook_has_a_section_per_heading() {
        let html = render(RUNBOOK);
        for anchor in RUNBOOK.lines().filter_map(|l| l.strip_prefix("## ")) {
            assert!(html.contains(&format!("id=\"{anchor}\"")), "{anchor}");
        }
    }
}
