//! Integration tests, one binary: each module tests one area through the public API.

mod alerts;
mod api;
mod breaker_concurrency;
mod breaker_controls;
mod breaker_states;
mod breaker_window;
mod cli;
mod config;
mod config_properties;
mod daemon;
mod demo;
mod hardening;
mod heartbeat;
mod logs;
mod observability;
mod openapi;
mod outages;
mod packaging;
mod paging;
mod probes;
mod proxy;
mod readme;
mod reload;
mod smtp;
mod status_page;
mod support;
