//! A service's judge: its operation catalogue and its ordered rules — the service's own from
//! `alerts.toml` first, then those its provider settings make, then the provider's built-in
//! list, then the defaults by status — and the verdict they give an answer. The check, the
//! proxy and the outcome API all ask it, so an answer means the same wherever it is seen.

use std::sync::{Arc, LazyLock};

use super::Provider;
use super::rules::{Head, Judgement, Origin, PathPattern, Rule, compile_text};

/// The operation every catalogue ends with: whatever matches no other.
pub const OTHER: &str = "other";

/// The defaults that end every list: throttling, provider errors, the caller's mistakes, and
/// success for the rest.
const DEFAULT_RULES: &str = r#"
[[rule]]
status = 429
outcome = "throttled"

[[rule]]
status = "5xx"
outcome = "failure"
reason = "http_status"

[[rule]]
status = 404
outcome = "caller"
reason = "not_found"

[[rule]]
status = "4xx"
outcome = "caller"
reason = "validation"

[[rule]]
outcome = "success"
"#;

static DEFAULTS: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    compile_text(DEFAULT_RULES, "defaults", &[], &|number| Origin::Default {
        number,
    })
    .unwrap_or_else(|problems| {
        // The defaults are ours and a unit test compiles them; should they ever fail, judge by
        // status with the failure logged rather than stop.
        tracing::error!(?problems, "the default rules do not compile");
        Vec::new()
    })
});

/// The defaults that end every service's rules.
pub fn default_rules() -> &'static [Rule] {
    &DEFAULTS
}

/// One entry of a catalogue: a method (or any) and a path pattern, and the operation's name.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogueEntry {
    /// The operation's name.
    pub name: Arc<str>,
    /// Uppercase; `None` for any method.
    pub method: Option<String>,
    /// The path below the base URL.
    pub path: PathPattern,
}

/// An operation of a service, by its place in the catalogue (`other` last) and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Its place: the metrics' index.
    pub index: u8,
    /// Its name.
    pub name: Arc<str>,
}

/// What a service's answers are judged with.
#[derive(Clone, Debug)]
pub struct Judge {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    provider: Option<&'static Provider>,
    catalogue: Vec<CatalogueEntry>,
    /// Every operation's name, `other` last.
    names: Vec<Arc<str>>,
    user: Vec<Rule>,
    settings: Vec<Rule>,
    /// Path prefixes an application may report paths with (the base URL's path, the
    /// provider's hosts' paths), longest first.
    base_paths: Vec<String>,
    /// Whether some rule quotes the provider's answer (so what a request carried must be kept
    /// out of what it quotes).
    quotes: bool,
}

/// Where a verdict stands once the head of an answer is known.
#[derive(Debug)]
pub enum Plan {
    /// Decided without the body.
    Decided(Judgement),
    /// The first rule that applies reads the body.
    NeedsBody,
}

impl Judge {
    /// The judge of a service of `provider` (or of a generic kind, with `None`), with the
    /// catalogue entries its own values make, its own `user` rules, the rules its `settings`
    /// make, and its base URL's path.
    pub fn new(
        provider: Option<&'static Provider>,
        own_operations: Vec<CatalogueEntry>,
        user: Vec<Rule>,
        settings: Vec<Rule>,
        base_path: &str,
    ) -> Self {
        let mut catalogue = own_operations;
        catalogue.extend(provider.map(Provider::catalogue).unwrap_or_default());
        let mut names: Vec<Arc<str>> = Vec::new();
        for entry in &catalogue {
            if !names.contains(&entry.name) {
                names.push(Arc::clone(&entry.name));
            }
        }
        names.push(Arc::from(OTHER));
        let mut base_paths: Vec<String> = std::iter::once(base_path.to_string())
            .chain(provider.iter().flat_map(|p| p.hosts.paths()))
            .map(|path| path.trim_end_matches('/').to_string())
            .filter(|path| !path.is_empty())
            .collect();
        base_paths.sort_by_key(|path| std::cmp::Reverse(path.len()));
        base_paths.dedup();
        let builtin: &[Rule] = provider.map_or(&[], Provider::rules);
        let quotes = user
            .iter()
            .chain(&settings)
            .chain(builtin)
            .any(Rule::quotes_answer);
        Self {
            inner: Arc::new(Inner {
                provider,
                catalogue,
                names,
                user,
                settings,
                base_paths,
                quotes,
            }),
        }
    }

    /// Whether some rule quotes the provider's answer (its code, message or body) in what it
    /// says; the defaults quote nothing.
    pub fn quotes_answer(&self) -> bool {
        self.inner.quotes
    }

    /// The judge of a service with no provider and no rules of its own: the defaults.
    pub fn by_status() -> Self {
        Self::new(None, Vec::new(), Vec::new(), Vec::new(), "")
    }

    /// The provider, if the service has one.
    pub fn provider(&self) -> Option<&'static Provider> {
        self.inner.provider
    }

    /// Every operation's name, in catalogue order, `other` last.
    pub fn operation_names(&self) -> &[Arc<str>] {
        &self.inner.names
    }

    /// Whether the service has rules of its own (from `alerts.toml`).
    pub fn has_user_rules(&self) -> bool {
        !self.inner.user.is_empty()
    }

    /// The operation a request with `method` and `path` (below the base URL) is.
    pub fn operation(&self, method: &str, path: &str) -> Operation {
        let name = self
            .inner
            .catalogue
            .iter()
            .find(|entry| {
                entry
                    .method
                    .as_ref()
                    .is_none_or(|wanted| wanted.eq_ignore_ascii_case(method))
                    && entry.path.matches(path)
            })
            .map_or(OTHER, |entry| &*entry.name);
        self.named(name)
    }

    /// The operation called `name` (`other` when there is none).
    pub fn named(&self, name: &str) -> Operation {
        let names = &self.inner.names;
        let index = names
            .iter()
            .position(|known| &**known == name)
            .unwrap_or(names.len() - 1);
        Operation {
            index: u8::try_from(index).unwrap_or(u8::MAX),
            name: Arc::clone(&names[index]),
        }
    }

    /// `path` as the catalogue reads it: without scheme, host, query, and the base URL's path
    /// (an application may report `/pesapalv3/api/...` or a whole URL).
    pub fn relative_path<'p>(&self, path: &'p str) -> &'p str {
        let mut path = path;
        for scheme in ["https://", "http://"] {
            if let Some(rest) = path.strip_prefix(scheme) {
                path = rest.find('/').map_or("/", |at| &rest[at..]);
            }
        }
        let path = path.split(['?', '#']).next().unwrap_or_default();
        for base in &self.inner.base_paths {
            if let Some(rest) = path.strip_prefix(base.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return if rest.is_empty() { "/" } else { rest };
            }
        }
        path
    }

    /// Every rule in the order they are tried.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        let builtin: &[Rule] = self.inner.provider.map_or(&[], Provider::rules);
        self.inner
            .user
            .iter()
            .chain(&self.inner.settings)
            .chain(builtin)
            .chain(DEFAULTS.iter())
    }

    /// The verdict if the head decides it, or that the body is needed.
    pub fn plan(&self, head: &Head<'_>) -> Plan {
        for rule in self.rules() {
            if !rule.matches_head(head) {
                continue;
            }
            if rule.reads_body() {
                return Plan::NeedsBody;
            }
            return Plan::Decided(rule.apply(head, &self.named(head.operation).name, None));
        }
        Plan::Decided(fallback(head, &self.named(head.operation).name))
    }

    /// The verdict on an answer with `head` and the start of its `body` (`None`: not read, or
    /// longer than a judge reads).
    pub fn judge(&self, head: &Head<'_>, body: Option<&[u8]>) -> Judgement {
        self.first_match(self.rules(), head, body)
            .unwrap_or_else(|| fallback(head, &self.named(head.operation).name))
    }

    /// The verdict of the service's own rules alone, if one matches (a generic check's own
    /// tests decide otherwise).
    pub fn judge_by_user_rules(&self, head: &Head<'_>, body: Option<&[u8]>) -> Option<Judgement> {
        self.first_match(self.inner.user.iter(), head, body)
    }

    fn first_match<'r>(
        &self,
        rules: impl Iterator<Item = &'r Rule>,
        head: &Head<'_>,
        body: Option<&[u8]>,
    ) -> Option<Judgement> {
        let mut json = None;
        let operation = self.named(head.operation).name;
        for rule in rules {
            if !rule.matches_head(head) {
                continue;
            }
            let parsed = if rule.reads_body() {
                json.get_or_insert_with(|| {
                    body.and_then(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok())
                })
                .as_ref()
            } else {
                None
            };
            if rule.matches_body(parsed) {
                return Some(rule.apply(head, &operation, parsed));
            }
        }
        None
    }
}

/// Success, should no rule match (the last default matches everything, so only a failed
/// compile of the defaults reaches this).
fn fallback(head: &Head<'_>, operation: &Arc<str>) -> Judgement {
    let verdict = if head.status >= 500 {
        crate::outcome::Verdict::Failure(crate::outcome::FailureReason::HttpStatus)
    } else {
        crate::outcome::Verdict::Success
    };
    Judgement {
        verdict,
        operation: Arc::clone(operation),
        rule: Origin::Default { number: 0 },
        detail: format!("HTTP {} on {operation}", head.status),
        code: None,
        message: None,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{CallerKind, FailureReason, Verdict};

    fn head(status: u16) -> Head<'static> {
        static NONE: Vec<(String, String)> = Vec::new();
        Head {
            operation: OTHER,
            method: "GET",
            path: "/x",
            status,
            headers: &NONE,
        }
    }

    #[test]
    fn the_defaults_judge_by_status() {
        assert_eq!(DEFAULTS.len(), 5);
        let judge = Judge::by_status();
        let verdict = |status| judge.judge(&head(status), None).verdict;
        assert_eq!(verdict(200), Verdict::Success);
        assert_eq!(verdict(302), Verdict::Success);
        assert_eq!(verdict(429), Verdict::Failure(FailureReason::Throttled));
        assert_eq!(verdict(503), Verdict::Failure(FailureReason::HttpStatus));
        assert_eq!(verdict(404), Verdict::Caller(CallerKind::NotFound));
        assert_eq!(verdict(400), Verdict::Caller(CallerKind::Validation));
        let Plan::Decided(judged) = judge.plan(&head(503)) else {
            panic!("a status decides")
        };
        assert_eq!(judged.detail, "HTTP 503 on other");
        assert_eq!(judged.rule.to_string(), "default rule 2");
    }

    #[test]
    fn user_rules_come_first_and_may_need_the_body() {
        let user = compile_text(
            "[[rule]]\nstatus = 503\njson = [{ pointer = \"/maintenance\", equals = true }]\noutcome = \"caller\"\nreason = \"pending\"\n",
            "alerts.toml",
            &[OTHER],
            &|number| Origin::BuiltIn { provider: "user", number },
        )
        .unwrap();
        let judge = Judge::new(None, Vec::new(), user, Vec::new(), "");
        assert!(matches!(judge.plan(&head(503)), Plan::NeedsBody));
        assert!(matches!(judge.plan(&head(500)), Plan::Decided(_)));
        let planned = judge.judge(&head(503), Some(br#"{"maintenance": true}"#));
        assert_eq!(planned.verdict, Verdict::Caller(CallerKind::Pending));
        let other = judge.judge(&head(503), Some(b"<html>"));
        assert_eq!(other.verdict, Verdict::Failure(FailureReason::HttpStatus));
        assert!(judge.judge_by_user_rules(&head(500), None).is_none());
    }

    #[test]
    fn reported_paths_lose_their_host_query_and_base() {
        let judge = Judge::new(None, Vec::new(), Vec::new(), Vec::new(), "/pesapalv3/");
        assert_eq!(
            judge.relative_path("https://cybqa.pesapal.com/pesapalv3/api/Auth/RequestToken?x=1"),
            "/api/Auth/RequestToken"
        );
        assert_eq!(judge.relative_path("/pesapalv3"), "/");
        assert_eq!(judge.relative_path("/pesapalv3x/a"), "/pesapalv3x/a");
        assert_eq!(judge.relative_path("/api/x"), "/api/x");
        assert_eq!(judge.named("nope").name.as_ref(), OTHER);
    }
}
