//! The `http` kind: one request, judged by status, body text and a JSON field.

use std::ops::Range;

use super::Validator;
use crate::config::HttpCheck;
use crate::config::raw::RawService;
use crate::credential::Secret;

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl Validator<'_> {
    pub(super) fn http(&mut self, raw: &RawService, table_span: Range<usize>) -> Option<HttpCheck> {
        let Some(url) = &raw.url else {
            self.problems.at(table_span, "an http check needs `url`");
            return None;
        };
        let url = self.url("url", url)?;
        let method = match &raw.method {
            Some(method) => {
                let upper = method.get_ref().to_ascii_uppercase();
                if !METHODS.contains(&upper.as_str()) {
                    self.problems.at(
                        method.span(),
                        format!(
                            "unknown method \"{}\" (allowed: {})",
                            method.get_ref(),
                            METHODS.join(", ")
                        ),
                    );
                    return None;
                }
                upper
            }
            None => "GET".to_string(),
        };
        let mut headers = Vec::new();
        if let Some(raw_headers) = &raw.headers {
            for (name, value) in raw_headers.get_ref() {
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
                {
                    self.problems.at(
                        value.span(),
                        format!("header name \"{name}\" is not a valid HTTP header name"),
                    );
                    continue;
                }
                if let Some(value) = self.expand(&format!("headers.{name}"), value) {
                    headers.push((name.clone(), Secret::new(value)));
                }
            }
        }
        let mut expect_status = Vec::new();
        if let Some(codes) = &raw.expect_status {
            for code in codes.get_ref() {
                match u16::try_from(*code.get_ref()) {
                    Ok(status) if (100..=599).contains(&status) => expect_status.push(status),
                    _ => self.problems.at(
                        code.span(),
                        format!(
                            "expect_status {} is not an HTTP status code (100 to 599)",
                            code.get_ref()
                        ),
                    ),
                }
            }
        }
        let json_equals = match &raw.json_equals {
            Some(value) => {
                if raw.json_field.is_none() {
                    self.problems.at(
                        value.span(),
                        "`json_equals` needs `json_field` to say which field",
                    );
                }
                serde_json::to_value(value.get_ref()).ok()
            }
            None => None,
        };
        Some(HttpCheck {
            method,
            url,
            headers,
            body: raw.body.as_ref().and_then(|body| self.expand("body", body)),
            expect_status,
            body_contains: raw
                .body_contains
                .as_ref()
                .map(|text| text.get_ref().clone()),
            json_field: raw.json_field.as_ref().map(|field| field.get_ref().clone()),
            json_equals,
        })
    }
}
