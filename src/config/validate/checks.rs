//! Building the checks of the kinds of the user's own (smtp, tcp, dns, heartbeat) from a
//! service's table, and which builder each preset or kind uses.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use super::Validator;
use crate::config::kinds::{CheckBuilder, CheckKind};
use crate::config::raw::RawService;
use crate::config::secret::{ExpandError, expand};
use crate::config::{
    Check, DEFAULT_EVERY, DnsCheck, DnsRecord, HeartbeatCheck, SmtpCheck, SmtpServer, TcpCheck,
};

/// How late a heartbeat may be when `grace` is not set.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

impl Validator<'_> {
    /// The check `kind` builds from the service's table; problems go to the validator.
    pub(super) fn check(
        &mut self,
        kind: &CheckKind,
        raw: &RawService,
        table: Range<usize>,
    ) -> Option<Check> {
        match kind.builder {
            CheckBuilder::Provider => self.provider_check(raw, kind).map(Check::Provider),
            CheckBuilder::Smtp => self.smtp(raw, table),
            CheckBuilder::Http => self.http(raw, table).map(Check::Http),
            CheckBuilder::Tcp => self.tcp(raw, table),
            CheckBuilder::Dns => self.dns(raw, table),
            CheckBuilder::Heartbeat => self.heartbeat(raw, table),
        }
    }

    fn smtp(&mut self, raw: &RawService, table: Range<usize>) -> Option<Check> {
        let Some(server) = &raw.server else {
            self.problems
                .at(table, "an smtp check needs `server` (HOST:PORT)");
            return None;
        };
        let credentials = match (&raw.username, &raw.password) {
            (None, None) => None,
            (username, password) => Some((
                self.credential("username", username.as_ref()),
                self.credential("password", password.as_ref()),
            )),
        };
        // Like a credential, an unset server variable fails the check, not the config.
        let server = match expand(server.get_ref(), self.environment) {
            Err(ExpandError::Unset(variable)) => SmtpServer::Missing { variable },
            _ => {
                let (host, port) = self.host_port("server", server)?;
                SmtpServer::Address { host, port }
            }
        };
        Some(Check::Smtp(SmtpCheck {
            server,
            tls: self.tls(raw.tls.as_ref())?,
            credentials,
            ca: None,
        }))
    }

    fn heartbeat(&mut self, raw: &RawService, table: Range<usize>) -> Option<Check> {
        if let Some(schedule) = &raw.schedule {
            self.problems.at(
                schedule.span(),
                "a heartbeat takes `every` (the longest expected gap between beats), not a cron `schedule`",
            );
            return None;
        }
        let Some(every) = &raw.every else {
            self.problems.at(
                table,
                "a heartbeat needs `every`: the longest expected gap between two beats, e.g. \"30m\"",
            );
            return None;
        };
        let Some(token) = &raw.token else {
            self.problems.at(
                table,
                "a heartbeat needs `token`: the bearer token its beats carry, e.g. \"${MPESA_CALLBACK_HEARTBEAT_TOKEN}\"",
            );
            return None;
        };
        let secret = self.needed_secret(
            "token",
            token,
            "a heartbeat's beats prove who sent them with it",
        )?;
        let token = self.strong_token("token", token.span(), secret)?;
        Some(Check::Heartbeat(HeartbeatCheck {
            every: self.duration("every", Some(every), DEFAULT_EVERY, false),
            grace: self.duration("grace", raw.grace.as_ref(), DEFAULT_GRACE, true),
            token,
            // Set once `[alerts] state_dir` is known.
            state_file: PathBuf::new(),
        }))
    }

    fn dns(&mut self, raw: &RawService, table: Range<usize>) -> Option<Check> {
        let Some(name) = &raw.name else {
            self.problems.at(
                table,
                "a dns check needs `name`: the host name to look up, e.g. \"api.safaricom.co.ke\"",
            );
            return None;
        };
        let record = match &raw.record {
            None => DnsRecord::A,
            Some(record) => {
                let allowed: Vec<&str> = DnsRecord::ALL.iter().map(|(name, _)| *name).collect();
                let text = self.one_of("record", record, &allowed)?;
                DnsRecord::ALL
                    .iter()
                    .find(|(name, _)| *name == text)
                    .map(|(_, record)| *record)?
            }
        };
        let server = match &raw.server {
            None => None,
            Some(server) => {
                let text = server.get_ref();
                let parsed = text.parse::<SocketAddr>().ok().or_else(|| {
                    text.parse::<std::net::IpAddr>()
                        .ok()
                        .map(|ip| SocketAddr::new(ip, 53))
                });
                if parsed.is_none() {
                    self.problems.at(
                        server.span(),
                        format!("server \"{text}\" is not an address: write IP or IP:PORT, e.g. \"1.1.1.1\" or \"127.0.0.1:5353\""),
                    );
                    return None;
                }
                parsed
            }
        };
        let expect = raw
            .expect
            .as_ref()
            .map(|list| {
                list.get_ref()
                    .iter()
                    .map(|value| value.get_ref().clone())
                    .collect()
            })
            .unwrap_or_default();
        Some(Check::Dns(DnsCheck {
            name: name.get_ref().trim_end_matches('.').to_string(),
            record,
            server,
            expect,
        }))
    }

    fn tcp(&mut self, raw: &RawService, table: Range<usize>) -> Option<Check> {
        let Some(address) = &raw.address else {
            self.problems
                .at(table, "a tcp check needs `address` (HOST:PORT)");
            return None;
        };
        let expanded = self.expand("address", address)?;
        self.host_port_text("address", &expanded, address.span())?;
        Some(Check::Tcp(TcpCheck { address: expanded }))
    }
}
