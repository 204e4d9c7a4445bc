//! Path patterns, as operation catalogues and rules write them: literal segments compared
//! without regard to ASCII case (`/api/Transactions/GetTransactionStatus`), `*` or a `{name}`
//! for any one segment (`/{version}/{phone_number_id}/messages`), and `**` at the end for any
//! rest. A path is matched without its query string.

use std::fmt;

/// The most segments a pattern may have.
pub(crate) const MAX_SEGMENTS: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*` or `{name}`: any one segment.
    One,
    /// `**`, last: any number of segments, none included.
    Rest,
}

/// A parsed path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
    segments: Vec<Segment>,
}

impl PathPattern {
    /// Parses `text`, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "the path pattern \"{text}\" must start with / (e.g. \"/mpesa/stkpush/v1/processrequest\")"
            ));
        };
        if text.contains('?') || text.contains('#') {
            return Err(format!(
                "the path pattern \"{text}\" has a query or fragment: patterns match the path alone"
            ));
        }
        let pieces: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(pieces.len());
        for (index, piece) in pieces.iter().enumerate() {
            let segment = match *piece {
                "**" if index + 1 == pieces.len() => Segment::Rest,
                "**" => {
                    return Err(format!(
                        "the path pattern \"{text}\" has ** before its end: ** matches the rest of a path and comes last"
                    ));
                }
                "*" => Segment::One,
                braced if braced.starts_with('{') && braced.ends_with('}') => Segment::One,
                literal if literal.contains('*') || literal.contains('{') => {
                    return Err(format!(
                        "the path pattern \"{text}\" has \"{literal}\": a segment is literal, * or {{name}} (any one segment), or a final **"
                    ));
                }
                literal => Segment::Literal(literal.to_ascii_lowercase()),
            };
            segments.push(segment);
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(format!(
                "the path pattern \"{text}\" has more than {MAX_SEGMENTS} segments"
            ));
        }
        Ok(PathPattern {
            text: text.to_string(),
            segments,
        })
    }

    /// Whether `path` (no query; a trailing slash is ignored) matches.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let path = path.strip_prefix('/').unwrap_or(path);
        let path = path.strip_suffix('/').unwrap_or(path);
        let mut pieces = path.split('/');
        for segment in &self.segments {
            match segment {
                Segment::Rest => return true,
                Segment::One => {
                    if pieces.next().is_none_or(str::is_empty) {
                        return false;
                    }
                }
                Segment::Literal(literal) => {
                    let Some(piece) = pieces.next() else {
                        return false;
                    };
                    if !piece.eq_ignore_ascii_case(literal) {
                        return false;
                    }
                }
            }
        }
        pieces.next().is_none()
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, path: &str) -> bool {
        PathPattern::parse(pattern).unwrap().matches(path)
    }

    #[test]
    fn literals_ignore_case_and_the_query() {
        let status = "/api/Transactions/GetTransactionStatus";
        assert!(matches(
            status,
            "/api/Transactions/GetTransactionStatus?orderTrackingId=1"
        ));
        assert!(matches(status, "/api/transactions/gettransactionstatus"));
        assert!(matches(status, "/api/Transactions/GetTransactionStatus/"));
        assert!(!matches(
            status,
            "/api/Transactions/GetTransactionStatus/extra"
        ));
        assert!(!matches(status, "/api/Transactions"));
    }

    #[test]
    fn wildcards_take_one_segment_or_the_rest() {
        let messages = "/{version}/{phone_number_id}/messages";
        assert!(matches(messages, "/v21.0/106540352242922/messages"));
        assert!(!matches(messages, "/v21.0/messages"));
        assert!(
            !matches(messages, "/v21.0//messages"),
            "an empty segment is no id"
        );
        assert!(matches("/mpesa/*/v1/query", "/mpesa/stkpushquery/v1/query"));
        assert!(matches("/api/**", "/api/URLSetup/GetIpnList"));
        assert!(matches("/api/**", "/api"));
        assert!(!matches("/api/**", "/other"));
        assert!(matches("/**", "/anything/at/all"));
    }

    #[test]
    fn bad_patterns_say_what_is_wrong() {
        assert!(
            PathPattern::parse("api/x")
                .unwrap_err()
                .contains("must start with /")
        );
        assert!(
            PathPattern::parse("/a/**/b")
                .unwrap_err()
                .contains("comes last")
        );
        assert!(PathPattern::parse("/a/b*").unwrap_err().contains("literal"));
        assert!(PathPattern::parse("/a?x=1").unwrap_err().contains("query"));
    }
}
