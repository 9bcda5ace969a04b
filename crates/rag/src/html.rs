//! HTML to indexable text: tags dropped (`script`/`style` with their content), headings turned into Markdown `#`
//! lines so that the Markdown chunker keeps them with their sections, block elements into line breaks, character
//! references decoded. Chunk offsets of an HTML file refer to this text.

/// The text of an HTML document.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut pre = 0usize;
    while let Some(lt) = rest.find('<') {
        push_text(&mut out, &rest[..lt], pre > 0);
        rest = &rest[lt..];
        let Some(gt) = rest.find('>') else {
            // A stray `<`: keep it as text.
            push_text(&mut out, rest, pre > 0);
            rest = "";
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if tag.starts_with("!--") {
            if let Some(end) = rest.find("-->") {
                rest = &rest[end + 3..];
            }
            continue;
        }
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        match name.as_str() {
            "script" | "style" if !closing => {
                let end = rest
                    .to_ascii_lowercase()
                    .find(&format!("</{name}"))
                    .unwrap_or(rest.len());
                rest = &rest[end..];
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                out.push_str("\n\n");
                if !closing {
                    let level = usize::from(name.as_bytes()[1] - b'0');
                    out.push_str(&"#".repeat(level));
                    out.push(' ');
                }
            }
            "pre" => {
                pre = if closing {
                    pre.saturating_sub(1)
                } else {
                    pre + 1
                };
                out.push_str("\n\n");
            }
            "p" | "div" | "ul" | "ol" | "dl" | "table" | "blockquote" | "section" | "article"
            | "hr" => out.push_str("\n\n"),
            "br" | "li" | "dt" | "dd" | "tr" if !closing => out.push('\n'),
            "title" => out.push('\n'),
            "td" | "th" => out.push(' '),
            _ => {}
        }
    }
    push_text(&mut out, rest, pre > 0);
    tidy(&out)
}

fn push_text(out: &mut String, text: &str, keep_lines: bool) {
    let decoded = decode_entities(text);
    if keep_lines {
        out.push_str(&decoded);
    } else {
        // Outside <pre>, any run of white space is one space.
        let mut last_space = out.ends_with([' ', '\n']);
        for c in decoded.chars() {
            if c.is_whitespace() {
                if !last_space {
                    out.push(' ');
                }
                last_space = true;
            } else {
                out.push(c);
                last_space = false;
            }
        }
    }
}

/// Trims every line and keeps at most one blank line between blocks.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = true;
    for line in text.lines() {
        let line = line.trim_end();
        let line = if line.trim_start().starts_with('#') {
            line.trim_start()
        } else {
            line
        };
        if line.trim().is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
        } else {
            out.push_str(line);
            out.push('\n');
            blank = false;
        }
    }
    out.trim_end().to_string() + "\n"
}

/// Decodes the common named references and every numeric one.
fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..]
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '#')
            .map(|i| i + 1);
        let decoded = end.filter(|&e| rest[e..].starts_with(';')).and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => name.strip_prefix('#').and_then(|n| {
                    let code = match n.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok(),
                        None => n.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_become_markdown_and_tags_go() {
        let html = "<html><head><title>T</title><style>p{x:1}</style></head><body>\
            <h2><a name=\"s1\">1.1</a> What is   Debian?</h2><p>A &amp; B&#33; &lt;ok&gt;</p>\
            <pre>a\n  b</pre><!-- gone --><script>var x = '<p>';</script><ul><li>one</li><li>two</li></ul></body></html>";
        assert_eq!(
            html_to_text(html),
            "T\n\n## 1.1 What is Debian?\n\nA & B! <ok>\n\na\n  b\n\none\ntwo\n"
        );
    }
}
