//! End-to-end tests: services started in-process against wiremock stand-ins.

mod support;

mod auth;
mod breaker;
mod dashboard;
mod defects;
mod flavours;
mod gateway;
mod observability;
mod retry;
mod settlement;
mod stack;
mod withdrawal;
