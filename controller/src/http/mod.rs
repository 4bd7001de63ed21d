//! The controller's two HTTP ports: [`api`] is what the main port answers (the routes, their
//! handlers and the request bounds they enforce), [`server`] is the generic hyper server both
//! ports run on (listener, connection limits, timeouts, graceful shutdown). The metrics port's
//! router is [`crate::metrics::metrics_router`].

pub mod api;
pub mod server;
