//! A local Bitrix24 portal for offline tests of REST clients.
//!
//! It serves the `imopenlines.crm.*` methods (headed by
//! `imopenlines.crm.message.add`) with the real server's URL forms,
//! parameter decoding, credential checks, validation order, error codes,
//! texts and HTTP statuses, over seeded users, CRM items and chats. An admin
//! API under `/_portal/` exposes what was delivered and scripts faults.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! let portal = b24_portal::serve_in_thread(b24_portal::Config::default())?;
//! println!("webhook: {}", portal.info().webhook);
//! # Ok(())
//! # }
//! ```
//!
//! Inside an async context use [`serve`], which returns a [`Portal`] handle.
//!
//! [`text`] models what the messenger stores of a sent text and what
//! `im.dialog.messages.get` returns for it ([`text::store`], [`text::parse`]),
//! usable on their own as an oracle.
//!
//! [`sim::InProcess`] runs the portal without sockets on a clock that moves
//! only when told, for deterministic simulations.

mod admin;
mod auth;
mod batch;
pub mod config;
mod crm;
mod envelope;
mod faults;
mod fixtures;
mod history;
mod limits;
mod list;
mod methods;
mod oauth;
mod parent;
mod php;
mod request;
mod rest;
mod seed;
mod server;
pub mod sim;
mod state;
pub mod text;

pub use config::{Config, HistoryText, NonMemberCode, OperatingLimit, RateLimit, DEFAULT_SCOPE};
pub use request::{
    read as read_rest_request, Presented, RestRequest, RestTarget, Transport, WebhookPath,
};
pub use seed::FIRST_MESSAGE_ID;
pub use server::{serve, serve_in_thread, Portal, PortalInfo, PortalThread};
