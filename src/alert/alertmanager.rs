//! The Alertmanager channel: a firing alert per open breaker, posted to `/api/v2/alerts` and
//! re-posted periodically with `endsAt` ahead so it stays firing; on recovery a resolved alert
//! (`endsAt` = the recovery), re-posted for a while so every Alertmanager hears it. The labels
//! are the same on every replica, so Alertmanager deduplicates replicas into one notification.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use reqwest::Method;
use serde_json::{Value, json};

use super::delivery::DeliveryError;
use super::notification::Notification;
use super::webhook::judge_status;
use crate::config::{AlertmanagerConfig, Url};
use crate::probe::HttpClient;

#[derive(Debug)]
struct AlertState {
    starts_at: String,
    latest: Notification,
    /// `None` while firing; when it resolved otherwise.
    resolved_at: Option<SystemTime>,
}

#[derive(Debug)]
pub(crate) struct AlertmanagerChannel {
    pub(crate) config: AlertmanagerConfig,
    client: HttpClient,
    alerts: Mutex<BTreeMap<String, AlertState>>,
}

impl AlertmanagerChannel {
    pub(crate) fn new(config: AlertmanagerConfig, client: HttpClient) -> Self {
        Self {
            config,
            client,
            alerts: Mutex::default(),
        }
    }

    /// Updates the service's alert from `notification` and posts it.
    pub(crate) async fn deliver(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let alert = {
            let mut alerts = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
            let state = alerts
                .entry(notification.service.clone())
                .or_insert_with(|| AlertState {
                    starts_at: notification.at.clone(),
                    latest: notification.clone(),
                    resolved_at: None,
                });
            if notification.is_problem() {
                if state.resolved_at.is_some() {
                    state.starts_at = notification.at.clone();
                }
                state.resolved_at = None;
            } else {
                state.resolved_at = Some(SystemTime::now());
            }
            state.latest = notification.clone();
            self.alert_json(state, SystemTime::now())
        };
        self.post(vec![alert]).await
    }

    /// Re-posts firing alerts (keeping them firing) and recently resolved ones; forgets
    /// resolved alerts older than `resolve_for`.
    pub(crate) async fn resend(&self) -> Result<(), DeliveryError> {
        let now = SystemTime::now();
        let alerts: Vec<Value> = {
            let mut alerts = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
            alerts.retain(|_, state| {
                state.resolved_at.is_none_or(|resolved| {
                    now.duration_since(resolved).unwrap_or_default() <= self.config.resolve_for
                })
            });
            alerts
                .values()
                .map(|state| self.alert_json(state, now))
                .collect()
        };
        if alerts.is_empty() {
            return Ok(());
        }
        self.post(alerts).await
    }

    fn alert_json(&self, state: &AlertState, now: SystemTime) -> Value {
        let ends_at = match state.resolved_at {
            Some(resolved) => resolved,
            None => now + self.config.resend_every * 3,
        };
        let mut alert = json!({
            "labels": state.latest.alert_labels(&self.config.severity),
            "annotations": state.latest.alert_annotations(self.config.runbook_url.as_deref()),
            "startsAt": state.starts_at,
            "endsAt": humantime::format_rfc3339_millis(ends_at).to_string(),
        });
        if let Some(url) = &state.latest.api_url {
            alert["generatorURL"] = json!(url);
        }
        alert
    }

    async fn post(&self, alerts: Vec<Value>) -> Result<(), DeliveryError> {
        let base = self.config.url.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}/api/v2/alerts"))
            .map_err(|error| DeliveryError::permanent(format!("bad Alertmanager URL: {error}")))?;
        let host = url.host_str().unwrap_or("alertmanager").to_string();
        let response = self
            .client
            .request(Method::POST, &url)
            .header("Content-Type", "application/json")
            .body(Value::Array(alerts).to_string())
            .send()
            .await
            .map_err(|error| {
                DeliveryError::retryable(format!("{host}: {}", error.without_url()))
            })?;
        judge_status(response.status(), &host)
    }
}
