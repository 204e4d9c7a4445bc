//! The DNS check: one lookup of one record type, through the system's resolvers or a named
//! server, judged by the answer: the name must exist, the server must answer, and every
//! expected value must be among the records.

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, Resolver};

use super::{FailureReason, ProbeError, ProbeSuccess};
use crate::config::{DnsCheck, DnsRecord};

/// Looks `check.name` up and judges the answer.
pub(crate) async fn check(check: &DnsCheck) -> Result<ProbeSuccess, ProbeError> {
    let resolver = resolver(check)?;
    let record_type = match check.record {
        DnsRecord::A => RecordType::A,
        DnsRecord::Aaaa => RecordType::AAAA,
        DnsRecord::Cname => RecordType::CNAME,
        DnsRecord::Mx => RecordType::MX,
        DnsRecord::Txt => RecordType::TXT,
    };
    let what = format!("{} {}", check.name, check.record.as_str());
    let lookup = resolver
        .lookup(format!("{}.", check.name), record_type)
        .await
        .map_err(|error| failure(&error, &what))?;
    let values: Vec<String> = lookup.iter().filter_map(text).collect();
    let missing: Vec<&String> = check
        .expect
        .iter()
        .filter(|expected| {
            !values
                .iter()
                .any(|value| value.eq_ignore_ascii_case(expected))
        })
        .collect();
    if !missing.is_empty() {
        return Err(ProbeError::new(
            FailureReason::DnsMismatch,
            format!(
                "{what}: expected {} among the answers, got {}",
                quoted(&missing),
                if values.is_empty() {
                    "none".to_string()
                } else {
                    quoted(&values.iter().collect::<Vec<_>>())
                }
            ),
        ));
    }
    Ok(ProbeSuccess::noting(format!(
        "{what}: {}",
        values.join(", ")
    )))
}

fn quoted(values: &[&String]) -> String {
    values
        .iter()
        .map(|value| format!("\"{value}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The resolver: the named server alone, or the system's configuration. One attempt: the
/// breaker's timeout bounds the check, and its threshold decides what a failure means.
fn resolver(check: &DnsCheck) -> Result<Resolver<TokioConnectionProvider>, ProbeError> {
    let provider = TokioConnectionProvider::default();
    let mut builder = match check.server {
        Some(server) => {
            let mut config = ResolverConfig::new();
            config.add_name_server(NameServerConfig::new(server, Protocol::Udp));
            Resolver::builder_with_config(config, provider)
        }
        None => Resolver::builder(provider).map_err(|error| {
            ProbeError::new(
                FailureReason::Dns,
                format!("cannot read the system's resolver configuration: {error}"),
            )
        })?,
    };
    let options: &mut ResolverOpts = builder.options_mut();
    options.attempts = 1;
    // Longer than any check's timeout: the breaker's timeout cuts a silent server off.
    options.timeout = std::time::Duration::from_secs(3600);
    options.cache_size = 0;
    options.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
    Ok(builder.build())
}

/// A record's value as text: an address, a name (no trailing dot), `PREFERENCE NAME` for MX,
/// the joined strings of a TXT record.
fn text(data: &RData) -> Option<String> {
    let name =
        |name: &hickory_resolver::proto::rr::Name| name.to_utf8().trim_end_matches('.').to_string();
    match data {
        RData::A(address) => Some(address.to_string()),
        RData::AAAA(address) => Some(address.to_string()),
        RData::CNAME(alias) => Some(name(&alias.0)),
        RData::MX(mx) => Some(format!("{} {}", mx.preference(), name(mx.exchange()))),
        RData::TXT(txt) => Some(
            txt.txt_data()
                .iter()
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect::<String>(),
        ),
        _ => None,
    }
}

fn failure(error: &ResolveError, what: &str) -> ProbeError {
    if error.is_nx_domain() {
        return ProbeError::new(
            FailureReason::DnsNxdomain,
            format!("{what}: no such name (NXDOMAIN)"),
        );
    }
    match error.proto().map(|proto| proto.kind()) {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. })
            if *response_code == ResponseCode::NoError =>
        {
            ProbeError::new(
                FailureReason::DnsMismatch,
                format!("{what}: the name has no such record"),
            )
        }
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => ProbeError::new(
            FailureReason::DnsServfail,
            format!("{what}: the server answered {response_code}"),
        ),
        Some(ProtoErrorKind::Timeout) => ProbeError::new(
            FailureReason::Timeout,
            format!("{what}: no answer from the server"),
        ),
        _ => ProbeError::new(FailureReason::Dns, format!("{what}: {error}")),
    }
}
