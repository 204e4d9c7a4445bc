//! What `breakerd check` notes about a valid config: the credentials that are not set, each
//! naming the variable to set and how the check will fail until it is.

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

/// The variables (or keys, when no variable is named) a check waits for.
fn missing(check: &Check) -> Vec<String> {
    let credentials: Vec<&Credential> = match check {
        Check::Mpesa(oauth) | Check::Pesapal(oauth) | Check::Kcb(oauth) => {
            vec![&oauth.consumer_key, &oauth.consumer_secret]
        }
        Check::AfricasTalking(at) => vec![&at.username, &at.api_key],
        Check::WhatsApp(whatsapp) => vec![&whatsapp.phone_number_id, &whatsapp.access_token],
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
