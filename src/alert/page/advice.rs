//! What the on-call person does about each failure reason: one line per reason, the same
//! words as the runbook's table (a test keeps the two equal), put in every page.

use crate::outcome::FailureReason;

/// The advice for `reason`, in one or two sentences.
pub fn advice(reason: FailureReason) -> &'static str {
    match reason {
        FailureReason::Timeout => {
            "The provider answers too slowly or not at all: look at its status page and your network path to it; the breaker tries again by itself at the next attempt."
        }
        FailureReason::Dns | FailureReason::DnsServfail => {
            "The provider's host name does not resolve: check your resolver (/etc/resolv.conf) and the provider's status page."
        }
        FailureReason::DnsNxdomain => {
            "The name does not exist: check the host name in alerts.toml (base_url, url, name) and whether the provider moved it."
        }
        FailureReason::DnsMismatch => {
            "DNS answers, but not what is expected: check the record and `expect` in alerts.toml, and whether the provider changed it on purpose."
        }
        FailureReason::Connect => {
            "Nothing answers at the provider's address: look at its status page, then firewalls and proxies on the way."
        }
        FailureReason::Reset => {
            "The connection was cut mid-call: look at the provider's status page and at anything in the path (proxies, NAT, load balancers)."
        }
        FailureReason::Tls => {
            "TLS failed: check the certificate (expired, wrong host name, a private CA needs ca_file) and this machine's clock."
        }
        FailureReason::HttpStatus => {
            "The provider answers with errors: look at its status page; the breaker tries again by itself at the next attempt."
        }
        FailureReason::Body => {
            "The provider's answer says it failed or is not what it sends when healthy: read the detail; `breakerd explain` names the rule that decided."
        }
        FailureReason::Auth => {
            "The credentials are wrong, expired, unset or meant for the other environment: fix them (the detail names the variable and the host they went to)."
        }
        FailureReason::Throttled => {
            "The provider is rate-limiting you: spread your own calls, check less often (`every`), or ask the provider for a higher limit; a Retry-After is honoured."
        }
        FailureReason::Balance => {
            "Our own account is out of credit: top it up; nothing is wrong with the provider."
        }
        FailureReason::Account => {
            "Our account may not do this (a number restricted or flagged, a permission not granted, a sender or IPN not set up): the detail says where to fix it."
        }
        FailureReason::Protocol => {
            "The server does not speak the expected protocol: check the address, port and tls setting in alerts.toml."
        }
        FailureReason::Redirect => {
            "The provider sent the call elsewhere, which breakerd never follows: fix base_url to where it now lives."
        }
        FailureReason::HeartbeatMissed => {
            "The provider's callbacks stopped arriving: check that it still calls your callback URL and that your app reports each beat."
        }
        FailureReason::Reported => {
            "The application reported the run as failed: read its logs for that run."
        }
    }
}

/// The runbook's list of advice, as `docs/runbook.md` holds it: an item per reason.
pub fn markdown_list() -> String {
    FailureReason::ALL
        .into_iter()
        .map(|reason| format!("- `{reason}`: {}\n", advice(reason)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runbook_holds_the_same_advice() {
        let runbook = include_str!("../../../docs/runbook.md");
        assert!(
            runbook.contains(&markdown_list()),
            "docs/runbook.md's advice list differs from the pages'; it should read:\n{}",
            markdown_list()
        );
    }
}
