//! A Bitrix24 REST client for the open-line chats of CRM items (`imopenlines.crm.*`),
//! compiled to WebAssembly for JavaScript and TypeScript.
//!
//! The crate is layered so that everything which decides something is plain Rust,
//! tested natively:
//!
//! - [`params`]: the methods' parameters, validated in the portal's order, and their results;
//! - [`auth`]: webhook or access token, and where each goes on the wire;
//! - [`wire`]: the HTTP request for a call, its body a [`query`] string;
//! - [`envelope`]: reading the portal's answer, whatever its status;
//! - [`outcome`]: whether a failed call was executed on the portal;
//! - [`error`]: one error type with stable codes;
//! - [`json`]: how the core reads JSON without owning a JSON library;
//! - [`frame`]: the parent-window protocol of an iframe app (strings in, strings out);
//! - [`limiter`]: when a request may go, by the portal's leaky bucket;
//! - [`policy`]: refresh-and-retry, wait-and-retry on a limit, or fail;
//! - [`batch`]: batch commands, their splitting and their per-command results;
//! - [`machine`]: the life of every call, as a state machine that does no I/O;
//! - [`options`]: a caller's options, from the JS layer's snapshot of them;
//! - [`message_text`]: a message's text as stored, as history shows it, and recognising it;
//! - [`outbox`]: the messages a client sent or is sending, to tell them from others';
//! - [`verify`]: settling an unknown message outcome by reading the chat back.
//!
//! The wasm build adds `abi`, importing the core and never the other way: what the
//! package's JS driver calls, strings and numbers in, records of actions out. The
//! module calls nothing in JS.
//!
//! The JS layer (`src/js/api.js`) is the public face (`Client`, `crmMessageAdd`,
//! `Bitrix24Error`, `isBitrix24Error`, `init`) and the driver that performs what a
//! client's machine asks: requests, one wake timer, signals, token sources, hooks. It
//! loads the module on the first call.

pub mod auth;
pub mod batch;
pub mod envelope;
pub mod error;
pub mod frame;
pub mod json;
pub mod limiter;
pub mod machine;
pub mod message_text;
pub mod options;
pub mod outbox;
pub mod outcome;
pub mod params;
pub mod policy;
pub mod query;
pub mod text;
pub mod verify;
pub mod wire;

#[cfg(target_arch = "wasm32")]
pub mod abi;

pub use error::{Details, Error};

// A smaller allocator than the standard one: the module is single-threaded.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
