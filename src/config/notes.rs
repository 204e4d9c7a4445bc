//! What `breakerd check` notes about a valid config: the credentials that are not set, each
//! naming the variable to set and how the check will fail until it is, and the provider
//! services that check a sandbox because no `environment` says otherwise.

use super::{Check, Config, Credential, SmtpServer};

/// One line per unset credential, in service order:
/// `mpesa: MPESA_CONSUMER_KEY is not set; the check will fail with reason auth`.
pub fn unset_credentials(config: &Config) -> Vec<String> {
    config
        .services
        .iter()
        .flat_map(|service| {
            missing(&service.check).into_iter().map(move |what| {
                format!(
                    "{}: {what} is not set; the check will fail with reason auth",
                    service.name
                )
            })
        })
        .collect()
}

/// One line per provider service whose environment was not written and whose host is the
/// provider's sandbox: `mpesa: environment is not set: ...`.
pub fn defaulted_environments(config: &Config) -> Vec<String> {
    config
        .services
        .iter()
        .filter_map(|service| {
            let check = service.check.provider()?;
            let hosts = check.provider.hosts;
            let sandbox = hosts.environment_of(&check.base_url)
                == Some(crate::provider::Environment::Sandbox);
            (!check.environment_set && sandbox && hosts.distinct()).then(|| {
                format!(
                    "{}: environment is not set, so the check and the proxy use {}'s sandbox host {}; set environment = \"production\" for live keys",
                    service.name, check.provider.title, hosts.sandbox
                )
            })
        })
        .collect()
}

/// The variables (or keys, when no variable is named) a check waits for.
pub fn missing(check: &Check) -> Vec<String> {
    let credentials: Vec<&Credential> = match check {
        Check::Provider(check) => check.credentials.iter().collect(),
        Check::Smtp(smtp) => smtp
            .credentials
            .iter()
            .flat_map(|(username, password)| [username, password])
            .collect(),
        Check::Http(_) | Check::Tcp(_) | Check::Dns(_) | Check::Heartbeat(_) => Vec::new(),
    };
    let server = match check {
        Check::Smtp(smtp) => match &smtp.server {
            SmtpServer::Missing { variable } => Some(variable.clone()),
            SmtpServer::Address { .. } => None,
        },
        _ => None,
    };
    server
        .into_iter()
        .chain(
            credentials
                .into_iter()
                .filter_map(|credential| match credential {
                    Credential::Missing { key, variable } => {
                        Some(variable.clone().unwrap_or_else(|| key.to_string()))
                    }
                    Credential::Set(_) => None,
                }),
        )
        .collect()
}
